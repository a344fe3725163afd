"""SQL tables of edge intake at the centre (migration ``0006_edge``).

``edge_reports`` holds one row per report the centre accepted, keyed by its idempotency
key (node, camera, track, start time) under a unique constraint and written in the same
transaction as the sighting (and alert) it made: a report sent again finds its row and
gets the first answer back. It keeps only ids, never a name or a face: what the report
matched is read back from the sighting, so erasure and retention apply as they do there.

``edge_nodes`` is the node registry: one row per device key that has reported, with
what its last heartbeat said.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from frvs.storage.schema import Base, BigId, UTCDateTime


class EdgeReportRow(Base):
    __tablename__ = "edge_reports"
    __table_args__ = (
        UniqueConstraint("node", "camera", "track_id", "first_seen",
                         name="ux_edge_reports_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    node: Mapped[str] = mapped_column(String(32))
    camera: Mapped[str] = mapped_column(String(100))
    track_id: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    sighting_id: Mapped[int | None] = mapped_column(BigInteger)
    alert_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class EdgeNodeRow(Base):
    __tablename__ = "edge_nodes"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    cameras: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[str | None] = mapped_column(String(50))
    pack: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(Text)
    first_contact: Mapped[datetime] = mapped_column(UTCDateTime())
    last_heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime())
    backlog: Mapped[int] = mapped_column(Integer, default=0)
    backlog_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    oldest_pending: Mapped[datetime | None] = mapped_column(UTCDateTime())
    clock_offset_s: Mapped[float | None] = mapped_column(Float)
    dropped_crops: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped_reports: Mapped[int] = mapped_column(BigInteger, default=0)
    reports: Mapped[int] = mapped_column(BigInteger, default=0)
