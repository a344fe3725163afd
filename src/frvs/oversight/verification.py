"""Verification of the audit trail: one streaming walk from the chain's base to its head.

``verify_trail`` reads the entries oldest first (``yield_per``) and checks, with memory
bounded by ``WINDOW`` entries and ``MAX_PROBLEMS`` problems whatever the trail's length:

- the chain: each entry's content against its hash, its link to the entry stored before
  it, its sequence number, and the head against the newest entry;
- the base: a base moved past 0 must be accounted for by a retention purge recorded in
  the remaining trail (``purge_record``): an ``audit.purge`` entry naming exactly that
  base, carrying a copy of the base entry that hashes to ``base_hash``, dated no later
  than now, and older than that entry by at least ``MIN_RETENTION_DAYS``;
- the subject index: the ``audit_subjects`` rows of each window of entries against the
  subjects those entries name (an index row is not hashed, so a deleted, added or
  changed row is found only here);
- anchors kept outside the database: an anchor after the head means the tail was cut
  and the head moved back; an anchor within the trail must still hold its hash; an
  anchor at or before the base must have been removed by the recorded purge.

The module docstring of ``frvs.oversight.audit`` says what this does and does not catch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frvs.core.errors import InvalidRecordError
from frvs.oversight.anchors import Anchor
from frvs.oversight.models import (
    GENESIS_HASH,
    Actor,
    AuditEntry,
    AuditProblem,
    AuditVerification,
    ProblemKind,
    Role,
    canonical_json,
)
from frvs.oversight.tables import AuditEntryRow, AuditHeadRow, AuditSubjectRow

MIN_RETENTION_DAYS = 183
"""EU AI Act Art. 19: logs of high-risk systems are kept at least six months."""

SUBJECT_REF_LENGTH = 320
"""``audit_subjects.ref`` holds the first 320 characters of a subject reference."""

PURGE_ACTION = "audit.purge"
WINDOW = 1000
"""Entries whose subject index rows are compared at once."""
MAX_PROBLEMS = 1000
"""Problems reported in full; later ones are only counted."""
MAX_LOOKUPS = 200
"""Broken links whose target is searched for (a scan each) before they are reported
without telling a removed entry from a moved one."""
CLOCK_SKEW = timedelta(hours=1)
"""How far in the future a purge entry may be dated (clocks of different hosts)."""


def entry_of(row: AuditEntryRow) -> AuditEntry:
    """The record of a stored row."""
    actor = Actor(row.actor_kind, row.actor_name, row.key_id,
                  Role(row.role) if row.role else None, row.actor_holder)
    return AuditEntry(
        seq=row.seq, at=row.at, actor=actor, action=row.action,
        case_reference=row.case_reference, purpose=row.purpose,
        subjects=tuple(row.subjects or ()), inputs=row.inputs or {}, result=row.result or {},
        outcome=row.outcome, prev_hash=row.prev_hash, hash=row.hash,
    )


def _content_hash(content: Mapping[str, Any], prev_hash: str) -> str:
    # The formula of AuditEntry.compute_hash, over content kept as JSON.
    payload = canonical_json(dict(content)) + prev_hash
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def purge_record(previous_base_seq: int, first: int, removed: int,
                 base: AuditEntry) -> dict[str, Any]:
    """The result of an ``audit.purge`` entry that removed entries ``first..base.seq``:
    the new base and a copy of the base entry (what its hash covers), so ``verify`` can
    check the removed entries were old enough without having them."""
    return {
        "removed": removed, "previous_base_seq": previous_base_seq,
        "first_removed_seq": first, "last_removed_seq": base.seq,
        "base_seq": base.seq, "base_hash": base.hash,
        "base_entry": {"prev_hash": base.prev_hash, "content": base.hashed_content()},
    }


def _purge_flaw(entry: AuditEntry, head: AuditHeadRow, now: datetime) -> str | None:
    """Why this ``audit.purge`` entry does not account for the head's base, or None."""
    result = entry.result
    if result.get("base_hash") != head.base_hash:
        return f"it names another hash for entry {head.base_seq}"
    if result.get("last_removed_seq") != head.base_seq:
        return "its removed range does not end at the base"
    base = result.get("base_entry")
    content = base.get("content") if isinstance(base, dict) else None
    prev_hash = base.get("prev_hash") if isinstance(base, dict) else None
    if not isinstance(content, dict) or not isinstance(prev_hash, str):
        return "it does not record the entry the remaining chain starts from"
    if _content_hash(content, prev_hash) != head.base_hash:
        return "the base entry it records does not hash to the base"
    try:
        base_at = datetime.fromisoformat(str(content.get("at")))
    except ValueError:
        return "the base entry it records has no valid time"
    if base_at.tzinfo is None:
        return "the base entry it records has a time without a time zone"
    if base_at >= entry.at - timedelta(days=MIN_RETENTION_DAYS):
        return (f"it removed entries as recent as {base_at.isoformat(timespec='seconds')}, "
                f"less than {MIN_RETENTION_DAYS} days before the purge")
    if entry.at > now + CLOCK_SKEW:
        return f"it is dated {entry.at.isoformat(timespec='seconds')}, in the future"
    return None


