"""Webhooks kept in the store, and the durable queue of their deliveries.

A delivery is queued in the transaction of the event it reports (``append_event``
calls ``enqueue``): an alert raised on any replica has its deliveries queued when it
commits, or neither exists. Any replica works the queue: a worker claims due
deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two replicas never claim the
same one; SQLite's write transactions run one at a time), pushing each one's
``next_at`` past the time a delivery may take, then delivers outside the transaction
and records the outcome. A replica killed mid-delivery leaves its claim to expire and
another replica retries it: deliveries are at least once, and each carries its id
(``X-FRVS-Delivery``) for receivers to drop a repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from frvs.storage.schema import Base, BigId, UTCDateTime

# Events that webhooks receive (the alert notices they always received).
DELIVERED_KINDS = frozenset({"alert.raised", "alert.reviewed"})


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    # The HMAC key signing each body: the receiver holds the same one.
    secret: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_state_next_at", "state", "next_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"),
                                            index=True)
    event_id: Mapped[int] = mapped_column(BigId)
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed by one worker: what to send where, and which attempt it is."""

    id: int
    webhook: str
    url: str
    secret: str
    max_attempts: int
    attempt: int
    body: dict[str, object]


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    """A webhook as stored (its secret included: only the worker sends it)."""

    id: int
    name: str
    url: str
    attempts: int
    enabled: bool
    created_at: datetime


def _webhook(row: WebhookRow) -> StoredWebhook:
    return StoredWebhook(row.id, row.name, row.url, row.attempts, row.enabled,
                         row.created_at)


class WebhookRepository:
    """Webhooks and their delivery queue (reached as ``uow.repo(WebhookRepository)``)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, name: str, url: str, secret: str, attempts: int,
            now: datetime) -> StoredWebhook:
        row = WebhookRow(name=name, url=url, secret=secret, attempts=attempts, enabled=True,
                         created_at=now)
        self._s.add(row)
        self._s.flush()
        return _webhook(row)

    def get(self, name: str) -> StoredWebhook | None:
        row = self._s.scalar(select(WebhookRow).where(WebhookRow.name == name))
        return None if row is None else _webhook(row)

    def delete(self, name: str) -> None:
        """Delete the webhook with its queued deliveries."""
        row = self._s.scalar(select(WebhookRow).where(WebhookRow.name == name))
        if row is not None:
            self._s.delete(row)

    def all(self) -> list[StoredWebhook]:
        return [_webhook(r) for r in self._s.scalars(select(WebhookRow)
                                                      .order_by(WebhookRow.name))]

    def delivery_counts(self) -> dict[tuple[int, str], int]:
        """(webhook id, state) -> how many deliveries."""
        return {(int(h), str(st)): int(n) for h, st, n in self._s.execute(
            select(WebhookDeliveryRow.webhook_id, WebhookDeliveryRow.state, func.count())
            .group_by(WebhookDeliveryRow.webhook_id, WebhookDeliveryRow.state))}

    def enqueue(self, event_id: int, kind: str, data: dict[str, object],
                at: datetime) -> None:
        """Queue the event for every enabled webhook, in the caller's transaction."""
        if kind not in DELIVERED_KINDS:
            return
        hooks = self._s.scalars(select(WebhookRow.id).where(WebhookRow.enabled.is_(True))).all()
        body: dict[str, object] = {"event": kind, "alert": data}
        for hook in hooks:
            self._s.add(WebhookDeliveryRow(webhook_id=hook, event_id=event_id, body=body,
                                           state="pending", attempts=0, next_at=at,
                                           last_error=None, created_at=at, done_at=None))

    def claim(self, now: datetime, hold: timedelta, limit: int = 10) -> list[Claimed]:
        """Claim up to ``limit`` due deliveries for ``hold`` (none another worker holds).
        ``now`` is the database's clock on PostgreSQL, not the replica's: a replica whose
        clock ran 30 s ahead claimed, and sent again, deliveries another replica was still
        holding."""
        if self._s.get_bind().dialect.name == "postgresql":
            now = cast(datetime, self._s.scalar(text("SELECT clock_timestamp()")))
        stmt = (select(WebhookDeliveryRow, WebhookRow)
                .join(WebhookRow, WebhookRow.id == WebhookDeliveryRow.webhook_id)
                .where(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.next_at <= now)
                .order_by(WebhookDeliveryRow.id).limit(limit)
                .with_for_update(skip_locked=True, of=WebhookDeliveryRow))
        claimed = []
        for delivery, hook in self._s.execute(stmt).all():
            delivery.attempts += 1
            delivery.next_at = now + hold
            claimed.append(Claimed(delivery.id, hook.name, hook.url, hook.secret,
                                   hook.attempts, delivery.attempts, dict(delivery.body)))
        return claimed

    def finish(self, delivery_id: int, now: datetime, error: str | None,
               retry_at: datetime | None) -> None:
        """Record an attempt's outcome: delivered (no error), due again at ``retry_at``,
        or failed for good (an error and no retry)."""
        if error is None:
            values: dict[str, object] = {"state": "delivered", "done_at": now,
                                         "last_error": None}
        elif retry_at is not None:
            values = {"next_at": retry_at, "last_error": error}
        else:
            values = {"state": "failed", "done_at": now, "last_error": error}
        self._s.execute(update(WebhookDeliveryRow)
                        .where(WebhookDeliveryRow.id == delivery_id).values(**values))

    def prune_finished(self, before: datetime) -> int:
        """Delete deliveries delivered or given up before ``before``: how many."""
        result = self._s.execute(delete(WebhookDeliveryRow).where(
            WebhookDeliveryRow.state != "pending", WebhookDeliveryRow.done_at < before))
        return int(getattr(result, "rowcount", 0) or 0)
