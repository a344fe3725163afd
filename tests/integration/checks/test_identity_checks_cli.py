"""``frvs check`` as people run it: the real CLI in a subprocess, on a real video file
and real photos, with its JSON document, its exit codes and its clear errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import check_media as cm
import pytest
from callers import LOCAL
from frvs_process import FRVS

from frvs.app import build_application
from frvs.config.settings import load_settings
from frvs.core.caller import Role


def run(args: list[str], data: Path, key: str | None = None) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "FRVS_DATA_DIR": str(data)}
    env.pop("FRVS_API_KEY", None)
    if key:
        env["FRVS_API_KEY"] = key
    done = subprocess.run([FRVS, "check", *args, "--json"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    return done.returncode, json.loads(done.stdout), done.stderr


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("check-cli")
    app = build_application(load_settings(data_dir=root / "scratch"))
    card = root / "card.jpg"
    card.write_bytes(cm.id_card(cm.portrait(app, data_dir / "video" / "lin-manuel-miranda.png")))
    blank = root / "blank.jpg"
    blank.write_bytes(cm.blank_card())
    return {"card": card, "blank": blank, "video": cm.turn_video(data_dir, root / "turn.mp4"),
            "root": root}


@pytest.mark.slow
def test_a_video_of_the_same_person_turning_is_verified(media: dict[str, Path],
                                                        tmp_path: Path) -> None:
    code, body, _ = run([str(media["card"]), str(media["video"]), "--challenge", "right,left",
                         "--purpose", "account opening"], tmp_path / "data")
    assert code == 0
    assert body["passed"] is True and body["match"] is True, body
    assert body["liveness"]["moves_seen"] == ["right", "left"]
    assert 15 <= body["liveness"]["frames"] <= 25  # 4.15 s sampled at 5 fps
    assert body["purpose"] == "account opening" and body["verifier"].startswith("cli:")


def test_photos_in_capture_order_of_a_held_still_photo_fail(media: dict[str, Path],
                                                           tmp_path: Path,
                                                           data_dir: Path) -> None:
    still = data_dir / "pairs" / "images" / "img39.jpg"
    document = data_dir / "pairs" / "images" / "img38.jpg"
    code, body, _ = run([str(document), *[str(still)] * 6], tmp_path / "data")
    assert code == 0 and body["match"] is True and body["liveness"]["passed"] is False
    assert body["decision"] == "not verified"


REFUSALS = {
    "too few frames": (22, "too few frames: the live capture has 2"),
    "no face in document": (14, "document: no face found"),
    "no face in live capture": (14, "live capture: no face in any of the 5 frames"),
    "bad challenge": (22, "challenge: the same move twice in a row"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_have_a_clear_error_and_exit_code(media: dict[str, Path], tmp_path: Path,
                                                   data_dir: Path, case: str) -> None:
    exit_code, message = REFUSALS[case]
    face = str(data_dir / "pairs" / "images" / "img39.jpg")
    args = {
        "too few frames": [str(media["card"]), face, face],
        "no face in document": [str(media["blank"]), str(media["video"])],
        "no face in live capture": [str(media["card"]), *[str(media["blank"])] * 5],
        "bad challenge": [str(media["card"]), str(media["video"]), "--challenge", "left,left"],
    }[case]
    code, body, err = run(args, tmp_path / "data")
    assert code == exit_code, (body, err)
    assert message in body["message"] and message in " ".join(err.split())


@pytest.mark.slow
def test_a_key_of_another_role_may_not_run_checks(media: dict[str, Path],
                                                  tmp_path: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    operator = app.oversight.keys.create(LOCAL, Role.OPERATOR, "desk").token
    verifier = app.oversight.keys.create(LOCAL, Role.VERIFIER, "counter", "ana").token
    app.stop()
    code, body, _ = run([str(media["card"]), str(media["video"])], tmp_path / "data", operator)
    assert code == 18 and "may not run identity checks" in body["message"]
    code, body, _ = run([str(media["card"]), str(media["video"])], tmp_path / "data", verifier)
    assert code == 0 and body["passed"] is True
