"""The node's durable outbox: one SQLite file in the node's data directory.

Every ended track's report is committed here before anything is sent (WAL,
``synchronous=FULL``: a report the node made survives SIGKILL and power loss), and stays
until the centre has accepted it. Delivered reports keep their row (camera, track, times,
the centre's sighting and alert ids: the node's own record of what it made) but lose
their template and crop, so what the node holds after delivery is no face.

The outbox is bounded by bytes and by age. Over the byte limit, the oldest undelivered
reports lose their crops first (a template still identifies), then the oldest reports
go; reports older than the age limit go too. Each drop is counted; the counts travel to
the centre with the next heartbeat, which audits them.

The standard library's ``sqlite3`` rather than the store's SQLAlchemy: the outbox is a
small local queue with its own two tables, never the centre's store, and the node runs
without one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from frvs.core.errors import FileReadError, InvalidInputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    frames INTEGER NOT NULL,
    space TEXT NOT NULL,
    vector BLOB,
    quality TEXT NOT NULL,
    crop BLOB,
    bytes INTEGER NOT NULL,
    made_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    sighting INTEGER,
    alert INTEGER,
    error TEXT,
    delivered_at REAL,
    UNIQUE (camera, track_id, first_seen)
);
CREATE INDEX IF NOT EXISTS ix_reports_pending ON reports (state, id);
-- Covering indexes: the byte total and the age limit are checked on every add.
CREATE INDEX IF NOT EXISTS ix_reports_state_bytes ON reports (state, bytes);
CREATE INDEX IF NOT EXISTS ix_reports_state_made ON reports (state, made_at);
-- The pending reports still holding a crop, oldest first: over the byte limit these lose
-- their crops first, found without walking the reports that already lost theirs.
CREATE INDEX IF NOT EXISTS ix_reports_crops ON reports (id)
    WHERE state = 'pending' AND crop IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"
COUNTERS = ("made", "deliveries", "retries", "refused", "dropped_crops", "dropped_reports",
            "replayed")
_OVERHEAD = 256  # bytes a report's row costs besides its template and crop
_PAGE = 64  # rows read at a time when enforcing the byte limit


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """How much undelivered data the node keeps: ``max_bytes`` of reports, none older
    than ``max_age_s``; delivered rows are kept for ``keep_delivered_s`` as the node's
    record of what it made."""

    max_bytes: int = 512 * 1024 * 1024
    max_age_s: float = 7 * 86_400.0
    keep_delivered_s: float = 7 * 86_400.0

    def __post_init__(self) -> None:
        if self.max_bytes < 4096:
            raise InvalidInputError(f"outbox limit must be >= 4096 bytes, got {self.max_bytes}")
        if self.max_age_s <= 0 or self.keep_delivered_s <= 0:
            raise InvalidInputError("outbox ages must be > 0 s")


@dataclass(frozen=True, slots=True)
class Report:
    """One ended track as the node reports it: times, frame count, the best shot's
    template (float32 bytes) in its model space, its quality, and maybe its crop (JPEG)."""

    camera: str
    track_id: int
    first_seen: datetime
    last_seen: datetime
    frames: int
    space: str
    vector: bytes
    quality: dict[str, float]
    crop: bytes | None

    @property
    def size(self) -> int:
        return len(self.vector) + len(self.crop or b"") + _OVERHEAD


@dataclass(frozen=True, slots=True)
class Queued:
    """A report waiting in the outbox, with its row id and delivery attempts."""

    id: int
    report: Report
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    backlog: int
    backlog_bytes: int
    oldest_pending: datetime | None
    delivered: int
    refused: int
    counters: dict[str, int]
    last_contact: datetime | None
    last_error: str | None
    cameras: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"backlog": self.backlog, "backlog_bytes": self.backlog_bytes,
                "oldest_pending": self.oldest_pending.isoformat() if self.oldest_pending
                else None,
                "delivered": self.delivered, "refused": self.refused,
                "last_contact": self.last_contact.isoformat() if self.last_contact else None,
                "last_error": self.last_error, "cameras": self.cameras, **self.counters}


def _iso(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class Outbox:
    """The outbox file; safe to share between the camera threads and the sender."""

    def __init__(self, path: Path, limits: OutboxLimits | None = None) -> None:
        self.path = path
        self.limits = limits or OutboxLimits()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # A damaged file (disk fault, a copy cut short) is found here, at start, with
            # a message saying what to do, rather than as a traceback mid-delivery.
            verdict = self._db.execute("PRAGMA quick_check").fetchone()
            if verdict is None or verdict[0] != "ok":
                raise sqlite3.DatabaseError(str(verdict[0] if verdict else "no answer"))
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise FileReadError(
                f"the outbox {path} is damaged ({exc}); the node cannot tell what it still "
                f"has to deliver. Move it aside (mv {path} {path}.damaged) to start a new "
                "one; its undelivered reports are then lost (the old file can be examined "
                "with sqlite3 '.recover')") from exc
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------

    def add(self, report: Report, now: float | None = None) -> int:
        """Commit ``report`` (once per camera, track and start time), then enforce the
        limits. Returns its row id."""
        return self.add_all([(report, time.time() if now is None else now)])[0]

    def add_all(self, reports: Sequence[tuple[Report, float]]) -> list[int]:
        """Commit several reports made at the given times in one transaction (a node
        adds one at a time; a simulated backlog many), then enforce the limits."""
        ids = []
        with self._tx() as db:
            for report, made in reports:
                cur = db.execute(
                    "INSERT OR IGNORE INTO reports (camera, track_id, first_seen, last_seen, "
                    "frames, space, vector, quality, crop, bytes, made_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (report.camera, report.track_id, report.first_seen.isoformat(),
                     report.last_seen.isoformat(), report.frames, report.space,
                     report.vector, json.dumps(report.quality), report.crop, report.size,
                     made))
                ids.append(int(cur.lastrowid or 0))
                if cur.rowcount:
                    self._bump(db, "made", 1)
            self._enforce(db, max((m for _, m in reports), default=time.time()))
        return ids

    def _enforce(self, db: sqlite3.Connection, now: float) -> None:
        """Drop what exceeds the limits: too old first, then crops, then reports."""
        old = db.execute("DELETE FROM reports WHERE state = ? AND made_at < ?",
                         (PENDING, now - self.limits.max_age_s)).rowcount
        self._bump(db, "dropped_reports", old)
        db.execute("DELETE FROM reports WHERE state IN (?, ?) AND made_at < ?",
                   (DELIVERED, REFUSED, now - self.limits.keep_delivered_s))
        total = self._pending_bytes(db)
        if total <= self.limits.max_bytes:
            return
        # Oldest first, a page at a time: a long outage's backlog is never read whole.
        after = 0
        while total > self.limits.max_bytes:
            page = db.execute(
                # Literal conditions: SQLite uses the partial index ix_reports_crops.
                "SELECT id, length(crop) FROM reports WHERE state = 'pending' AND id > ? "
                "AND crop IS NOT NULL ORDER BY id LIMIT ?", (after, _PAGE)).fetchall()
            if not page:
                break
            for row_id, crop_len in page:
                after = row_id
                db.execute("UPDATE reports SET crop = NULL, bytes = bytes - ? WHERE id = ?",
                           (crop_len, row_id))
                self._bump(db, "dropped_crops", 1)
                total -= crop_len
                if total <= self.limits.max_bytes:
                    return
        while total > self.limits.max_bytes:
            page = db.execute("SELECT id, bytes FROM reports WHERE state = ? ORDER BY id "
                              "LIMIT ?", (PENDING, _PAGE)).fetchall()
            if not page:
                return
            for row_id, size in page:
                db.execute("DELETE FROM reports WHERE id = ?", (row_id,))
                self._bump(db, "dropped_reports", 1)
                total -= size
                if total <= self.limits.max_bytes:
                    return

    @staticmethod
    def _pending_bytes(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COALESCE(SUM(bytes), 0) FROM reports WHERE state = ?",
                              (PENDING,)).fetchone()[0])

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int) -> None:
        if by:
            db.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                       "DO UPDATE SET value = value + excluded.value", (name, by))

    def bump(self, name: str, by: int = 1) -> None:
        with self._tx() as db:
            self._bump(db, name, by)

    def set_meta(self, name: str, value: object) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) "
                       "DO UPDATE SET value = excluded.value", (name, json.dumps(value)))

    def meta(self, name: str) -> object:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- delivering ------------------------------------------------------------------

    def due(self, now: float, limit: int = 32) -> list[Queued]:
        """Undelivered reports whose next try is due, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, camera, track_id, first_seen, last_seen, frames, space, vector, "
                "quality, crop, attempts FROM reports WHERE state = ? AND next_try <= ? "
                "ORDER BY id LIMIT ?", (PENDING, now, limit)).fetchall()
        return [Queued(r[0], Report(r[1], r[2], datetime.fromisoformat(r[3]),
                                    datetime.fromisoformat(r[4]), r[5], r[6], bytes(r[7]),
                                    json.loads(r[8]), None if r[9] is None else bytes(r[9])),
                       r[10]) for r in rows]

    def delivered(self, row_id: int, sighting: int | None, alert: int | None,
                  replayed: bool, now: float | None = None) -> None:
        """The centre accepted the report: keep its record, drop its face data."""
        with self._tx() as db:
            db.execute("UPDATE reports SET state = ?, sighting = ?, alert = ?, vector = NULL, "
                       "crop = NULL, bytes = 0, error = NULL, delivered_at = ? WHERE id = ?",
                       (DELIVERED, sighting, alert, time.time() if now is None else now,
                        row_id))
            self._bump(db, "deliveries", 1)
            self._bump(db, "replayed", 1 if replayed else 0)

    def refused(self, row_id: int, reason: str) -> None:
        """The centre refused the report for good (a 4xx other than 408/429): kept with
        the reason, never sent again, its face data dropped."""
        with self._tx() as db:
            db.execute("UPDATE reports SET state = ?, error = ?, vector = NULL, crop = NULL, "
                       "bytes = 0 WHERE id = ?", (REFUSED, reason[:500], row_id))
            self._bump(db, "refused", 1)

    def retry_later(self, row_id: int, at: float, reason: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE reports SET attempts = attempts + 1, next_try = ?, error = ? "
                       "WHERE id = ?", (at, reason[:500], row_id))
            self._bump(db, "retries", 1)

    def strip_crop(self, row_id: int) -> None:
        """The centre does not want this camera's crops: don't keep one."""
        with self._tx() as db:
            db.execute("UPDATE reports SET bytes = bytes - COALESCE(length(crop), 0), "
                       "crop = NULL WHERE id = ?", (row_id,))

    # -- reading ---------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM reports WHERE state = ?",
                                        (PENDING,)).fetchone()[0])

    def counters(self) -> dict[str, int]:
        with self._lock:
            found = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        return {name: int(found.get(name, 0)) for name in COUNTERS}

    def status(self) -> OutboxStatus:
        with self._lock:
            db = self._db
            backlog, size, oldest = db.execute(
                "SELECT count(*), COALESCE(SUM(bytes), 0), MIN(made_at) FROM reports "
                "WHERE state = ?", (PENDING,)).fetchone()
            delivered = db.execute("SELECT count(*) FROM reports WHERE state = ?",
                                   (DELIVERED,)).fetchone()[0]
            refused = db.execute("SELECT count(*) FROM reports WHERE state = ?",
                                 (REFUSED,)).fetchone()[0]
        contact = self.meta("last_contact")
        error = self.meta("last_error")
        cameras = self.meta("cameras")
        return OutboxStatus(int(backlog), int(size), _iso(oldest), int(delivered),
                            int(refused), self.counters(),
                            _iso(float(contact)) if isinstance(contact, int | float) else None,
                            error if isinstance(error, str) else None,
                            [str(c) for c in cameras] if isinstance(cameras, list) else [])

    def records(self) -> list[dict[str, object]]:
        """Every report the outbox still knows of: what the node made and what became
        of it (for tests and audits of the link; no template, no crop)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT camera, track_id, first_seen, last_seen, frames, state, sighting, "
                "alert, error FROM reports ORDER BY id").fetchall()
        keys = ("camera", "track", "first_seen", "last_seen", "frames", "state", "sighting",
                "alert", "error")
        return [dict(zip(keys, r, strict=True)) for r in rows]
