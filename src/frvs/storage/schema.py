"""SQLAlchemy 2 typed tables. Alembic migrations in ``storage/migrations`` create them.

Later concepts (cameras, sightings, alerts, audit, API keys) add their own classes on
the same ``Base`` and their own migration revisions. Special categories of personal
data have no column anywhere, on purpose (PRODUCT.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only aliases the rowid (and so auto-increments) for INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Stable constraint names, so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        del dialect  # SQLite returns naive values, PostgreSQL aware ones: handled alike
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The one declarative base of the FRVS store."""

    metadata = MetaData(naming_convention=NAMING)


class GalleryRow(Base):
    __tablename__ = "galleries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    threshold: Mapped[float | None] = mapped_column(Float)
    fmr_target: Mapped[float | None] = mapped_column(Float)
    keep_crops: Mapped[bool] = mapped_column(Boolean, default=False)
    pack: Mapped[str] = mapped_column(String(100))
    # Bumped in the transaction of every template write: other processes compare it
    # with what their in-memory index has seen and catch up before searching.
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    subjects: Mapped[list[SubjectRow]] = relationship(
        back_populates="gallery", cascade="all, delete-orphan", passive_deletes=True
    )


class SubjectRow(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("gallery_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gallery_id: Mapped[int] = mapped_column(
        ForeignKey("galleries.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    gallery: Mapped[GalleryRow] = relationship(back_populates="subjects")
    templates: Mapped[list[TemplateRow]] = relationship(
        back_populates="subject", cascade="all, delete-orphan", passive_deletes=True
    )


class TemplateRow(Base):
    __tablename__ = "templates"
    __table_args__ = (
        # Idempotent enrolment: one template per image per subject per model space.
        UniqueConstraint("subject_id", "space_key", "image_sha256",
                         name="uq_templates_subject_space_image"),
        Index("ix_templates_gallery_space_id", "gallery_id", "space_key", "id"),
        Index("ix_templates_subject_id", "subject_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    # Denormalised from the subject so an index can be (re)built with one range scan.
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    space_key: Mapped[str] = mapped_column(String(200))
    pack: Mapped[str] = mapped_column(String(100))
    pack_version: Mapped[str] = mapped_column(String(100))
    dimension: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(20))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float] = mapped_column(Float)
    image_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(Text)
    box: Mapped[list[float]] = mapped_column(JSON)
    crop_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    subject: Mapped[SubjectRow] = relationship(back_populates="templates")


class IndexChangeRow(Base):
    """A template added to or removed from a gallery, written in the transaction that
    added or removed it (migration ``0007_replicas``). Each process's index of the
    gallery remembers the last change it applied and reads only the ones after it.

    Ids grow in commit order within a gallery: a writer bumps the gallery's revision
    (locking its row until commit) before it takes ids here, so no change of a gallery
    can commit behind a later one that a reader has already passed."""

    __tablename__ = "index_changes"
    __table_args__ = (Index("ix_index_changes_gallery_id_id", "gallery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(BigInteger)
    space_key: Mapped[str] = mapped_column(String(200))
    added: Mapped[bool] = mapped_column(Boolean)
    # Random, drawn when the change is written (migration ``0010_change_nonces``): a
    # database restored from a backup reuses ids, and this tells the timelines apart.
    nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SharedIndexRow(Base):
    """How far an index shared by every replica (a Milvus server collection) has applied
    its gallery's change log (migration ``0007_replicas``)."""

    __tablename__ = "shared_indexes"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
