"""Audit retention: a purge removes only entries older than the retention period (a
prefix of the chain), moves the chain's base past them, is itself audited, and the
rest still verifies. Retention below six months is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from frvs.core.errors import InvalidRecordError
from frvs.oversight.anchors import Anchor
from frvs.oversight.audit import AuditDraft, AuditQuery, AuditTrail
from frvs.oversight.models import Actor, AuditContext
from frvs.storage.store import Store

WHO = AuditContext(Actor("cli", "tester"))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_purge_removes_old_prefix_and_keeps_the_chain_verifiable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path / "media")
    clock = Clock()
    trail = AuditTrail(store, clock, retention_days=200)
    for day in range(10):  # entries 1..10, one per 30 days
        clock.now = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=30 * day)
        trail.append(WHO, AuditDraft("identify", {"n": day}, {}, [f"g/s{day}"]))
    fourth = trail.page(AuditQuery(before_seq=5, limit=1))[0]
    clock.now = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=300)
    removed = trail.purge(WHO)
    # Older than 200 days at day 300: entries at days 0..90 (seq 1..4).
    assert removed == 4
    report = trail.verify()
    assert report.ok, report.problems
    assert (report.first_seq, report.head_seq, report.entries) == (5, 11, 7)
    newest = trail.page(AuditQuery(limit=1))[0]
    assert newest.action == "audit.purge"
    # The purge records what it removed and the base the rest chains from.
    assert {k: newest.result[k] for k in ("removed", "previous_base_seq", "first_removed_seq",
                                          "last_removed_seq", "base_seq")} == {
        "removed": 4, "previous_base_seq": 0, "first_removed_seq": 1, "last_removed_seq": 4,
        "base_seq": 4}
    assert newest.result["base_hash"] == fourth.hash
    assert newest.result["base_entry"] == {"prev_hash": fourth.prev_hash,
                                           "content": fourth.hashed_content()}
    assert trail.page(AuditQuery(subject="g/s0")) == []
    assert len(trail.page(AuditQuery(subject="g/s9"))) == 1
    store.close()


def test_retention_under_six_months_is_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path / "media")
    with pytest.raises(InvalidRecordError):
        AuditTrail(store, Clock(), retention_days=90)


def test_second_purge_removes_the_first_purge_entry_and_still_verifies(tmp_path: Path) -> None:
    """The purge that set the base is always in the trail: a later purge that removes it
    moves the base again and records that. Anchors taken before either purge still
    verify, as the recorded purges account for them."""
    store = Store(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path / "media")
    clock = Clock()
    start = clock.now
    trail = AuditTrail(store, clock, retention_days=200)
    anchors = []
    for day in range(10):  # entries 1..10, one per 30 days
        clock.now = start + timedelta(days=30 * day)
        trail.append(WHO, AuditDraft("identify", {"n": day}, {}, [f"g/s{day}"]))
        anchors.append(trail.checkpoint(trail.verify()))
    clock.now = start + timedelta(days=300)
    assert trail.purge(WHO) == 4  # 1..4; entry 11 records it
    clock.now = start + timedelta(days=501)
    assert trail.purge(WHO) == 7  # 5..11, with the first purge entry; entry 12 records it
    report = trail.verify(anchors)
    assert report.ok, report.problems
    assert (report.first_seq, report.head_seq, report.entries, report.anchors) == (12, 12, 1, 10)
    second = trail.page(AuditQuery(limit=1))[0]
    assert (second.result["previous_base_seq"], second.result["first_removed_seq"],
            second.result["base_seq"]) == (4, 5, 11)
    # An anchor for an entry a purge removed, but with another hash, is still a rewrite
    # when it is the base; a purged anchor before the base cannot be checked further.
    forged = Anchor(11, "0" * 64)
    assert [p.kind.value for p in trail.verify([forged]).problems] == ["changed"]
    store.close()
