"""Tampering with the audit trail directly in the database is caught by
``frvs audit verify``: each changed, removed or reordered entry is reported, exit 30;
an untampered trail verifies (exit 0).

The CLI runs in-process (Typer's runner: the real command code) because starting a
Python process per case costs seconds on a loaded machine.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frvs.cli.main import app as cli

EXIT_AUDIT_BROKEN = 30


def run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args])
    return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose trail holds 8 entries, made by CLI commands."""
    data = tmp_path_factory.mktemp("trail") / "data"
    assert run(data, "init", "--json")[0] == 0  # entry 1
    for i in range(4):  # entries 2..5
        code, out = run(data, "key", "create", f"device-{i}", "--role", "device")
        assert code == 0, out
    assert run(data, "gallery", "create", "staff")[0] == 0  # 6
    keys = json.loads(run(data, "key", "list", "--json")[1])["keys"]
    assert run(data, "key", "revoke", keys[1]["key_id"])[0] == 0  # 7
    assert run(data, "gallery", "delete", "staff", "--yes")[0] == 0  # 8
    return data


def _trail(tmp_path: Path, pristine: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    shutil.copytree(pristine, data)
    return data, data / "frvs.db"


def _verify(data: Path, *extra: str) -> tuple[int, dict[str, object]]:
    code, out = run(data, "audit", "verify", "--json", *extra)
    return code, json.loads(out.splitlines()[0])


def _sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)


def _change(db: Path) -> None:
    _sql(db, "UPDATE audit_entries SET purpose = 'nothing to see' WHERE seq = 4")


def _change_result(db: Path) -> None:
    _sql(db, """UPDATE audit_entries SET result = '{"key_id": "k_forged"}' WHERE seq = 3""")


def _delete_middle(db: Path) -> None:
    _sql(db, "DELETE FROM audit_entries WHERE seq = 5")


def _delete_first(db: Path) -> None:
    _sql(db, "DELETE FROM audit_entries WHERE seq = 1")


def _delete_last(db: Path) -> None:
    _sql(db, "DELETE FROM audit_entries WHERE seq = 8")


def _reorder(db: Path) -> None:
    _sql(db, "UPDATE audit_entries SET seq = 1000 WHERE seq = 3",
         "UPDATE audit_entries SET seq = 3 WHERE seq = 4",
         "UPDATE audit_entries SET seq = 4 WHERE seq = 1000")


CASES: list[tuple[str, Callable[[Path], None], set[tuple[str, int]]]] = [
    ("changed purpose", _change, {("changed", 4)}),
    ("changed result", _change_result, {("changed", 3)}),
    ("removed from the middle", _delete_middle, {("removed", 6)}),
    ("removed the first", _delete_first, {("removed", 2)}),
    ("removed the last", _delete_last, {("removed", 8)}),
    ("reordered", _reorder, {("reordered", 3), ("reordered", 4), ("reordered", 5)}),
]


def test_untampered_trail_verifies(tmp_path: Path, pristine: Path) -> None:
    data, _ = _trail(tmp_path, pristine)
    code, report = _verify(data)
    assert code == 0 and report["ok"] is True and report["entries"] == 8
    assert report["head_seq"] == 8 and report["problems"] == []
    # Made at the command line, so each entry names the OS user as the actor.
    entries = json.loads(run(data, "audit", "list", "--json")[1])["entries"]
    assert [e["action"] for e in entries][::-1] == [
        "key.create", "key.create", "key.create", "key.create", "key.create",
        "gallery.create", "key.revoke", "gallery.delete"]
    assert all(e["actor_label"].startswith("cli:") for e in entries)


@pytest.mark.parametrize(("case", "tamper", "found"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_reported(tmp_path: Path, pristine: Path, case: str,
                               tamper: Callable[[Path], None],
                               found: set[tuple[str, int]]) -> None:
    data, db = _trail(tmp_path, pristine)
    tamper(db)
    code, report = _verify(data)
    assert code == EXIT_AUDIT_BROKEN, case
    problems = report["problems"]
    assert isinstance(problems, list)
    assert {(p["kind"], p["seq"]) for p in problems} == found, problems


def test_rewritten_chain_is_caught_by_an_anchor(tmp_path: Path, pristine: Path) -> None:
    """Someone who rewrites an entry and recomputes every later hash and the head passes
    the chain check; the head kept outside the database catches them."""
    data, db = _trail(tmp_path, pristine)
    _, before = _verify(data)
    anchor = f"{before['head_seq']}:{before['head_hash']}"
    assert _verify(data, "--anchor", anchor)[0] == 0
    from frvs.oversight.models import AuditEntry  # rebuild the chain as a forger would

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_entries SET purpose = 'forged' WHERE seq = 2")
        _rehash(conn, AuditEntry)
    code, report = _verify(data)
    assert code == 0, report  # the forger recomputed everything
    code, report = _verify(data, "--anchor", anchor)
    assert code == EXIT_AUDIT_BROKEN
    problems = report["problems"]
    assert isinstance(problems, list) and problems[0]["kind"] == "changed"


def _rehash(conn: sqlite3.Connection, entry_type: type) -> None:
    from datetime import UTC, datetime

    from frvs.oversight.models import Actor, Role

    prev = "0" * 64
    rows = conn.execute("SELECT seq, at, actor_kind, actor_name, key_id, role, "
                        "actor_holder, action, case_reference, purpose, subjects, inputs, "
                        "result, outcome FROM audit_entries ORDER BY seq").fetchall()
    for (seq, at, kind, name, key_id, role, holder, action, case, purpose, subjects, inputs,
         result, outcome) in rows:
        entry = entry_type(
            seq=seq, at=datetime.fromisoformat(at).replace(tzinfo=UTC),
            actor=Actor(kind, name, key_id, Role(role) if role else None, holder),
            action=action,
            case_reference=case, purpose=purpose, subjects=tuple(json.loads(subjects)),
            inputs=json.loads(inputs), result=json.loads(result), outcome=outcome,
            prev_hash=prev)
        digest = entry.compute_hash()
        conn.execute("UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE seq = ?",
                     (prev, digest, seq))
        prev = digest
    conn.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))