@dataclass
class _Walk:
    """The state of one verification walk."""

    session: Session
    head: AuditHeadRow
    now: datetime
    problems: list[AuditProblem] = field(default_factory=list)
    omitted: int = 0
    entries: int = 0
    prev_seq: int = 0
    prev_hash: str = ""
    lookups: int = 0
    base_ok: bool = False
    base_flaw: str | None = None
    expected: dict[int, frozenset[str]] = field(default_factory=dict)
    window_lo: int | None = None
    unparsed: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.prev_seq, self.prev_hash = self.head.base_seq, self.head.base_hash
        self.base_ok = self.head.base_seq == 0 and self.head.base_hash == GENESIS_HASH

    def report(self, kind: ProblemKind, seq: int, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(AuditProblem(kind, seq, detail))
        else:
            self.omitted += 1

    # The chain -------------------------------------------------------------------------

    def entry(self, entry: AuditEntry) -> None:
        intact = entry.compute_hash() == entry.hash
        if not intact:
            self.report(ProblemKind.CHANGED, entry.seq,
                        "the entry's content does not match its hash")
        if entry.prev_hash != self.prev_hash:
            self._broken_link(entry)
        elif entry.seq != self.prev_seq + 1:
            self.report(ProblemKind.CHANGED, entry.seq,
                        f"sequence number changed (expected {self.prev_seq + 1})")
        if intact and entry.action == PURGE_ACTION:
            self._purge(entry)
        self._index(entry)
        self.prev_seq, self.prev_hash, self.entries = entry.seq, entry.hash, self.entries + 1

    def _purge(self, entry: AuditEntry) -> None:
        """Does this purge entry account for the head's base?"""
        if self.base_ok or self.head.base_seq == 0 \
                or entry.result.get("base_seq") != self.head.base_seq:
            return
        flaw = _purge_flaw(entry, self.head, self.now)
        self.base_ok = flaw is None
        if flaw:
            self.base_flaw = f"the audit.purge entry {entry.seq} claims it, but {flaw}"

    def _broken_link(self, entry: AuditEntry) -> None:
        if self.lookups >= MAX_LOOKUPS:
            self.report(ProblemKind.REMOVED, entry.seq,
                        f"the entry it was chained to is not stored after {self.prev_seq} "
                        "(removed or moved; too many broken links to look it up)")
            return
        self.lookups += 1
        linked = self.session.scalar(select(AuditEntryRow.seq)
                                     .where(AuditEntryRow.hash == entry.prev_hash).limit(1))
        if linked is not None:
            self.report(ProblemKind.REORDERED, entry.seq,
                        f"the chain puts it after entry {linked}, but it is stored after "
                        f"{self.prev_seq}")
        else:
            self.report(ProblemKind.REMOVED, entry.seq,
                        f"the entry it was chained to is missing (stored after {self.prev_seq})")

    def finish_chain(self) -> None:
        head = self.head
        if head.seq != self.prev_seq:
            self.report(ProblemKind.REMOVED, self.prev_seq + 1,
                        f"the head names entry {head.seq} but the trail ends at "
                        f"{self.prev_seq}: entries {self.prev_seq + 1}..{head.seq} were removed")
        elif head.hash != self.prev_hash:
            self.report(ProblemKind.CHANGED, head.seq,
                        "the newest entry's hash differs from the head's")
        if not self.base_ok and head.base_seq == 0:
            self.report(ProblemKind.CHANGED, 0, "the chain's base hash was changed (no purge "
                        "ever ran, so it must be the genesis hash)")
        elif not self.base_ok:
            why = self.base_flaw or "no audit.purge entry in the trail records it"
            self.report(ProblemKind.REMOVED, head.base_seq,
                        f"the chain starts after entry {head.base_seq}, but {why}: entries up "
                        f"to {head.base_seq} were removed outside a retention purge")

    def step_over_unreadable(self, after: int | None) -> int | None:
        """After a batch of rows failed to load, walk the entries after the last one
        walked one at a time up to the one whose stored data cannot be read (JSON that
        does not parse, an unknown role: written outside FRVS). Report it as changed and
        step over it, keeping its chain link so the entries after it are still checked.
        Its sequence number, or None when every entry loads on its own."""
        last = self.prev_seq if self.entries else after
        while True:
            stmt = select(AuditEntryRow.seq, AuditEntryRow.hash).order_by(AuditEntryRow.seq)
            if last is not None:
                stmt = stmt.where(AuditEntryRow.seq > last)
            found = self.session.execute(stmt.limit(1)).first()
            if found is None:
                return None
            seq, stored_hash = int(found[0]), str(found[1])
            try:
                row = self.session.scalars(select(AuditEntryRow).where(
                    AuditEntryRow.seq == seq).execution_options(populate_existing=True)).one()
                entry = entry_of(row)
            except (ValueError, InvalidRecordError):
                self.report(ProblemKind.CHANGED, seq, "the entry's stored data cannot be read "
                            "(not valid JSON or an unknown value): it was changed outside FRVS")
                self.unparsed.add(seq)
                self.prev_seq, self.prev_hash, self.entries = seq, stored_hash, self.entries + 1
                return seq
            self.entry(entry)
            last = seq

    # The subject index -----------------------------------------------------------------

    def _index(self, entry: AuditEntry) -> None:
        self.expected[entry.seq] = frozenset(ref[:SUBJECT_REF_LENGTH]
                                             for ref in entry.subjects)
        if len(self.expected) >= WINDOW:
            self.flush_index(entry.seq)

    def flush_index(self, hi: int | None) -> None:
        """Compare the index rows with ``window_lo < seq <= hi`` (unbounded when None)
        with the subjects of the entries walked in that window."""
        stmt = select(AuditSubjectRow.seq, AuditSubjectRow.ref).order_by(
            AuditSubjectRow.seq, AuditSubjectRow.ref)
        if self.window_lo is not None:
            stmt = stmt.where(AuditSubjectRow.seq > self.window_lo)
        if hi is not None:
            stmt = stmt.where(AuditSubjectRow.seq <= hi)
        seen = set()
        rows = self.session.execute(stmt.execution_options(yield_per=WINDOW))
        for seq, group in groupby(rows, key=lambda row: int(row[0])):
            seen.add(seq)
            self._compare(seq, frozenset(str(row[1]) for row in group))
        for seq, refs in self.expected.items():
            if seq not in seen and refs:
                self._compare(seq, frozenset())
        self.expected.clear()
        self.window_lo = hi

    def _compare(self, seq: int, actual: frozenset[str]) -> None:
        if seq in self.unparsed:  # already reported; what it names cannot be read
            return
        expected = self.expected.get(seq)
        if expected is None:
            self.report(ProblemKind.INDEX, seq,
                        f"the subject index lists {_refs(actual)} for entry {seq}, which is "
                        "not in the trail")
            return
        missing, extra = expected - actual, actual - expected
        if missing and extra:
            self.report(ProblemKind.INDEX, seq,
                        f"the subject index lists {_refs(extra)} instead of {_refs(missing)}")
        elif missing:
            self.report(ProblemKind.INDEX, seq,
                        f"the subject index lacks {_refs(missing)} (rows deleted)")
        elif extra:
            self.report(ProblemKind.INDEX, seq,
                        f"the subject index adds {_refs(extra)}, which the entry does not name")

    # Anchors ---------------------------------------------------------------------------

    def anchor(self, anchor: Anchor) -> None:
        head = self.head
        name = f"the anchor {anchor.seq}:{anchor.hash[:12]}... ({anchor.source})"
        if anchor.seq > head.seq:
            self.report(ProblemKind.REMOVED, anchor.seq,
                        f"{name} is after the head ({head.seq}): entries {head.seq + 1}.."
                        f"{anchor.seq} were removed and the head moved back")
        elif anchor.seq > head.base_seq:
            stored = self.session.scalar(select(AuditEntryRow.hash)
                                         .where(AuditEntryRow.seq == anchor.seq))
            if stored is None:
                self.report(ProblemKind.REMOVED, anchor.seq, f"{name} is missing from the trail")
            elif stored != anchor.hash:
                self.report(ProblemKind.CHANGED, anchor.seq,
                            f"{name} no longer matches: the trail up to it was rewritten")
        elif anchor.seq == head.base_seq and head.base_hash != anchor.hash:
            self.report(ProblemKind.CHANGED, anchor.seq,
                        f"{name} differs from the hash the chain starts from: the trail up "
                        "to it was rewritten")
        elif not self.base_ok:
            self.report(ProblemKind.REMOVED, anchor.seq,
                        f"{name} was removed without a recorded retention purge")


def _refs(refs: frozenset[str], shown: int = 3) -> str:
    listed = ", ".join(repr(r) for r in sorted(refs)[:shown])
    return listed + (f" and {len(refs) - shown} more" if len(refs) > shown else "")


def verify_trail(session: Session, head: AuditHeadRow, now: datetime,
                 anchors: Sequence[Anchor] = ()) -> AuditVerification:
    """Walk the chain from its base to the head; report every inconsistency found."""
    walk = _Walk(session, head, now)
    after: int | None = None
    while True:
        stmt = select(AuditEntryRow).order_by(AuditEntryRow.seq)
        if after is not None:
            stmt = stmt.where(AuditEntryRow.seq > after)
        try:
            for row in session.scalars(stmt.execution_options(yield_per=WINDOW)):
                walk.entry(entry_of(row))
        except (ValueError, InvalidRecordError):  # JSON that does not parse, a bad value
            skipped = walk.step_over_unreadable(after)
            if skipped is None:
                raise
            after = skipped
            continue
        break
    walk.flush_index(None)
    walk.finish_chain()
    for anchor in anchors:
        walk.anchor(anchor)
    return AuditVerification(walk.entries, head.base_seq + 1, head.seq, head.hash,
                             tuple(walk.problems), len(anchors), walk.omitted)
