"""The SQL tables of identity checks and their issued challenges (migration
``0008_identity_checks``).

A row holds the decision and the digests of what was compared, never a template, a
landmark or a picture: kept images (only when the deployment turns that on) live as
files under ``media/checks/<id>/`` until ``images_until``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from frvs.storage.schema import Base, UTCDateTime


class IdentityCheckRow(Base):
    __tablename__ = "identity_checks"
    __table_args__ = (
        Index("ix_identity_checks_holder_at", "holder", "at"),
        Index("ix_identity_checks_actor_at", "actor", "at"),
        Index("ix_identity_checks_images_until", "images_until"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(300))
    key_id: Mapped[str | None] = mapped_column(String(32))
    holder: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    challenge: Mapped[str] = mapped_column(String(100))
    frames: Mapped[int] = mapped_column(Integer)
    document_sha256: Mapped[str] = mapped_column(String(64))
    capture_sha256: Mapped[str] = mapped_column(String(64))
    pack: Mapped[str] = mapped_column(String(100))
    target_fmr: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    calibrated: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    match: Mapped[bool] = mapped_column(Boolean)
    liveness_passed: Mapped[bool] = mapped_column(Boolean)
    liveness_reasons: Mapped[list[str]] = mapped_column(JSON)
    passed: Mapped[bool] = mapped_column(Boolean)
    images_kept: Mapped[bool] = mapped_column(Boolean)
    images_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    media_path: Mapped[str | None] = mapped_column(String(100))


class IdentityChallengeRow(Base):
    """A challenge the server issued to a verifier: answered at most once, before it
    expires, by that verifier (``used_at`` is set in the check's transaction)."""

    __tablename__ = "identity_challenges"
    __table_args__ = (Index("ix_identity_challenges_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    actor: Mapped[str] = mapped_column(String(300))
    holder: Mapped[str | None] = mapped_column(String(200))
    moves: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
