"""SQL table of attendance events (migration ``0003_video``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from frvs.storage.schema import Base, BigId, UTCDateTime


class AttendanceEventRow(Base):
    __tablename__ = "attendance_events"
    __table_args__ = (Index("ix_attendance_events_gallery_at", "gallery_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # By key (``0009_gallery_keys``): an event goes with its gallery.
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(200))
    camera: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    score: Mapped[float] = mapped_column(Float)
