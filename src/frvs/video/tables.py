"""SQL tables of the video domain: cameras and sightings (migration ``0003_video``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from frvs.storage.schema import Base, BigId, UTCDateTime


class CameraRow(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    location: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    source_url: Mapped[str] = mapped_column(Text)
    sample_fps: Mapped[float | None] = mapped_column(Float)
    roi: Mapped[list[float] | None] = mapped_column(JSON)
    galleries: Mapped[list[str]] = mapped_column(JSON)
    retention_days: Mapped[int] = mapped_column(Integer)
    keep_crops: Mapped[bool] = mapped_column(Boolean)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SightingRow(Base):
    __tablename__ = "sightings"
    __table_args__ = (
        Index("ix_sightings_camera_first_seen", "camera", "first_seen"),
        Index("ix_sightings_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The camera's name, not a key: 'frvs watch' records sightings of ad-hoc cameras.
    camera: Mapped[str] = mapped_column(String(100))
    track_id: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    frames: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    quality: Mapped[float] = mapped_column(Float)
    space_key: Mapped[str | None] = mapped_column(String(200))
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The gallery that matched, by key (``0009_gallery_keys``); deleting the gallery
    # leaves the sighting of a face without a match.
    gallery_id: Mapped[int | None] = mapped_column(
        ForeignKey("galleries.id", ondelete="SET NULL"))
    subject: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)
    best_subject: Mapped[str | None] = mapped_column(String(200))
    best_score: Mapped[float | None] = mapped_column(Float)
    crop_path: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
