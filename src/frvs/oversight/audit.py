"""The append-only audit trail: a SHA-256 hash chain over entries, with a head record.

Each entry's hash covers its canonical JSON (time, actor, action, case reference,
purpose, subjects named, input and result summaries, outcome) followed by the previous
entry's hash. A separate head row holds the newest sequence number and hash, and the
base the chain starts from (sequence number and hash of the last entry a retention
purge removed), updated in the same transaction as every append and purge. A subject
index (``audit_subjects``: entry, subject named) serves subject exports; it is not
hashed.

Appends are serialised across processes: on SQLite the write transaction starts with
``BEGIN IMMEDIATE`` (the store's write sessions), on PostgreSQL the head row is locked
with ``SELECT ... FOR UPDATE``.

Retention (``purge``) removes only a prefix of the chain (entries older than
``retention_days``, at least ``MIN_RETENTION_DAYS``), moves the base past it and appends
an ``audit.purge`` entry in the same transaction that records what it removed: the
first and last sequence numbers, the new base (seq and hash) and a copy of the base
entry's hashed content.

What ``verify`` (``frvs audit verify``) detects on its own, from the database alone:

- an entry whose content was changed (its hash no longer matches);
- entries removed from the middle (the next entry's link points at nothing) and entries
  reordered (a link points at an entry stored elsewhere);
- entries removed from the end while the head still names the old newest entry;
- entries removed from the start with the base moved past them (prefix deletion), unless
  an ``audit.purge`` entry in the remaining trail accounts for exactly that base: it
  names its seq and hash, its copy of the base entry hashes to the base hash, the base
  entry is at least ``MIN_RETENTION_DAYS`` older than the purge, and the purge is not
  dated in the future. Deleting that purge entry breaks the chain after the base, which
  is reported like any other removal;
- subject index rows deleted, added or changed: the index is rebuilt from each entry's
  subjects (refs cut to 320 characters, as appended) and compared window by window.

What needs an anchor kept outside the database (``frvs audit checkpoint`` writes one to
a file or URL; ``verify --anchor SEQ:HASH`` / ``--anchors FILE`` checks them):

- a rewritten chain: someone with write access who changes or deletes entries and
  recomputes every later hash and the head. An anchor at or after the change no longer
  matches (its entry's hash differs, or the base hash differs when the base is the
  anchor);
- entries removed from the end with the head moved back to the new newest entry: an
  anchor after the new head (taken before the removal) reports them;
- an anchored entry removed from the start is accepted only when the recorded purge that
  accounts for the base covers it.

What is still not detected, even with anchors: entries appended after the newest anchor
and then removed from the end with the head moved back (take checkpoints often; the
gap is the time between two); and a forged ``audit.purge`` entry appended at the end
that removes a prefix older than ``MIN_RETENTION_DAYS``, which a genuine retention purge
may remove anyway. The chain has no secret: whoever can write to the database can append
entries that verify, so anchors are the proof that history was not rewritten.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from frvs.core.caller import AuditDraft, record_refusal
from frvs.core.errors import InvalidRecordError
from frvs.core.metrics import AUDIT_APPEND_SECONDS
from frvs.core.times import Clock
from frvs.oversight.anchors import Anchor
from frvs.oversight.models import AuditContext, AuditEntry, AuditVerification, canonical_json
from frvs.oversight.tables import AuditEntryRow, AuditHeadRow, AuditSubjectRow
from frvs.oversight.verification import (
    MIN_RETENTION_DAYS,
    PURGE_ACTION,
    purge_record,
    verify_trail,
)
from frvs.oversight.verification import entry_of as _entry
from frvs.storage.store import Store

__all__ = ["MIN_RETENTION_DAYS", "Anchor", "AuditDraft", "AuditQuery", "AuditTrail",
           "OperationRecord"]

logger = logging.getLogger(__name__)


def _normalise(summary: Mapping[str, Any]) -> dict[str, Any]:
    # Tuples become lists and keys strings now, so the hash of what is stored equals
    # the hash of what was appended.
    value = json.loads(canonical_json(dict(summary)))
    assert isinstance(value, dict)
    return value


@dataclass(slots=True)
class OperationRecord:
    """What an audited read fills in before it ends: its result summary and the
    subjects it touched (those found by a search, for instance)."""

    result: dict[str, Any] = field(default_factory=dict)
    subjects: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of ``AuditTrail.page``; ``before_seq`` is the cursor (newest first)."""

    before_seq: int | None = None
    limit: int = 100
    action: str | None = None
    key_id: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditTrail:
    """Appends, lists, verifies and purges the audit trail of one store."""

    def __init__(self, store: Store, clock: Clock, retention_days: int) -> None:
        if retention_days < MIN_RETENTION_DAYS:
            raise InvalidRecordError(f"audit retention must be at least {MIN_RETENTION_DAYS} "
                                     f"days, got {retention_days}")
        self._store = store
        self._clock = clock
        self.retention_days = retention_days

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        self._store.open()
        with self._store.database.session(write=write) as session:
            yield session

    def write(self, session: Session, caller: AuditContext, draft: AuditDraft) -> AuditEntry:
        """Append one entry inside the caller's transaction (``UnitOfWork.audit``): the
        operation's writes and its entry commit together, or neither does."""
        started = time.perf_counter()
        try:
            return self._append_locked(session, self._lock_head(session), caller, draft)
        finally:
            AUDIT_APPEND_SECONDS.observe(time.perf_counter() - started)

    def append(self, caller: AuditContext, draft: AuditDraft) -> AuditEntry:
        """Append one entry in a transaction of its own; returns it with its hash."""
        with self._session(write=True) as session:
            return self.write(session, caller, draft)

    @staticmethod
    def _lock_head(session: Session) -> AuditHeadRow:
        # FOR UPDATE serialises appends on PostgreSQL; SQLite ignores it and relies on
        # the BEGIN IMMEDIATE that write sessions start with.
        head = session.scalar(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update())
        if head is None:
            raise InvalidRecordError("the audit head row is missing; the store was not migrated")
        return head

    def _append_locked(self, session: Session, head: AuditHeadRow, context: AuditContext,
                       draft: AuditDraft) -> AuditEntry:
        entry = AuditEntry(
            seq=head.seq + 1, at=self._clock(), actor=context.actor, action=draft.action,
            case_reference=context.case_reference, purpose=context.purpose,
            subjects=tuple(dict.fromkeys(draft.subjects)), inputs=_normalise(draft.inputs),
            result=_normalise(draft.result), outcome=draft.outcome, prev_hash=head.hash,
        )
        entry = replace(entry, hash=entry.compute_hash())
        actor = entry.actor
        session.add(AuditEntryRow(
            seq=entry.seq, at=entry.at, actor_kind=actor.kind, actor_name=actor.name,
            key_id=actor.key_id, role=actor.role.value if actor.role else None,
            actor_holder=actor.holder,
            action=entry.action, case_reference=entry.case_reference, purpose=entry.purpose,
            subjects=list(entry.subjects), inputs=dict(entry.inputs),
            result=dict(entry.result), outcome=entry.outcome, prev_hash=entry.prev_hash,
            hash=entry.hash,
        ))
        session.flush()
        session.add_all(AuditSubjectRow(seq=entry.seq, ref=ref[:320]) for ref in entry.subjects)
        head.seq, head.hash = entry.seq, entry.hash
        return entry

    @contextmanager
    def operation(self, context: AuditContext, action: str, inputs: Mapping[str, Any],
                  subjects: Sequence[str] = ()) -> Iterator[OperationRecord]:
        """Audit a block that writes nothing of its own (a search, an export): ``ok`` with
        the result it recorded, appended before the caller sees the result, or the
        error it raised as a refusal. Operations that write use ``UnitOfWork.audit``
        instead, so their writes and their entry commit together."""
        record = OperationRecord()
        try:
            yield record
        except Exception as exc:
            record_refusal(self, context, action, inputs, exc,
                           subjects=[*subjects, *record.subjects])
            raise
        self.append(context, AuditDraft(action, inputs, record.result,
                                        [*subjects, *record.subjects]))

    def audit(self, caller: AuditContext, draft: AuditDraft) -> None:
        """``frvs.core.caller.AuditLog``: append in a transaction of its own."""
        self.append(caller, draft)

    def verify(self, anchors: Sequence[Anchor] = ()) -> AuditVerification:
        """Walk the chain from its base to the head and check the base, the subject index
        and ``anchors`` (heads kept outside the database); report every inconsistency."""
        with self._session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One snapshot for the head and every query of the walk, so appends and
                # purges committed meanwhile are not mistaken for tampering (SQLite's
                # read transaction is a snapshot already).
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            return verify_trail(session, self._head(session), self._clock(), anchors)

    def checkpoint(self, report: AuditVerification) -> Anchor:
        """The head ``report`` verified up to, as an anchor timed now, to keep outside the
        database. A trail that does not verify is not anchored."""
        if not report.ok:
            raise InvalidRecordError("the audit trail does not verify; an anchor would vouch "
                                     "for a broken history")
        return Anchor(report.head_seq, report.head_hash, self._clock(), "checkpoint")

    @staticmethod
    def _head(session: Session) -> AuditHeadRow:
        head = session.get(AuditHeadRow, 1)
        if head is None:
            raise InvalidRecordError("the audit head row is missing; the store was not migrated")
        return head

    def page(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries newest first, after the cursor and the filters."""
        stmt = select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(query.limit)
        if query.before_seq is not None:
            stmt = stmt.where(AuditEntryRow.seq < query.before_seq)
        if query.action:
            stmt = stmt.where(AuditEntryRow.action == query.action)
        if query.key_id:
            stmt = stmt.where(AuditEntryRow.key_id == query.key_id)
        if query.since:
            stmt = stmt.where(AuditEntryRow.at >= query.since)
        if query.until:
            stmt = stmt.where(AuditEntryRow.at < query.until)
        if query.subject:
            stmt = stmt.where(AuditEntryRow.seq.in_(
                select(AuditSubjectRow.seq).where(AuditSubjectRow.ref == query.subject)))
        with self._session() as session:
            return [_entry(r) for r in session.scalars(stmt)]

    def between(self, since: datetime, until: datetime) -> Iterator[AuditEntry]:
        """Every entry with ``since <= at < until``, oldest first (for statistics)."""
        stmt = (select(AuditEntryRow).where(AuditEntryRow.at >= since, AuditEntryRow.at < until)
                .order_by(AuditEntryRow.seq).execution_options(yield_per=1000))
        with self._session() as session:
            for row in session.scalars(stmt):
                yield _entry(row)

    def purge(self, context: AuditContext) -> int:
        """Remove entries older than the retention period (a prefix of the chain), move
        the chain's base past them and record in the same transaction what went (first
        and last seq, the new base and a copy of the base entry: ``purge_record``), so
        ``verify`` can tell this purge from a prefix deleted behind FRVS's back. Returns
        how many entries went."""
        cutoff = self._clock() - timedelta(days=self.retention_days)
        with self._session(write=True) as session:
            head = self._lock_head(session)
            last = session.scalar(select(func.max(AuditEntryRow.seq))
                                  .where(AuditEntryRow.at < cutoff))
            removed = 0
            result: dict[str, Any] = {"removed": 0}
            if last is not None:
                base = session.get(AuditEntryRow, last)
                assert base is not None
                first, removed = session.execute(
                    select(func.min(AuditEntryRow.seq), func.count())
                    .where(AuditEntryRow.seq <= last)).one()
                result = purge_record(head.base_seq, int(first), int(removed), _entry(base))
                session.execute(delete(AuditSubjectRow).where(AuditSubjectRow.seq <= last))
                session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq <= last))
                head.base_seq, head.base_hash = base.seq, base.hash
            self._append_locked(session, head, context, AuditDraft(
                PURGE_ACTION, {"retention_days": self.retention_days,
                               "cutoff": cutoff.isoformat()}, result))
        if removed:
            logger.info("audit purge removed %d entries older than %s (up to %d)", removed,
                        cutoff, last)
        return int(removed)
