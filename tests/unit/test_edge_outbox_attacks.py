"""An attacker's (and a bad disk's) view of the node's outbox on a real SQLite file: a
long outage keeps the byte bound exactly and counts every drop, enforcing the bound
costs little memory however large the backlog, and a damaged file is refused at start
with a message saying what to do (never a traceback). And the link's plain-http rule
against names that only look local."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from frvs.core.errors import FileReadError, InvalidInputError
from frvs.edge.outbox import Outbox, OutboxLimits, Report
from frvs.edge.sender import Link

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _report(track: int, crop: int = 0) -> Report:
    return Report("stage", track, T0 + timedelta(seconds=track),
                  T0 + timedelta(seconds=track + 2), 5, "sface@1/128/cosine", b"\x01" * 512,
                  {"overall": 0.5}, b"\xff" * crop if crop else None)


def test_a_long_outage_keeps_the_bound_and_counts_every_drop(tmp_path: Path) -> None:
    limits = OutboxLimits(max_bytes=60 * 1024, max_age_s=3600.0, keep_delivered_s=3600.0)
    box = Outbox(tmp_path / "o.db", limits)
    made = 0
    # Ten simulated hours, a report (some with crops) every 24 s: centre down throughout.
    for step in range(1500):
        box.add(_report(step, crop=900 if step % 3 == 0 else 0), now=24.0 * step)
        made += 1
        if step % 97 == 0:
            assert box.status().backlog_bytes <= limits.max_bytes
    status, counters = box.status(), box.counters()
    assert status.backlog_bytes <= limits.max_bytes
    assert counters["made"] == made
    assert status.backlog + counters["dropped_reports"] == made  # every report accounted
    assert counters["dropped_crops"] > 0
    box.close()


def test_enforcing_the_bound_holds_no_backlog_in_memory(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", OutboxLimits(max_bytes=30_000 * 768))
    box.add_all([(_report(i), float(i)) for i in range(30_000)])  # exactly full
    tracemalloc.start()
    try:
        box.add(_report(30_000, crop=2000), now=30_000.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert box.counters()["dropped_reports"] >= 1
    assert peak < 256 * 1024, f"one add over the bound peaked at {peak} bytes"
    box.close()


def test_a_file_that_is_not_an_outbox_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not an SQLite database, just junk bytes" * 100)
    with pytest.raises(FileReadError, match=r"damaged.*Move it aside"):
        Outbox(path)


def test_a_torn_outbox_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.add_all([(_report(i, crop=600), float(i)) for i in range(400)])
    box.close()
    data = bytearray(path.read_bytes())
    # A disk fault: a run of pages in the middle overwritten with garbage.
    middle = len(data) // 2
    data[middle:middle + 16_384] = b"\xa5" * 16_384
    path.write_bytes(bytes(data))
    with pytest.raises(FileReadError, match="damaged"):
        Outbox(path)


@pytest.mark.parametrize("centre", [
    "http://localhost.evil.com", "http://127.0.0.1.nip.io", "http://localhost.",
    "http://127.0.0.1@evil.com", "http://evil.com#@127.0.0.1", "http://0.0.0.0",
    "http://[::ffff:10.0.0.1]", "http://10.0.0.1"])
def test_plain_http_to_what_only_looks_local_is_refused(centre: str) -> None:
    with pytest.raises(InvalidInputError, match="plain http"):
        Link(centre, "token")


@pytest.mark.parametrize("centre", ["http://127.0.0.1:8080", "http://[::1]:8080",
                                    "http://localhost:8080", "http://127.3.4.5"])
def test_plain_http_to_this_machine_is_allowed(centre: str) -> None:
    Link(centre, "token")


def test_insecure_never_turns_verification_off() -> None:
    assert Link("https://centre.example", "t", insecure=True).verify() is not False
