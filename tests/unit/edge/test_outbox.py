"""The node's outbox on a real SQLite file: committed reports survive a reopen, a track
is queued once, the byte limit drops the oldest crops first and then the oldest
reports, the age limit drops stale reports, every drop is counted, and delivered
reports keep their record but no face data. And the sender's backoff and link rules."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from frvs.core.errors import InvalidInputError
from frvs.edge.outbox import Outbox, OutboxLimits, Report
from frvs.edge.sender import Backoff, Link

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _report(track: int, crop: int = 0) -> Report:
    return Report("stage", track, T0 + timedelta(seconds=track), T0 + timedelta(seconds=track + 2),
                  5, "sface@1/128/cosine", b"\x01" * 512, {"overall": 0.5},
                  b"\xff" * crop if crop else None)


def test_a_committed_report_survives_a_reopen_and_is_queued_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.add(_report(1, crop=100))
    box.add(_report(1, crop=100))  # the same track again: ignored
    box.close()
    again = Outbox(path)
    due = again.due(now=1e12)
    assert [q.report.track_id for q in due] == [1]
    assert due[0].report.crop == b"\xff" * 100
    assert due[0].report.first_seen == T0 + timedelta(seconds=1)
    assert again.counters()["made"] == 1


def test_over_the_byte_limit_crops_go_first_then_the_oldest_reports(tmp_path: Path) -> None:
    # Each report: 512 template + 256 overhead (+ crop). Room: 6 reports without crops.
    box = Outbox(tmp_path / "o.db", OutboxLimits(max_bytes=6 * 768 + 100))
    for track in range(1, 4):
        box.add(_report(track, crop=1200), now=1000.0 + track)
    assert box.counters()["dropped_crops"] == 1
    kept = {q.report.track_id: q.report.crop for q in box.due(now=1e12)}
    assert kept[1] is None and kept[2] is not None and kept[3] is not None  # oldest first
    for track in range(4, 11):
        box.add(_report(track), now=1000.0 + track)
    counters = box.counters()
    assert (counters["dropped_crops"], counters["dropped_reports"]) == (3, 4)
    assert [q.report.track_id for q in box.due(now=1e12)] == [5, 6, 7, 8, 9, 10]
    assert box.status().backlog_bytes <= box.limits.max_bytes


def test_reports_older_than_the_age_limit_are_dropped_and_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", OutboxLimits(max_age_s=3600, keep_delivered_s=3600))
    box.add(_report(1), now=0.0)
    box.add(_report(2), now=4000.0)
    assert [q.report.track_id for q in box.due(now=1e12)] == [2]
    assert box.counters()["dropped_reports"] == 1


def test_a_delivered_report_keeps_its_record_and_loses_its_face_data(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    row = box.add(_report(1, crop=50))
    box.delivered(row, sighting=42, alert=None, replayed=False)
    assert box.pending() == 0
    with sqlite3.connect(tmp_path / "o.db") as db:
        vector, crop, state, sighting = db.execute(
            "select vector, crop, state, sighting from reports").fetchone()
    assert (vector, crop, state, sighting) == (None, None, "delivered", 42)
    assert box.records()[0]["state"] == "delivered"
    assert box.counters()["deliveries"] == 1


def test_a_retry_waits_and_is_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    row = box.add(_report(1))
    box.retry_later(row, at=500.0, reason="ConnectError")
    assert box.due(now=499.0) == []
    assert [q.attempts for q in box.due(now=500.0)] == [1]
    assert box.counters()["retries"] == 1


def test_backoff_grows_exponentially_within_its_cap_with_jitter() -> None:
    backoff = Backoff(base_s=0.5, cap_s=8.0)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(1, 12) for _ in range(50)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert max(backoff.delay(1, rng) for _ in range(100)) <= 1.0
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not a fixed schedule
    with pytest.raises(InvalidInputError):
        Backoff(base_s=2.0, cap_s=1.0)


@pytest.mark.parametrize(("centre", "insecure", "ok"), [
    ("https://centre.example", False, True),
    ("http://127.0.0.1:8000", False, True),
    ("http://localhost:8000", False, True),
    ("http://10.0.0.5:8000", False, False),
    ("http://10.0.0.5:8000", True, True),
    ("ftp://centre.example", True, False),
])
def test_plain_http_only_to_this_machine_unless_insecure(centre: str, insecure: bool,
                                                          ok: bool) -> None:
    if ok:
        Link(centre, "token", insecure=insecure)
    else:
        with pytest.raises(InvalidInputError):
            Link(centre, "token", insecure=insecure)


def test_a_link_needs_a_device_key() -> None:
    with pytest.raises(InvalidInputError, match="FRVS_DEVICE_KEY"):
        Link("https://centre.example", "")
