"""The gallery commands as a user runs them (in-process, with --json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frvs.cli.main import app
from frvs.models.registry import PackRegistry

runner = CliRunner()


def frvs(data: Path, *args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["--data-dir", str(data), *args])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, (json.loads(lines[-1]) if lines else {})


def test_gallery_commands_never_load_a_model(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a gallery command loaded a model pack")

    monkeypatch.setattr(PackRegistry, "get", refuse)
    code, created = frvs(tmp_path, "gallery", "create", "people", "--json")
    assert code == 0
    assert (created["kind"], created["retention_days"], created["keep_crops"]) == (
        "general", None, False)
    code, listed = frvs(tmp_path, "gallery", "list", "--json")
    assert [g["name"] for g in listed["galleries"]] == ["people"]  # type: ignore[attr-defined]
    code, shown = frvs(tmp_path, "gallery", "show", "people", "--json")
    assert (code, shown["subjects"], shown["decision_threshold"]) == (0, 0, 0.363)
    code, error = frvs(tmp_path, "gallery", "create", "people", "--json")
    assert (code, error["error"]) == (17, "conflict")
    code, error = frvs(tmp_path, "gallery", "create", "wl", "--kind", "watch_list", "--json")
    assert (code, error["error"]) == (22, "invalid_input")
    code, _ = frvs(tmp_path, "gallery", "delete", "people", "--json")
    assert code == 0
    code, error = frvs(tmp_path, "gallery", "show", "people", "--json")
    assert (code, error["error"]) == (16, "not_found")
    assert (tmp_path / "frvs.db").is_file()


def test_enrol_identify_crossmatch_delete_and_purge(tmp_path: Path, data_dir: Path) -> None:
    train = data_dir / "identities" / "train"
    frvs(tmp_path, "gallery", "create", "g")
    code, report = frvs(tmp_path, "enroll", "g", "--subject", "obama", "--meta", "badge=44",
                        str(train / "obama/obama.jpg"), "--json")
    assert (code, report["enrolled"]) == (0, 1)
    code, report = frvs(tmp_path, "enroll", "g", "--subject", "x", "--meta", "religion=y",
                        str(train / "biden/biden.jpg"), "--json")
    assert (code, report["refused"]) == (22, 1)
    code, report = frvs(tmp_path, "enroll", "g", "--subject", "couple",
                        str(data_dir / "pairs/images/couple.jpg"), "--json")
    assert code == 22 and "2 faces" in json.dumps(report)
    code, found = frvs(tmp_path, "identify", "g", str(data_dir / "identities/test/obama1.jpg"),
                       "--json")
    (face,) = found["faces"]  # type: ignore[misc]
    assert code == 0 and face["match"] == "obama" and len(face["box"]) == 4
    assert face["candidates"][0]["subject"] == "obama"
    code, pairs = frvs(tmp_path, "crossmatch", "g", "--json")
    assert (code, pairs["pairs"]) == (0, [])
    frvs(tmp_path, "gallery", "create", "h")
    frvs(tmp_path, "enroll", "h", "--subject", "b44", str(train / "obama/obama2.jpg"))
    out = runner.invoke(app, ["--data-dir", str(tmp_path), "crossmatch", "g", "h", "--csv"])
    assert out.stdout.splitlines()[0:1] == ["a,b,score"]
    assert out.stdout.splitlines()[1].startswith("obama,b44,0.")
    code, deleted = frvs(tmp_path, "subject", "delete", "g", "obama", "--json")
    assert code == 0 and deleted["deleted"]["templates"] == 1  # type: ignore[index]
    code, purged = frvs(tmp_path, "purge", "--json")
    assert (code, purged["deleted"], purged["subjects"]) == (0, [], 0)  # a retention run


def test_calibrate_measures_then_applies_an_open_set_threshold(tmp_path: Path,
                                                                data_dir: Path) -> None:
    frvs(tmp_path, "gallery", "create", "people")
    code, _ = frvs(tmp_path, "enroll", "people", "--from-folder",
                   str(data_dir / "identities" / "train"), "--json")
    assert code == 0
    code, measured = frvs(tmp_path, "gallery", "calibrate", "people", "--fpir", "0.2", "--json")
    assert code == 0
    # 9 photographs of 5 different people; 4 of them have two photographs.
    assert (measured["subjects"], measured["probes"], measured["applied"]) == (5, 9, False)
    assert measured["mated_probes"] == 8
    # Five different people: nobody passes the pack's 1:1 threshold, every mate is found.
    assert (measured["current_fpir"], measured["current_fnir"]) == (0.0, 0.0)
    threshold = measured["threshold"]
    assert isinstance(threshold, float) and threshold < 0.363
    by_fpir = {p["fpir"]: p["threshold"] for p in measured["thresholds_by_fpir"]}  # type: ignore[attr-defined]
    assert set(by_fpir.values()) == {None}  # 9 searches cannot show 10% or less
    code, error = frvs(tmp_path, "gallery", "calibrate", "people", "--fpir", "0.01", "--json")
    assert (code, error["error"]) == (22, "invalid_input")
    assert "needs at least 100" in str(error["message"])
    code, error = frvs(tmp_path, "gallery", "calibrate", "people", "--fpir", "0", "--json")
    assert (code, error["error"]) == (22, "invalid_input")

    code, applied = frvs(tmp_path, "gallery", "calibrate", "people", "--fpir", "0.2",
                         "--apply", "--json")
    assert (code, applied["applied"], applied["threshold"]) == (0, True, threshold)
    code, shown = frvs(tmp_path, "gallery", "show", "people", "--json")
    assert shown["decision_threshold"] == pytest.approx(threshold)
    code, found = frvs(tmp_path, "identify", "people",
                       str(data_dir / "identities/test/obama1.jpg"), "--json")
    assert found["threshold"] == pytest.approx(threshold)
    assert [f["match"] for f in found["faces"]] == ["obama"]  # type: ignore[attr-defined]
    _, trail = frvs(tmp_path, "audit", "list", "--json")
    actions = [e["action"] for e in trail["entries"]]  # type: ignore[attr-defined]
    assert actions.count("gallery.calibrate") == 4  # refusals are on the trail too


def test_update_changes_settings_redates_expiry_and_is_audited(tmp_path: Path,
                                                               data_dir: Path) -> None:
    frvs(tmp_path, "gallery", "create", "wl", "--kind", "watch_list", "--purpose", "p",
         "--legal-basis", "court order 1", "--retention-days", "30")
    code, _ = frvs(tmp_path, "enroll", "wl", "--subject", "obama",
                   str(data_dir / "identities/train/obama/obama.jpg"), "--json")
    assert code == 0
    _, before = frvs(tmp_path, "gallery", "show", "wl", "--json")
    expires_30 = before["subject_list"][0]["expires_at"]  # type: ignore[index]

    code, updated = frvs(tmp_path, "gallery", "update", "wl", "--retention-days", "1",
                         "--threshold", "0.5", "--legal-basis", "court order 2", "--json")
    assert code == 0
    assert (updated["retention_days"], updated["decision_threshold"],
            updated["legal_basis"]) == (1, 0.5, "court order 2")
    _, after = frvs(tmp_path, "gallery", "show", "wl", "--json")
    expires_1 = after["subject_list"][0]["expires_at"]  # type: ignore[index]
    assert expires_1 < expires_30  # re-dated from enrolment: 29 days earlier

    code, cleared = frvs(tmp_path, "gallery", "update", "wl", "--clear-threshold",
                         "--no-retention", "--json")
    assert (code, cleared["decision_threshold"], cleared["retention_days"]) == (0, 0.363, None)
    _, kept = frvs(tmp_path, "gallery", "show", "wl", "--json")
    assert kept["subject_list"][0]["expires_at"] is None  # type: ignore[index]

    code, error = frvs(tmp_path, "gallery", "update", "wl", "--purpose", " ", "--json")
    assert (code, error["error"]) == (22, "invalid_input")  # a watch list keeps its purpose
    code, error = frvs(tmp_path, "gallery", "update", "wl", "--purpose", "", "--json")
    assert (code, error["error"]) == (22, "invalid_input")
    frvs(tmp_path, "gallery", "create", "gen", "--purpose", "visitors")
    code, general = frvs(tmp_path, "gallery", "update", "gen", "--purpose", "", "--json")
    assert (code, general["purpose"]) == (0, None)  # a general gallery may drop it
    code, error = frvs(tmp_path, "gallery", "update", "wl", "--json")
    assert (code, error["error"]) == (22, "invalid_input")
    code, error = frvs(tmp_path, "gallery", "update", "wl", "--threshold", "0.4",
                       "--clear-threshold", "--json")
    assert (code, error["error"]) == (22, "invalid_input")
    code, error = frvs(tmp_path, "gallery", "update", "nope", "--threshold", "0.4", "--json")
    assert (code, error["error"]) == (16, "not_found")

    _, trail = frvs(tmp_path, "audit", "list", "--json")
    entries = trail["entries"]
    assert isinstance(entries, list)
    updates = [e for e in entries if e["action"] == "gallery.update"]
    assert sorted(e["outcome"] for e in updates).count("ok") == 3  # wl twice, gen once
    first = next(e for e in updates if "legal_basis" in e["inputs"]["changes"])
    assert first["result"]["before"] == {"retention_days": 30, "threshold": None,
                                         "legal_basis": "court order 1"}
