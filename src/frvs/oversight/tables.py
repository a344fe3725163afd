"""SQL tables of oversight: API keys and the audit trail, on the store's one ``Base``.

Migration ``0002_oversight`` creates them. ``audit_head`` holds exactly one row: the
sequence number and hash of the newest entry (so removing entries at the end is
detectable) and the base the chain starts from after a retention purge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from frvs.storage.schema import Base, BigId, UTCDateTime


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The person the key belongs to; set at creation, never changed (0004_people).
    holder: Mapped[str | None] = mapped_column(String(200), index=True)
    # The cameras a device key may report for (0005_device_cameras); None: none.
    cameras: Mapped[list[str] | None] = mapped_column(JSON)


class AuditEntryRow(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_action", "action"),
    )

    # Assigned from the head row under its lock, never by the database.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_name: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(20))
    actor_holder: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    case_reference: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[str | None] = mapped_column(Text)
    subjects: Mapped[list[str]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(40))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditSubjectRow(Base):
    """Which entries name which subject (``gallery/external id``), for subject exports."""

    __tablename__ = "audit_subjects"
    __table_args__ = (Index("ix_audit_subjects_ref", "ref"),)

    seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("audit_entries.seq", ondelete="CASCADE"), primary_key=True
    )
    ref: Mapped[str] = mapped_column(String(320), primary_key=True)


class AuditHeadRow(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # After a retention purge the chain starts at base_seq + 1 with prev_hash base_hash.
    base_seq: Mapped[int] = mapped_column(BigInteger)
    base_hash: Mapped[str] = mapped_column(String(64))
