"""The durable event log: alerts raised and reviewed, camera runs changing hands.

Every replica's live stream (``GET /v1/events``) serves this one log, so a client that
reconnects to another replica with ``Last-Event-ID`` resumes where it left off. An
event is appended in the transaction of the change it reports (``uow.publish``): an
alert and its ``alert.raised`` event commit together or not at all.

Ids only grow, and in the order readers see them: on PostgreSQL, appenders take one
transaction-scoped advisory lock before taking an id, so a transaction holding a
smaller id has always committed before a larger id becomes visible (without it, a
reader could pass over id 10 still in flight after seeing 11). SQLite writes one
transaction at a time anyway. Readers are woken by ``NOTIFY frvs_events`` on
PostgreSQL and poll on SQLite (``EventFeed``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Index, String, delete, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped, Session, mapped_column

from frvs.storage.database import Database
from frvs.storage.schema import Base, BigId, UTCDateTime
from frvs.storage.webhooks import WebhookDeliveryRow, WebhookRepository

logger = logging.getLogger(__name__)

CHANNEL = "frvs_events"
# Any constant: names "the event log's append order" among advisory locks.
_PG_EVENTS_LOCK = 0x4652_5645


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, object]] = mapped_column(JSON)
    # "gallery/subject" of the person an event is about, so that erasing the subject
    # erases the events too (``frvs.oversight.records.EventRecords``).
    subject_ref: Mapped[str | None] = mapped_column(String(320), index=True)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event of the log: its id (growing), kind, time and document."""

    id: int
    kind: str
    at: datetime
    data: dict[str, object]


def append_event(session: Session, kind: str, data: dict[str, object], at: datetime,
                 subject: str | None = None) -> None:
    """Append one event in ``session``'s transaction (see the module's note on order);
    ``subject`` is the ``gallery/subject`` reference of the person it is about."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_EVENTS_LOCK})
    row = EventRow(kind=kind, at=at, data=data, subject_ref=subject)
    session.add(row)
    session.flush()
    # Webhook deliveries, in the same transaction.
    WebhookRepository(session).enqueue(row.id, kind, data, at)
    if postgres:  # delivered to listeners when (and only if) the transaction commits
        session.execute(text(f"NOTIFY {CHANNEL}"))


class EventRepository:
    """The events about one person (``gallery/subject``), for export and erasure."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def about(self, subject: str) -> list[StoredEvent]:
        return [StoredEvent(r.id, r.kind, r.at, dict(r.data)) for r in self._s.scalars(
            select(EventRow).where(EventRow.subject_ref == subject).order_by(EventRow.id))]

    def delete_about(self, subject: str) -> int:
        """Delete the events about ``subject`` and the webhook deliveries made of them:
        how many events."""
        ids = list(self._s.scalars(select(EventRow.id).where(EventRow.subject_ref == subject)))
        if ids:
            self._s.execute(delete(WebhookDeliveryRow).where(
                WebhookDeliveryRow.event_id.in_(ids)))
            self._s.execute(delete(EventRow).where(EventRow.id.in_(ids)))
        return len(ids)


class EventLog:
    """Reads the log; ``feed`` tells when it grows."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._feed: EventFeed | None = None
        self._lock = threading.Lock()

    def after(self, last_id: int, limit: int = 200) -> list[StoredEvent]:
        """Events with ids above ``last_id``, oldest first."""
        stmt = (select(EventRow).where(EventRow.id > last_id).order_by(EventRow.id)
                .limit(limit))
        with self._database.session() as session:
            return [StoredEvent(r.id, r.kind, r.at, dict(r.data))
                    for r in session.scalars(stmt)]

    def prune(self, session: Session, before: datetime) -> int:
        """Delete events older than ``before`` in ``session``'s transaction (a client
        resuming from one of them starts at the oldest kept): how many."""
        result = session.execute(delete(EventRow).where(EventRow.at < before))
        return int(getattr(result, "rowcount", 0) or 0)

    def head(self) -> int:
        """The newest event's id (0 for an empty log)."""
        with self._database.session() as session:
            return int(session.scalar(select(func.max(EventRow.id))) or 0)

    def feed(self) -> EventFeed:
        """The process's one watcher of the log (started on first use)."""
        with self._lock:
            if self._feed is None:
                self._feed = EventFeed(self)
                self._feed.start()
            return self._feed

    @property
    def database(self) -> Database:
        return self._database

    def close(self) -> None:
        with self._lock:
            feed, self._feed = self._feed, None
        if feed is not None:
            feed.stop()


class EventFeed:
    """Keeps ``head`` (the newest id) current for the process's streams: one thread
    that listens for ``NOTIFY`` on PostgreSQL (re-reading at least every second in
    case a notice was missed) and polls every ``poll_seconds`` on SQLite."""

    def __init__(self, log: EventLog, poll_seconds: float = 0.25) -> None:
        self._log = log
        self._poll = poll_seconds
        self.head = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-feed", daemon=True)

    def start(self) -> None:
        self.head = self._log.head()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._log.database.dialect == "postgresql":
                    self._listen()
                else:
                    self.head = self._log.head()
                    self._stop.wait(self._poll)
            except Exception:  # a loop boundary: the store may come back
                logger.exception("event feed failed; retrying")
                self._stop.wait(1.0)

    def _listen(self) -> None:
        import psycopg

        url = make_url(self._log.database.url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.head = self._log.head()
            while not self._stop.is_set():
                # Notices only say "something new": the head is re-read either way.
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    pass
                self.head = self._log.head()
