"""What a new user reads: plain (non-JSON) output as tables whose names are data, never
Rich markup, not cut to 80 columns when piped; attendance with display names, `--day`
as the API says, and an unknown gallery refused; unknown API query parameters refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import factories
import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from video_app import make_app

from frvs.api.app import create_api
from frvs.app import Application
from frvs.cli.main import app as cli
from frvs.core.caller import Role
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.pipeline.camera import CAMERA_RUNNER
from frvs.video.models import CameraRole, TrackDecision

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def _decision(subject: str, gallery: str, kind: str, camera: str = "door") -> TrackDecision:
    return factories.decision(camera, subject, gallery=gallery, kind=kind, at=T0)


def _cli(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args])
    return result.exit_code, result.stdout


@pytest.fixture
def app(tmp_path: Path) -> Application:
    return make_app(tmp_path / "data")


def test_alert_status_and_markup_like_names_are_printed(app: Application,
                                                        tmp_path: Path) -> None:
    app.galleries.create(LOCAL, GallerySpec("wl", GalleryKind.WATCH_LIST, purpose="t",
                                            legal_basis="t"))
    app.video.alerts.raise_for(CAMERA_RUNNER, _decision("[bold]mallory", "wl", "watch_list"))
    code, out = _cli(tmp_path / "data", "alerts", "list")
    assert code == 0, out
    row = next(line for line in out.splitlines() if "mallory" in line)
    assert "[bold]mallory" in row and " new " in row, out


def test_attendance_report_names_day_and_unknown_gallery(
        app: Application, tmp_path: Path, data_dir: Path) -> None:
    app.galleries.create(LOCAL, GallerySpec("staff", GalleryKind.ATTENDANCE))
    app.galleries.enrol(LOCAL, "staff", [EnrolItem(
        "obama", data_dir / "identities" / "train" / "obama" / "obama.jpg", "Barack Obama")])
    app.video.attendance.record(_decision("obama", "staff", "attendance"), CameraRole.ENTRY)
    data = tmp_path / "data"
    code, out = _cli(data, "attendance", "report", "--day", "2025-01-06", "--gallery",
                     "staff")
    assert code == 0 and "Barack Obama" in out and "obama" in out, out
    assert "{" not in out  # a table, not a printed dict
    code, out = _cli(data, "attendance", "report", "--date", "2025-01-06", "--json")
    report = json.loads(out)
    assert report["day"] == "2025-01-06" and report["lines"][0]["name"] == "Barack Obama"
    code, out = _cli(data, "attendance", "report", "--day", "2025-01-06", "--csv")
    assert out.splitlines()[1].startswith("obama,Barack Obama,")
    code, out = _cli(data, "attendance", "report", "--day", "2025-01-06", "--gallery",
                     "nope", "--json")
    assert code == 16 and json.loads(out)["error"] == "not_found", out

    token, _ = key_caller(app, Role.OPERATOR, "op")
    api = TestClient(create_api(app), headers={"Authorization": f"Bearer {token}"})
    ok = api.get("/v1/attendance", params={"day": "2025-01-06"}).json()
    assert ok["lines"][0]["name"] == "Barack Obama"
    assert api.get("/v1/attendance", params={"gallery": "nope"}).status_code == 404
    typo = api.get("/v1/attendance", params={"date": "2025-01-06"})
    assert typo.status_code == 400, typo.text
    assert "date" in typo.json()["detail"] and "day" in typo.json()["detail"]


def test_piped_tables_are_not_cut(app: Application, tmp_path: Path) -> None:
    code, out = _cli(tmp_path / "data", "key", "create", "a-key-with-a-rather-long-name",
                     "--role", "reviewer", "--holder", "Somebody With A Long Name", "--json")
    key_id = json.loads(out)["key_id"]
    code, out = _cli(tmp_path / "data", "key", "list")
    assert code == 0 and key_id in out and "a-key-with-a-rather-long-name" in out, out
    code, out = _cli(tmp_path / "data", "sightings")
    assert code == 0 and "first_seen" in out and "{" not in out, out


def test_watch_prints_its_summary_as_a_table(app: Application, tmp_path: Path,
                                             data_dir: Path) -> None:
    app.galleries.create(LOCAL, GallerySpec("people", GalleryKind.GENERAL))
    frames = factories.photo_folder(
        tmp_path / "frames", sorted((data_dir / "identities" / "train" / "obama").glob("*"))[:2])
    code, out = _cli(tmp_path / "data", "watch", str(frames), "--gallery", "people",
                     "--fps", "0")
    assert code == 0, out
    assert "{" not in out and "'" not in out, out  # not a printed dict
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in out.splitlines() if line.count("│") == 3}
    assert rows["frames_processed"] == str(len(list(frames.iterdir()))), out
    assert rows["health"] == "ended"
