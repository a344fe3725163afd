"""What a new user meets first: a watch list made at the command line keeps enrolment
crops (its reviewers compare them with the best shot) as the console's form does, and
`frvs serve` on a data directory without an admin key says how to get one."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from frvs_process import FRVS, free_port
from typer.testing import CliRunner

from frvs.cli.main import app as cli


def _created(data: Path, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "gallery", "create", *args,
                                      "--json"])
    assert result.exit_code == 0, result.stdout
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_a_watch_list_keeps_enrolment_crops_unless_told(tmp_path: Path) -> None:
    data = tmp_path / "data"
    watch = ("--kind", "watch_list", "--purpose", "p", "--legal-basis", "l")
    assert _created(data, "wl", *watch)["keep_crops"] is True
    assert _created(data, "wl2", *watch, "--no-keep-crops")["keep_crops"] is False
    assert _created(data, "staff")["keep_crops"] is False
    assert _created(data, "staff2", "--keep-crops")["keep_crops"] is True


@pytest.mark.slow
def test_serve_without_an_admin_key_says_how_to_get_one(tmp_path: Path) -> None:
    env = {**os.environ, "FRVS_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([FRVS, "serve", "--port", str(free_port())], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while "admin key" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "no active admin key" in line and "frvs serve --init" in line, line
    finally:
        proc.terminate()
        proc.wait(30)
