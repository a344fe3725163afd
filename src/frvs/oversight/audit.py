"""The append-only audit trail: a SHA-256 hash chain over entries, with a head record.

Each entry's hash covers its canonical JSON (time, actor, action, case reference,
purpose, subjects named, input and result summaries, outcome) followed by the previous
entry's hash. A separate head row holds the newest sequence number and hash, updated
in the same transaction as every append.

What ``verify`` detects: an entry whose content was changed (its hash no longer
matches), an entry removed from the middle or the start (the next entry's link points
at nothing), entries removed from the end (the head names a later entry), and entries
reordered (a link points at an entry stored elsewhere). What it cannot detect: someone
with write access to the database who rewrites an entry *and* recomputes every later
hash *and* the head. Against that, keep ``head_seq``/``head_hash`` from
``frvs audit verify --json`` outside the database (a ticket, a print-out, another
system) and pass them back with ``--anchor SEQ:HASH``: a rewritten chain no longer
contains that anchor.

Appends are serialised across processes: on SQLite the write transaction starts with
``BEGIN IMMEDIATE`` (the store's write sessions), on PostgreSQL the head row is locked
with ``SELECT ... FOR UPDATE``. Retention (``purge``) only ever removes a prefix of the
chain and moves the head's base past it, so the rest still verifies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from frvs.core.caller import AuditDraft, record_refusal
from frvs.core.errors import InvalidRecordError
from frvs.galleries.ports import Clock
from frvs.oversight.models import (
    Actor,
    AuditContext,
    AuditEntry,
    AuditProblem,
    AuditVerification,
    ProblemKind,
    Role,
    canonical_json,
)
from frvs.oversight.tables import AuditEntryRow, AuditHeadRow, AuditSubjectRow
from frvs.storage.store import Store

logger = logging.getLogger(__name__)

MIN_RETENTION_DAYS = 183
"""EU AI Act Art. 19: logs of high-risk systems are kept at least six months."""


def _normalise(summary: Mapping[str, Any]) -> dict[str, Any]:
    # Tuples become lists and keys strings now, so the hash of what is stored equals
    # the hash of what was appended.
    value = json.loads(canonical_json(dict(summary)))
    assert isinstance(value, dict)
    return value


def _entry(row: AuditEntryRow) -> AuditEntry:
    actor = Actor(row.actor_kind, row.actor_name, row.key_id,
                  Role(row.role) if row.role else None, row.actor_holder)
    return AuditEntry(
        seq=row.seq, at=row.at, actor=actor, action=row.action,
        case_reference=row.case_reference, purpose=row.purpose,
        subjects=tuple(row.subjects or ()), inputs=row.inputs or {}, result=row.result or {},
        outcome=row.outcome, prev_hash=row.prev_hash, hash=row.hash,
    )


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
        return self._append_locked(session, self._lock_head(session), caller, draft)

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

    def verify(self, anchor: tuple[int, str] | None = None) -> AuditVerification:
        """Walk the chain from its base to the head; report every inconsistency."""
        with self._session() as session:
            head = self._head(session)
            hashes = {h: s for s, h in session.execute(
                select(AuditEntryRow.seq, AuditEntryRow.hash))}
            problems: list[AuditProblem] = []
            prev_hash, prev_seq, count = head.base_hash, head.base_seq, 0
            rows = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq)
                                   .execution_options(yield_per=1000))
            for row in rows:
                problems.extend(_check(_entry(row), prev_hash, prev_seq, hashes))
                prev_hash, prev_seq, count = row.hash, row.seq, count + 1
            if head.seq != prev_seq:
                problems.append(AuditProblem(
                    ProblemKind.REMOVED, prev_seq + 1,
                    f"the head names entry {head.seq} but the trail ends at {prev_seq}: "
                    f"entries {prev_seq + 1}..{head.seq} were removed"))
            elif head.hash != prev_hash:
                problems.append(AuditProblem(ProblemKind.CHANGED, head.seq,
                                             "the newest entry's hash differs from the head's"))
            if anchor is not None and hashes.get(anchor[1]) != anchor[0]:
                problems.append(AuditProblem(
                    ProblemKind.CHANGED, anchor[0],
                    f"the anchor {anchor[0]}:{anchor[1][:12]}... is not in the trail: the chain "
                    "was rewritten or the anchor was purged"))
            return AuditVerification(count, head.base_seq + 1, head.seq, head.hash,
                                     tuple(problems))

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
        the chain's base past them and record the purge; returns how many went."""
        cutoff = self._clock() - timedelta(days=self.retention_days)
        with self._session(write=True) as session:
            head = self._lock_head(session)
            last = session.scalar(select(func.max(AuditEntryRow.seq))
                                  .where(AuditEntryRow.at < cutoff))
            removed = 0
            if last is not None:
                base = session.get(AuditEntryRow, last)
                assert base is not None
                removed = int(session.scalar(select(func.count()).select_from(AuditEntryRow)
                                             .where(AuditEntryRow.seq <= last)) or 0)
                session.execute(delete(AuditSubjectRow).where(AuditSubjectRow.seq <= last))
                session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq <= last))
                head.base_seq, head.base_hash = base.seq, base.hash
            self._append_locked(session, head, context, AuditDraft(
                "audit.purge", {"retention_days": self.retention_days,
                                "cutoff": cutoff.isoformat()}, {"removed": removed}))
        if removed:
            logger.info("audit purge removed %d entries older than %s", removed, cutoff)
        return removed


def _check(entry: AuditEntry, prev_hash: str, prev_seq: int,
           hashes: Mapping[str, int]) -> list[AuditProblem]:
    """The problems of one entry, given the entry stored before it."""
    problems = []
    if entry.compute_hash() != entry.hash:
        problems.append(AuditProblem(ProblemKind.CHANGED, entry.seq,
                                     "the entry's content does not match its hash"))
    if entry.prev_hash != prev_hash:
        linked = hashes.get(entry.prev_hash)
        if linked is not None:
            problems.append(AuditProblem(
                ProblemKind.REORDERED, entry.seq,
                f"the chain puts it after entry {linked}, but it is stored after {prev_seq}"))
        else:
            problems.append(AuditProblem(
                ProblemKind.REMOVED, entry.seq,
                f"the entry it was chained to is missing (stored after {prev_seq})"))
    elif entry.seq != prev_seq + 1:
        problems.append(AuditProblem(ProblemKind.CHANGED, entry.seq,
                                     f"sequence number changed (expected {prev_seq + 1})"))
    return problems
