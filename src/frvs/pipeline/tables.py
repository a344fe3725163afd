"""SQL tables of the camera supervisor: who runs each camera (migration ``0007_replicas``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from frvs.storage.schema import Base, UTCDateTime


class CameraLeaseRow(Base):
    """The lease of one camera: the replica running it until ``expires_at``, renewed by
    that replica; any replica may take an expired lease. ``generation`` grows with every
    takeover, so a holder that lost its lease cannot renew it by mistake."""

    __tablename__ = "camera_leases"

    camera: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    generation: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The holder's last view of the camera's health, so every replica can answer for it.
    status: Mapped[dict[str, object] | None] = mapped_column(JSON)
