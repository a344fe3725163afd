"""SQL tables of alerts: alerts, their reviews and per-gallery alert rules
(migration ``0003_video``; galleries referenced by key since ``0009_gallery_keys``, and
an alert or rule goes with its gallery)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from frvs.storage.schema import Base, BigId, UTCDateTime


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_subject_camera_at", "gallery_id", "subject", "camera", "at"),
        Index("ix_alerts_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    camera: Mapped[str] = mapped_column(String(100))
    track_id: Mapped[int] = mapped_column(Integer)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    frame_time: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    crop_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    two_person: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertReviewRow(Base):
    __tablename__ = "alert_reviews"
    __table_args__ = (
        UniqueConstraint("alert_id", "reviewer"),
        Index("ux_alert_reviews_holder", "alert_id", "holder", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"),
                                          index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    # The person who reviewed (the key's holder) and the key they used (0004_people).
    holder: Mapped[str | None] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertRuleRow(Base):
    __tablename__ = "alert_rules"

    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"),
                                            primary_key=True)
    two_person: Mapped[bool] = mapped_column(Boolean)
    suppress_seconds: Mapped[int] = mapped_column(Integer)
