"""Token buckets in the store, so that per-key rate limits hold across replicas.

One row per (kind, key): the tokens left and when they were counted. Taking a token
locks the row (``SELECT ... FOR UPDATE`` on PostgreSQL; the write transaction on
SQLite), refills it for the time passed and takes one, so replicas behind one load
balancer share one bucket per key. Times are the database's clock on PostgreSQL
(``clock_timestamp()``), never a replica's: with each replica's own clock, requests
alternating between a replica in step and one 30 s ahead refilled the bucket at every
hop (a burst of 2 let 10 of 10 through). The injected clock serves SQLite (one machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Float, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from frvs.storage.database import insert_absent
from frvs.storage.schema import Base
from frvs.storage.store import Store


class RateBucketRow(Base):
    __tablename__ = "rate_buckets"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    # Seconds since the epoch when ``tokens`` was counted.
    stamp: Mapped[float] = mapped_column(Float)


class SharedBuckets:
    """Token buckets of every replica on one store."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def _now(self, session: Session) -> float:
        """Seconds since the epoch by the one clock all replicas share."""
        if session.get_bind().dialect.name == "postgresql":
            return float(session.scalar(text(
                "SELECT extract(epoch FROM clock_timestamp())")) or 0.0)
        return self._clock()

    def take(self, kind: str, key_id: str, rate: float, burst: float,
             cost: float = 1.0) -> float:
        """Take ``cost`` tokens of ``kind`` for ``key_id`` (``rate`` a second, up to
        ``burst``): 0 when taken, else the seconds until they are available."""
        with self._store.unit(write=True) as uow:
            insert_absent(uow.session, RateBucketRow, {
                "kind": kind, "key_id": key_id, "tokens": burst, "stamp": self._now(uow.session)},
                ["kind", "key_id"])
            row = uow.session.scalars(select(RateBucketRow).where(
                RateBucketRow.kind == kind, RateBucketRow.key_id == key_id)
                .with_for_update().execution_options(populate_existing=True)).one()
            now = self._now(uow.session)  # after the lock: the replica before us counted earlier
            tokens = min(burst, row.tokens + max(0.0, now - row.stamp) * rate)
            row.stamp = now
            if tokens >= cost:
                row.tokens = tokens - cost
                return 0.0
            row.tokens = tokens
            return (cost - tokens) / rate
