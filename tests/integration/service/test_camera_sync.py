"""A camera registered, changed or removed while `frvs serve` runs (here by the CLI, in
another process) starts, restarts or stops at once; `frvs camera add` checks that a
file or folder exists and says what it checked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import factories
import pytest
from service_helpers import frvs, served


def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


@pytest.mark.slow
def test_cameras_follow_their_registrations_while_serving(tmp_path: Path,
                                                           data_dir: Path) -> None:
    frames = factories.photo_folder(
        tmp_path / "frames", sorted((data_dir / "identities" / "train").glob("*/*.*"))[:3])
    env = {"FRVS_DATA_DIR": str(tmp_path / "data")}
    frvs(["gallery", "create", "staff"], env)

    missing = frvs(["camera", "add", "gone", str(tmp_path / "nope.mp4"), "-g", "staff",
                    "--json"], env, check=False)
    assert missing.returncode == 9 and "no such file" in missing.stdout, missing.stdout
    url = frvs(["camera", "add", "lobby", "rtsp://127.0.0.1:1/x", "-g", "staff"], env,
               check=False)
    assert url.returncode == 22 and "source_refused" in url.stderr  # loopback: refused

    with served(env, tmp_path / "serve.log") as service, service.client() as admin:
        def status() -> dict[str, dict[str, Any]]:
            return {c["camera"]: c for c in admin.get("/v1/cameras/status").json()}

        def starts() -> list[dict[str, Any]]:
            page = admin.get("/v1/audit", params={"action": "camera.start", "limit": 100})
            return [e["inputs"] for e in page.json()["items"] if e["inputs"]["camera"] == "door"]

        added = frvs(["camera", "add", "door", str(frames), "--fps", "0", "-g", "staff"], env)
        assert f"folder {frames} exists and is readable" in added.stdout
        door = _until(lambda: status().get("door", {}).get("frames_processed") == 3
                      and status()["door"])
        assert door, status()
        assert len(starts()) == 1
        # Its file ended: the sync does not replay it...
        time.sleep(3)
        assert len(starts()) == 1

        # ... until its settings change: then it restarts with them, at once.
        frvs(["camera", "update", "door", "--fps", "1"], env)
        restarted = _until(lambda: len(starts()) == 2 and starts())
        assert restarted and restarted[0]["sample_fps"] == 1.0, starts()

        frvs(["camera", "update", "door", "--disable"], env)
        assert _until(lambda: "door" not in status()), status()
        frvs(["camera", "update", "door", "--enable"], env)
        assert _until(lambda: "door" in status() and len(starts()) == 3)
        frvs(["camera", "remove", "door"], env)
        assert _until(lambda: "door" not in status()), status()
    log = (tmp_path / "serve.log").read_text()
    assert "camera door changed: restarting it" in log


@pytest.mark.slow
def test_camera_add_says_what_was_checked(tmp_path: Path, data_dir: Path) -> None:
    env = {"FRVS_DATA_DIR": str(tmp_path / "data")}
    frvs(["gallery", "create", "g"], env)
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    out = frvs(["camera", "add", "stage", str(clip), "-g", "g"], env).stdout
    # One line, even piped (no wrapping at 80 columns).
    assert out == f"camera stage added; file {clip.resolve()} exists and is readable\n"
