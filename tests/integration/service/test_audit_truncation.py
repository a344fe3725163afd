"""A shortened audit trail does not verify (issue 11, "a trail that cannot be shortened
unseen"), on SQLite and on PostgreSQL.

The trail is written through ``AuditTrail`` (the code every FRVS operation appends with,
with a clock we choose), tampered with in SQL as someone with write access to the
database would, and checked through the real CLI: ``frvs audit verify`` (exit 30 when
broken), ``frvs audit checkpoint`` and ``frvs audit purge``. The CLI runs in-process
(Typer's runner) because a Python process per call costs seconds on a loaded machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from postgres import fresh_database
from replica_helpers import HookReceiver
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from frvs.api.app import create_api
from frvs.app import Application
from frvs.cli.main import app as cli
from frvs.oversight.audit import AuditDraft, AuditQuery, AuditTrail
from frvs.oversight.models import Actor, AuditContext, AuditEntry, Role
from frvs.storage.store import Store

EXIT_AUDIT_BROKEN = 30
EXIT_INVALID_INPUT = 22
RETENTION_DAYS = 200
WHO = AuditContext(Actor("cli", "tester"))

# The exact tampering of ../shared/checks/oversight, part 3.
CUT_PREFIX = ("DELETE FROM audit_subjects WHERE seq <= 3",
              "UPDATE audit_head SET base_seq = 3, "
              "base_hash = (SELECT hash FROM audit_entries WHERE seq = 3)",
              "DELETE FROM audit_entries WHERE seq <= 3")
# Cut entries 7.. and move the head back to entry 6.
CUT_TAIL = ("DELETE FROM audit_subjects WHERE seq >= 7",
            "DELETE FROM audit_entries WHERE seq >= 7",
            "UPDATE audit_head SET seq = 6, "
            "hash = (SELECT hash FROM audit_entries WHERE seq = 6)")


@dataclass(frozen=True)
class Target:
    """A data directory and the database the CLI uses with it."""

    data: Path
    url: str
    env: dict[str, str]

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--data-dir", str(self.data), *args], env=self.env)
        return result.exit_code, result.stdout

    def verify(self, *extra: str) -> tuple[int, dict[str, Any]]:
        code, out = self.cli("audit", "verify", "--json", *extra)
        return code, json.loads(out.splitlines()[0])

    def sql(self, *statements: str) -> None:
        engine = create_engine(self.url)
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()

    def append(self, count: int, at: datetime | None = None, first: int = 0) -> None:
        """``count`` identify entries naming two subjects each, at ``at`` (default now)."""
        store = Store(self.url, self.data / "media")
        trail = AuditTrail(store, (lambda: at) if at else (lambda: datetime.now(UTC)),
                           RETENTION_DAYS)
        try:
            for i in range(first, first + count):
                trail.append(WHO, AuditDraft("identify", {"n": i}, {"matches": 1},
                                             [f"g/s{i}", f"g/s{i + 1}"]))
        finally:
            store.close()

    def entries(self) -> dict[int, AuditEntry]:
        store = Store(self.url, self.data / "media")
        try:
            trail = AuditTrail(store, lambda: datetime.now(UTC), RETENTION_DAYS)
            return {e.seq: e for e in trail.page(AuditQuery(limit=10_000))}
        finally:
            store.close()

    def forge(self, draft: AuditDraft) -> None:
        """Append an entry with a valid hash, as anyone with write access can."""
        store = Store(self.url, self.data / "media")
        try:
            AuditTrail(store, lambda: datetime.now(UTC), RETENTION_DAYS).append(WHO, draft)
        finally:
            store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """An empty data dir whose store is a SQLite file or a new PostgreSQL database."""
    data = tmp_path / "data"
    data.mkdir()
    env = {"FRVS_DATA_DIR": str(data), "FRVS_AUDIT__RETENTION_DAYS": str(RETENTION_DAYS)}
    if request.param == "sqlite":
        yield Target(data, f"sqlite:///{(data / 'frvs.db').resolve()}", env)
        return
    with fresh_database("frvs_trail") as url:
        yield Target(data, url, {**env, "FRVS_DATABASE_URL": url})


def kinds(report: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["kind"], p["seq"]) for p in report["problems"]}


def detail(report: dict[str, Any], kind: str, seq: int) -> str:
    return next(p["detail"] for p in report["problems"] if (p["kind"], p["seq"]) == (kind, seq))


def checkpoint(target: Target, file: Path) -> dict[str, Any]:
    code, out = target.cli("audit", "checkpoint", "--file", str(file), "--json")
    assert code == 0, out
    written: dict[str, Any] = json.loads(out)["checkpoint"]
    return written


# (a) Prefix deletion with the base moved ----------------------------------------------


def test_prefix_cut_with_moved_base_is_reported(target: Target) -> None:
    target.append(8)
    assert target.verify()[0] == 0
    target.sql(*CUT_PREFIX)
    code, report = target.verify()
    assert code == EXIT_AUDIT_BROKEN
    assert kinds(report) == {("removed", 3)}, report
    assert "no audit.purge entry" in detail(report, "removed", 3)
    assert report["first_seq"] == 4 and report["entries"] == 5


def test_prefix_cut_is_reported_by_a_checkpoint_anchor(target: Target, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    target.append(2)
    assert checkpoint(target, anchors)["seq"] == 2
    target.append(6, first=2)
    assert checkpoint(target, anchors)["seq"] == 8
    assert target.verify("--anchors", str(anchors))[0] == 0
    target.sql(*CUT_PREFIX)
    code, report = target.verify("--anchors", str(anchors))
    assert code == EXIT_AUDIT_BROKEN and report["anchors"] == 2
    # The base nobody accounts for, and the anchored entry 2 gone without a purge.
    assert kinds(report) == {("removed", 3), ("removed", 2)}, report
    assert "anchors.jsonl:1" in detail(report, "removed", 2)


def _forged_purge(base: AuditEntry, with_copy: bool) -> AuditDraft:
    result: dict[str, Any] = {"removed": 3, "previous_base_seq": 0, "first_removed_seq": 1,
                              "last_removed_seq": base.seq, "base_seq": base.seq,
                              "base_hash": base.hash}
    if with_copy:
        result["base_entry"] = {"prev_hash": base.prev_hash, "content": base.hashed_content()}
    return AuditDraft("audit.purge", {"retention_days": 183, "cutoff": "2000-01-01"}, result)


@pytest.mark.parametrize(("with_copy", "why"), [
    (True, "less than 183 days before the purge"),
    (False, "does not record the entry the remaining chain starts from"),
], ids=["copy-of-recent-base", "no-copy"])
def test_forged_purge_entry_does_not_excuse_a_recent_prefix(
        target: Target, tmp_path: Path, with_copy: bool, why: str) -> None:
    """The chain has no secret: an attacker can append a purge entry naming the base.
    It names a base entry too recent to have been purged, or none at all."""
    anchors = tmp_path / "anchors.jsonl"
    target.append(2)
    checkpoint(target, anchors)
    target.append(6, first=2)
    base = target.entries()[3]
    target.sql(*CUT_PREFIX)
    target.forge(_forged_purge(base, with_copy))
    code, report = target.verify("--anchors", str(anchors))
    assert code == EXIT_AUDIT_BROKEN
    assert kinds(report) == {("removed", 3), ("removed", 2)}, report
    assert "audit.purge entry 9 claims it" in detail(report, "removed", 3)
    assert why in detail(report, "removed", 3)


# (b) A genuine retention purge -----------------------------------------------------------


def test_genuine_purge_verifies_with_an_anchor_it_purged(target: Target, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    now = datetime.now(UTC)
    target.append(3, at=now - timedelta(days=300))
    assert checkpoint(target, anchors)["seq"] == 3
    target.append(3, at=now - timedelta(days=250), first=3)
    target.append(2, first=6)  # 7, 8: recent
    assert checkpoint(target, anchors)["seq"] == 8
    sixth = target.entries()[6]
    code, out = target.cli("audit", "purge", "--json")
    assert code == 0 and json.loads(out) == {"removed": 6}, out
    code, report = target.verify("--anchors", str(anchors),
                                 "--anchor", f"6:{sixth.hash}")  # the base itself
    assert code == 0, report
    assert report["problems"] == [] and report["anchors"] == 3
    assert (report["first_seq"], report["head_seq"], report["entries"]) == (7, 9, 3)
    purge = target.entries()[9]
    assert purge.action == "audit.purge" and purge.actor.kind == "cli"
    assert {k: purge.result[k] for k in ("removed", "first_removed_seq", "last_removed_seq",
                                         "base_seq", "base_hash")} == {
        "removed": 6, "first_removed_seq": 1, "last_removed_seq": 6, "base_seq": 6,
        "base_hash": sixth.hash}


def test_deleting_the_purge_entry_is_reported(target: Target) -> None:
    now = datetime.now(UTC)
    target.append(3, at=now - timedelta(days=300))
    target.append(2, first=3)
    assert target.cli("audit", "purge")[0] == 0  # entry 6 records the purge of 1..3
    target.append(1, first=5)
    target.sql("DELETE FROM audit_entries WHERE seq = 6")
    code, report = target.verify()
    assert code == EXIT_AUDIT_BROKEN
    assert kinds(report) == {("removed", 7), ("removed", 3)}, report


# (c) Tail deletion with the head moved back ----------------------------------------------


def test_tail_cut_with_moved_head_is_reported_by_an_anchor(target: Target,
                                                         tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    target.append(8)
    checkpoint(target, anchors)
    target.sql(*CUT_TAIL)
    # Without an anchor a cut tail with a moved head looks like a shorter trail.
    assert target.verify()[0] == 0
    code, report = target.verify("--anchors", str(anchors))
    assert code == EXIT_AUDIT_BROKEN
    assert kinds(report) == {("removed", 8)}, report
    assert "entries 7..8 were removed and the head moved back" in detail(report, "removed", 8)
    # New entries appended after the cut do not hide it: entry 8 is now another one.
    target.append(3, first=20)
    code, report = target.verify("--anchors", str(anchors))
    assert code == EXIT_AUDIT_BROKEN and kinds(report) == {("changed", 8)}, report


# (d) The subject index -------------------------------------------------------------------


@pytest.mark.parametrize("window", [1000, 2], ids=["one-window", "windows-of-2"])
def test_subject_index_rows_deleted_changed_or_added_are_reported(
        target: Target, monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    monkeypatch.setattr("frvs.oversight.verification.WINDOW", window)
    target.append(8)  # entry n names g/s{n-1} and g/s{n}
    assert target.verify()[0] == 0
    target.sql("DELETE FROM audit_subjects WHERE seq = 4",
               "DELETE FROM audit_subjects WHERE seq = 7 AND ref = 'g/s7'",
               "UPDATE audit_subjects SET ref = 'g/nobody' WHERE seq = 6 AND ref = 'g/s6'",
               "INSERT INTO audit_subjects (seq, ref) VALUES (2, 'g/planted')")
    code, out = target.cli("audit", "list", "--subject", "g/s3", "--json")
    # What the deletion hides: entry 4 no longer shows in the subject's history.
    assert code == 0 and [e["seq"] for e in json.loads(out)["entries"]] == [3]
    code, report = target.verify()
    assert code == EXIT_AUDIT_BROKEN
    assert kinds(report) == {("index", 4), ("index", 7), ("index", 6), ("index", 2)}, report
    assert "lacks 'g/s3', 'g/s4'" in detail(report, "index", 4)
    assert "lists 'g/nobody' instead of 'g/s6'" in detail(report, "index", 6)
    assert "adds 'g/planted'" in detail(report, "index", 2)


# (e) Checkpoints and anchor files ---------------------------------------------------------


def test_checkpoint_appends_one_line_per_run(target: Target, tmp_path: Path) -> None:
    anchors = tmp_path / "kept" / "anchors.jsonl"
    anchors.parent.mkdir()
    target.append(4)
    code, out = target.cli("audit", "checkpoint", "--file", str(anchors))
    assert code == 0, out
    target.append(1, first=4)
    assert target.cli("audit", "checkpoint", "--file", str(anchors))[0] == 0
    lines = anchors.read_text().splitlines()
    assert len(lines) == 2 and json.loads(out) == json.loads(lines[0])
    heads = [json.loads(line) for line in lines]
    entries = target.entries()
    assert [(h["seq"], h["hash"]) for h in heads] == [(4, entries[4].hash), (5, entries[5].hash)]
    assert all(datetime.fromisoformat(h["at"]).tzinfo is not None for h in heads)
    assert target.verify("--anchors", str(anchors))[0] == 0


def test_a_tampered_anchor_line_is_reported(target: Target, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    target.append(4)
    checkpoint(target, anchors)
    target.append(1, first=4)
    checkpoint(target, anchors)
    first, second = anchors.read_text().splitlines()
    head = json.loads(first)
    forged = {**head, "hash": ("0" if head["hash"][0] != "0" else "1") + head["hash"][1:]}
    anchors.write_text(json.dumps(forged) + "\n" + second + "\n")
    code, report = target.verify("--anchors", str(anchors))
    assert code == EXIT_AUDIT_BROKEN
    assert kinds(report) == {("changed", 4)}, report
    assert "anchors.jsonl:1" in detail(report, "changed", 4)
    anchors.write_text(second + "\n{not json\n")
    code, out = target.cli("audit", "verify", "--anchors", str(anchors))
    assert code == EXIT_INVALID_INPUT, out


def test_checkpoint_refuses_a_broken_trail(target: Target, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    target.append(4)
    target.sql(*CUT_PREFIX)
    code, _ = target.cli("audit", "checkpoint", "--file", str(anchors))
    assert code == EXIT_AUDIT_BROKEN and not anchors.exists()


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    """A local HTTP server that keeps the JSON bodies posted to it."""
    server = HookReceiver()
    yield server
    server.close()


def test_checkpoint_posts_the_head_to_a_url(
        target: Target, receiver: HookReceiver) -> None:
    target.append(3)
    code, out = target.cli("audit", "checkpoint", "--url",
                           f"http://127.0.0.1:{receiver.port}/anchors", "--json")
    assert code == 0, out
    posted = json.loads(out)
    received = [d.body for d in receiver.deliveries]
    assert posted["status"] == 204 and received == [posted["checkpoint"]]
    assert received[0]["seq"] == 3 and received[0]["hash"] == target.entries()[3].hash


URL_FAILURES: list[tuple[str, Sequence[str], int]] = [
    ("not http", ["--url", "ftp://127.0.0.1/anchors"], EXIT_INVALID_INPUT),
    ("nobody listening", ["--url", "http://127.0.0.1:9/anchors"], 1),
]


@pytest.mark.parametrize(("case", "args", "exit_code"), URL_FAILURES,
                         ids=[c[0] for c in URL_FAILURES])
def test_checkpoint_url_failures_are_clear(target: Target, case: str, args: Sequence[str],
                                           exit_code: int) -> None:
    target.append(1)
    code, out = target.cli("audit", "checkpoint", *args, "--json")
    assert code == exit_code, (case, out)


# The API -------------------------------------------------------------------------------


def test_api_verify_checks_anchors(session_app: Application) -> None:
    session_app.store.open()
    issued = session_app.oversight.keys.create(WHO, Role.AUDITOR, "test_audit_truncation")
    trail = session_app.oversight.trail
    head = trail.checkpoint(trail.verify())
    wrong = ("0" if head.hash[0] != "0" else "1") + head.hash[1:]
    with TestClient(create_api(session_app),
                    headers={"Authorization": f"Bearer {issued.token}"}) as client:
        good = client.get("/v1/audit/verify", params={"anchor": f"{head.seq}:{head.hash}"})
        assert good.status_code == 200 and good.json()["ok"] is True, good.text
        assert good.json()["anchors"] == 1
        bad = client.get("/v1/audit/verify", params={"anchor": [f"{head.seq}:{wrong}"]})
        assert bad.status_code == 200 and bad.json()["ok"] is False
        assert [(p["kind"], p["seq"]) for p in bad.json()["problems"]] == [("changed", head.seq)]
        assert client.get("/v1/audit/verify", params={"anchor": "x"}).status_code in (400, 422)
