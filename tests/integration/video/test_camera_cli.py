"""Registering and changing cameras from the command line (in-process, with --json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frvs.cli.main import app

runner = CliRunner()


def frvs(data: Path, *args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["--data-dir", str(data), *args])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, (json.loads(lines[-1]) if lines else {})


def test_camera_update_changes_what_is_given_and_keeps_the_rest(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Outside the data directory (tmp_path): no camera may read FRVS's own data.
    frames = tmp_path_factory.mktemp("frames")
    frvs(tmp_path, "gallery", "create", "staff")
    code, added = frvs(tmp_path, "camera", "add", "door", str(frames), "--location", "hall",
                       "--retention-days", "3", "--json")
    assert code == 0

    code, updated = frvs(tmp_path, "camera", "update", "door", "-g", "staff", "--fps", "2",
                         "--roi", "10,20,300,200", "--disable", "--role", "entry", "--json")
    assert code == 0
    assert updated == added | {"galleries": ["staff"], "sample_fps": 2.0,
                               "roi": [10.0, 20.0, 300.0, 200.0], "enabled": False,
                               "role": "entry"}
    _, listed = frvs(tmp_path, "camera", "list", "--json")
    assert listed["cameras"] == [updated]

    code, cleared = frvs(tmp_path, "camera", "update", "door", "--no-roi", "--no-galleries",
                         "--fps", "0", "--enable", "--json")
    assert code == 0
    assert (cleared["roi"], cleared["galleries"], cleared["sample_fps"], cleared["enabled"],
            cleared["location"], cleared["retention_days"]) == (None, [], None, True, "hall", 3)

    for args, exit_code in [(["--roi", "1,2,3"], 22), (["--roi", "0,0,nan,nan"], 22),
                            (["--roi", "-1,0,10,10"], 22), (["--fps", "500"], 22), ([], 22),
                            (["-g", "staff", "--no-galleries"], 22), (["-g", "nope"], 16)]:
        code, error = frvs(tmp_path, "camera", "update", "door", *args, "--json")
        assert code == exit_code, (args, error)
    code, error = frvs(tmp_path, "camera", "update", "ghost", "--fps", "1", "--json")
    assert (code, error["error"]) == (16, "not_found")
