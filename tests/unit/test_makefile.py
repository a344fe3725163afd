"""The Makefile's system step, run for real with a fake apt-get (and id, sudo) first on
PATH: a missing Debian package is installed (apt-get as root, or through sudo), nothing
is called when all are there, and without root or sudo one message says what to run.
``make test`` and ``make run`` take that step before anything else, and ``make test``
runs every test while ``make test-fast`` leaves out only the slow ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MISSING = "frvs-test-no-such-package"

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-query") is None or shutil.which("make") is None,
    reason="needs Debian's dpkg-query and make")


def _fake_bin(tmp_path: Path, uid: int, sudo_ok: bool) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    scripts = {
        "apt-get": f'echo "apt-get $*" >> {log}',
        "id": f'[ "$1" = -u ] && echo {uid} || exec /usr/bin/id "$@"',
        "sudo": (f'echo "sudo $*" >> {log}; [ "$2" = true ] && exit 0; shift; exec "$@"'
                 if sudo_ok else "exit 1"),
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir, log


def _make(tmp_path: Path, *args: str, uid: int = 0, sudo_ok: bool = False
          ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir, log = _fake_bin(tmp_path, uid, sudo_ok)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["make", "-s", "-C", str(REPO), *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    return done, log.read_text().splitlines() if log.exists() else []


def test_a_missing_package_is_installed_as_root(tmp_path: Path) -> None:
    done, calls = _make(tmp_path, "system", f"SYSTEM_PACKAGES=coreutils {MISSING}")
    assert done.returncode == 0, done.stderr
    assert calls == ["apt-get update -qq",
                     f"apt-get install -y -qq --no-install-recommends {MISSING}"]
    assert f"system packages missing: {MISSING}" in done.stderr


def test_nothing_is_installed_when_everything_is_there(tmp_path: Path) -> None:
    done, calls = _make(tmp_path, "system", "SYSTEM_PACKAGES=coreutils make")
    assert done.returncode == 0 and calls == [] and done.stderr == ""


def test_through_sudo_without_root(tmp_path: Path) -> None:
    done, calls = _make(tmp_path, "system", f"SYSTEM_PACKAGES={MISSING}", uid=1000,
                        sudo_ok=True)
    assert done.returncode == 0, done.stderr
    assert f"sudo -n apt-get install -y -qq --no-install-recommends {MISSING}" in calls
    assert f"apt-get install -y -qq --no-install-recommends {MISSING}" in calls


def test_one_clear_message_without_root_or_sudo(tmp_path: Path) -> None:
    done, calls = _make(tmp_path, "system", f"SYSTEM_PACKAGES={MISSING}", uid=1000)
    assert done.returncode != 0 and calls == []
    assert f"run: sudo apt-get install -y {MISSING}" in done.stderr


def test_run_and_test_take_the_system_step_first() -> None:
    for goal, wanted in (("test", "chromium"), ("run", "python3-venv")):
        plan = subprocess.run(["make", "-n", "-C", str(REPO), goal], capture_output=True,
                              text=True, timeout=60, check=True).stdout.splitlines()
        steps = [line for line in plan if not line.startswith("make")]
        assert steps[0].startswith("scripts/system-packages.sh"), plan
        assert wanted in steps[0].split()
    test_plan = subprocess.run(["make", "-n", "-C", str(REPO), "test"], capture_output=True,
                               text=True, timeout=60, check=True).stdout
    for package in ("gir1.2-gst-rtsp-server-1.0", "mosquitto", "ffmpeg", "postgresql"):
        assert package in test_plan.split()
    assert "scripts/services.sh" in test_plan


def test_test_runs_every_test_and_test_fast_the_quick_ones() -> None:
    """``make test`` selects by no marker and no folder (the slow tests run there), ``make
    test-fast`` runs the unit and contract folders without ``slow``, and pytest's own
    options deselect nothing."""
    def pytest_lines(goal: str) -> list[str]:
        plan = subprocess.run(["make", "-n", "-C", str(REPO), goal], capture_output=True,
                              text=True, timeout=60, check=True).stdout
        return [line for line in plan.splitlines() if " -m pytest" in line]

    assert pytest_lines("test") == [".venv/bin/python -m pytest"]
    assert pytest_lines("test-fast") == [
        '.venv/bin/python -m pytest -m "not slow" tests/unit tests/contract']
    pytest_options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
    addopts = pytest_options["ini_options"]["addopts"].split()
    assert not {"-m", "-k", "--deselect", "--ignore"} & set(addopts), addopts
