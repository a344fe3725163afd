"""An attacker's view of identity checks, on real photos and real footage. Each test is
an attack; those that once got through say so and what refuses them now.

Liveness: a face morphed in over the person doing the moves (broke: fixed by the
same-face rule); a print tilted in 3-D to 50 degrees, rotated in its plane and scaled,
one frame repeated with noise (held; steeper tilts fake a turn, a limit the README
states). Challenges: a client naming its own moves and times (broke: issued challenges
by default); a challenge expiring while its check runs (broke: checked at commit).
Authorisation: a verifier key on every other route; another verifier's check id (held).
Minimisation: file names in refusals (broke: uploads renamed); kept images of a refused
or killed check (broke: removed, and swept). Memory: a huge video for the CLI (broke:
pixel budget); 301 frames, a PNG declaring 60000x60000 (held). Audit: kill -9 while
checks run (held)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import check_media as cm
import cv2
import numpy as np
import pytest
from callers import LOCAL, key_caller
from check_media import answer_twice_at_once
from fastapi.testclient import TestClient
from sqlalchemy import select

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.checks.models import LiveFrame, parse_challenge
from frvs.checks.service import IdentityChecks
from frvs.checks.tables import IdentityChallengeRow
from frvs.cli.checks import read_capture
from frvs.config.settings import load_settings
from frvs.core.caller import Role
from frvs.core.errors import ImageTooLargeError, InvalidInputError
from frvs.core.times import utc_now
from frvs.imaging.decode import read_image
from frvs.oversight.tables import AuditEntryRow


@dataclass
class World:
    app: Application
    client: TestClient
    verifier: dict[str, str]
    turn: list[cm.Image]
    data_dir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("attacks")
    app = build_application(load_settings(data_dir=root / "data",
                                          checks={"require_issued_challenge": False}))
    app.store.open()
    token, _ = key_caller(app, Role.VERIFIER, "counter-9", "eve")
    turn = [cm.read(p) for p in cm.turn_frames(data_dir, root / "turn")]
    with TestClient(create_api(app)) as client:
        yield World(app, client, {"Authorization": f"Bearer {token}"}, turn, data_dir)


def _decoded(data: bytes) -> cm.Image:
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), np.uint8)


def morph_splice(app: Application, turn: list[cm.Image], other: cm.Image) -> list[cm.Image]:
    """Person A's real head turn (slightly blurred, as a turning head is), then ``other``'s
    face pasted over A's first frame and faded in over ten frames: a chain of faces
    from A to B, each close to the next."""
    turn = [np.asarray(cv2.GaussianBlur(f, (0, 0), 2.0), np.uint8) for f in turn]
    base = turn[0]
    a = app.engine.detect(base)[0].detection.landmarks.points.astype(np.float32)
    b = app.engine.detect(other)[0].detection.landmarks.points.astype(np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(b, a)
    pasted = cv2.warpAffine(other, matrix, (base.shape[1], base.shape[0]))
    eye = float(np.linalg.norm(a[0] - a[1]))
    centre = a.mean(axis=0)
    mask = np.zeros(base.shape[:2], np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (int(eye * 1.3), int(eye * 1.8)),
                0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), eye * 0.2)[..., None]
    faded = [np.asarray(base * (1 - t * mask) + pasted * (t * mask), np.uint8)
             for t in np.linspace(0.1, 1.0, 10)]
    return turn + faded + [faded[-1]] * 3


def test_a_morph_from_the_person_turning_to_the_documents_face_fails(world: World) -> None:
    # Attack: Lin-Manuel Miranda does the turns; Alex Lacamoire's face is faded in over
    # his frontal frame. Each frame is close to the next, so the frames once "held
    # together" and the sharpest frame, Alex's, was the one matched: verified as Alex.
    video = world.data_dir / "video"
    alex = cm.read(video / "alex-lacamoire.png")
    document = _decoded(cm.id_card(cm.portrait(world.app, video / "alex-lacamoire.png")))
    frames = morph_splice(world.app, world.turn, alex)
    live = [LiveFrame(f, i / 5, f"f{i}") for i, f in enumerate(frames)]
    result = world.app.checks.run(LOCAL, document, live, parse_challenge("left,right"))
    assert result.match  # the faded-in face is Alex's: the document matches it
    assert not result.liveness.passed and not result.passed
    reasons = " ".join(result.liveness.reasons)
    assert "not the face compared with the document" in reasons, reasons


def test_the_genuine_turn_still_passes_the_same_face_rule(world: World) -> None:
    # The defence must not refuse the real customer: the blurred real turn of one face.
    video = world.data_dir / "video"
    document = _decoded(cm.id_card(cm.portrait(world.app, video / "lin-manuel-miranda.png")))
    frames = [np.asarray(cv2.GaussianBlur(f, (0, 0), 2.0), np.uint8) for f in world.turn]
    live = [LiveFrame(f, i / 5, f"f{i}") for i, f in enumerate(frames)]
    result = world.app.checks.run(LOCAL, document, live, parse_challenge("right,left"))
    assert result.passed, result.liveness.reasons


def post_check(w: World, document: tuple[str, bytes], frames: list[tuple[str, bytes]],
               challenge: str = "left,right") -> Any:
    files = [("document", (document[0], document[1], "image/jpeg"))]
    files += [("live", (name, data, "image/jpeg")) for name, data in frames]
    return w.client.post("/v1/checks", files=files, data={"challenge": challenge},
                         headers=w.verifier)


def test_file_names_never_reach_the_audit_trail(world: World) -> None:
    # Attack on minimisation: a counter's scanner names files after the customer. The
    # refusal of a corrupt frame (or document) once quoted that name.
    card = cm.jpeg(cm.portrait(world.app, world.data_dir / "video" / "lin-manuel-miranda.png"))
    frames = [(f"jane-doe-selfie-{i}.jpg", cm.jpeg(f)) for i, f in enumerate(world.turn[:6])]
    frames[3] = ("jane-doe-selfie-3.jpg", b"\xff\xd8\xff\xe0 not a jpeg at all")
    r = post_check(world, ("passport-jane-doe.jpg", card), frames)
    assert r.status_code in (400, 415, 422), r.text
    assert "jane" not in r.text.lower()
    assert "frame 4" in r.text or "live frame 4" in r.text, r.text
    r = post_check(world, ("passport-jane-doe.jpg", b"\xff\xd8 torn scan"), frames[:3])
    assert r.status_code in (400, 415, 422) and "jane" not in r.text.lower(), r.text
    with world.app.store.unit() as uow:
        entries = uow.session.scalars(select(AuditEntryRow).where(
            AuditEntryRow.action == "identity_check")).all()
        trail = " ".join(f"{e.inputs} {e.result}" for e in entries).lower()
    assert entries and "jane" not in trail, trail


def test_a_raced_challenge_leaves_no_kept_images_behind(tmp_path: Path, data_dir: Path) -> None:
    # Attack on minimisation with checks.keep_images on: two answers of one challenge
    # at once. The loser wrote its images before its transaction was refused; they
    # once stayed forever, named by no row, so no retention run ever removed them.
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          checks={"keep_images": True}))
    app.store.open()
    images = data_dir / "pairs" / "images"
    document = read_image(images / "img38.jpg")
    frames = [LiveFrame(read_image(images / "img39.jpg"), i / 5, f"f{i}") for i in range(5)]
    issued = app.checks.issue_challenge(LOCAL)
    outcomes = answer_twice_at_once(app, document, frames, issued.id)
    assert outcomes == ["checked", "conflict"]
    kept = [p.name for p in (app.store.media.root / "checks").iterdir()]
    assert len(kept) == 1, kept
    app.stop()


def test_images_a_crash_left_behind_are_swept_by_retention(tmp_path: Path) -> None:
    # kill -9 between writing the kept images and the commit (or between the purge's
    # commit and its deletion) leaves a folder no row names: the purge sweeps it once
    # it is older than any check in flight could be.
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          checks={"keep_images": True}))
    app.store.open()
    app.store.media.write("checks/0123abcd/frame-000.jpg", b"\xff\xd8 face")
    app.store.media.write("checks/4567ef01/frame-000.jpg", b"\xff\xd8 face")
    old = app.store.media.root / "checks" / "0123abcd"
    for path in (old, old / "frame-000.jpg"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert app.checks.purge_expired(LOCAL) == 0  # no row's images expired
    left = sorted(p.name for p in (app.store.media.root / "checks").iterdir())
    assert left == ["4567ef01"]  # the young folder may be a check about to commit
    app.stop()


def tilted_print(photo: cm.Image, tilt_deg: float, focal: float = 600.0) -> cm.Image:
    """``photo`` printed, filling 90% of a 640x480 frame's width, turned by ``tilt_deg``
    about its vertical axis in front of a camera of focal length ``focal`` pixels."""
    h, w = photo.shape[:2]
    width, height = 640, 480
    pw, ph = 0.9 * width, 0.9 * width * h / w
    yaw = np.radians(tilt_deg)
    corners = np.array([[-pw / 2, -ph / 2, 0], [pw / 2, -ph / 2, 0], [pw / 2, ph / 2, 0],
                        [-pw / 2, ph / 2, 0]])
    turn = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0],
                     [-np.sin(yaw), 0, np.cos(yaw)]])
    placed = corners @ turn.T + np.array([0, 0, focal])
    projected = placed[:, :2] * focal / placed[:, 2:3] + np.array([width / 2, height / 2])
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    matrix = cv2.getPerspectiveTransform(source, projected.astype(np.float32))
    return np.asarray(cv2.warpPerspective(photo, matrix, (width, height),
                                          borderValue=(40, 40, 40)), np.uint8)


def test_a_print_tilted_back_and_forth_is_not_a_head_turn(world: World) -> None:
    # A frontal photo tilted to 50 degrees one way, then the other, as if the head
    # turned: the yaw read from the landmarks stays within a few degrees. (Steeper
    # tilts fake a turn; the README states that limit.)
    images = world.data_dir / "pairs" / "images"
    photo = cm.read(images / "img39.jpg")
    document = read_image(images / "img38.jpg")
    angles = [0, -25, -50, -50, -25, 0, 25, 50, 50, 25, 0]
    live = [LiveFrame(tilted_print(photo, a), i / 5, f"f{i}") for i, a in enumerate(angles)]
    for challenge in ("left,right", "right,left"):
        result = world.app.checks.run(LOCAL, document, live, parse_challenge(challenge))
        assert result.match and not result.liveness.passed
        low, high = result.liveness.yaw_range
        assert high - low < 25, (low, high)
        assert any(r.startswith("flat picture") for r in result.liveness.reasons)


VERIFIER_MAY = {("GET", "/v1/checks"), ("GET", "/v1/checks/{check_id}"),
                ("POST", "/v1/checks"), ("POST", "/v1/checks/challenges"),
                ("GET", "/v1/me")}
"""The API routes a verifier key may use; every other /v1 route must answer 403."""


def test_a_verifier_key_reaches_no_other_route(world: World) -> None:
    # Attack on authorisation: a counter's verifier key tried on every /v1 route of the
    # served OpenAPI document (galleries, search, alerts and their pictures, audit,
    # evidence, the event stream, cameras, keys, stats).
    spec = world.client.get("/openapi.json").json()
    tried = 0
    for path, operations in spec["paths"].items():
        for method in operations:
            if not path.startswith("/v1/") or (method.upper(), path) in VERIFIER_MAY:
                continue
            url = path.replace("{", "").replace("}", "")  # any value: refused before use
            with world.client.stream(method.upper(), url, headers=world.verifier) as r:
                assert r.status_code == 403, (method, path, r.status_code)
            tried += 1
    assert tried > 40


def test_another_verifiers_check_is_indistinguishable_from_none(world: World) -> None:
    # Attack: a verifier enumerating check ids to read another counter's results.
    images = world.data_dir / "pairs" / "images"
    _, other = key_caller(world.app, Role.VERIFIER, "counter-10", "mallory-target")
    still = read_image(images / "img39.jpg")
    theirs = world.app.checks.run(other, read_image(images / "img38.jpg"),
                                  [LiveFrame(still, i / 5, f"f{i}") for i in range(5)],
                                  parse_challenge("left,right"))
    missing = "0" * 32
    a = world.client.get(f"/v1/checks/{theirs.id}", headers=world.verifier)
    b = world.client.get(f"/v1/checks/{missing}", headers=world.verifier)
    assert a.status_code == b.status_code == 404
    assert a.json() | {"detail": ""} == b.json() | {"detail": ""}
    assert a.json()["detail"].replace(theirs.id, missing) == b.json()["detail"]
    listed = world.client.get("/v1/checks", headers=world.verifier).json()["items"]
    assert theirs.id not in {c["id"] for c in listed}


def test_a_challenge_that_expires_while_its_check_runs_is_not_used(world: World) -> None:
    # Attack on issued challenges: send the capture just before the challenge expires,
    # so that it was valid when read and expired by the time the check commits (a slow
    # check, or many frames). The expiry once held only at the first read.
    start = utc_now()
    ticks = iter([start, start + timedelta(seconds=39), start + timedelta(seconds=41)])
    last = [start]

    def clock() -> datetime:
        last[0] = next(ticks, last[0])
        return last[0]

    checks = IdentityChecks(world.app.engine, world.app.store, world.app.checks.policy, clock)
    issued = checks.issue_challenge(LOCAL)  # expires at start + 10 s + 30 s
    images = world.data_dir / "pairs" / "images"
    still = read_image(images / "img39.jpg")
    with pytest.raises(InvalidInputError, match="expired"):
        checks.run(LOCAL, read_image(images / "img38.jpg"),
                   [LiveFrame(still, i / 5, f"f{i}") for i in range(5)], (),
                   challenge_id=issued.id)
    with world.app.store.unit() as uow:
        row = uow.session.get(IdentityChallengeRow, issued.id)
        assert row is not None and row.used_at is None


@pytest.mark.slow
def test_a_huge_video_for_the_cli_is_refused_before_memory_runs_out(
        tmp_path: Path, data_dir: Path) -> None:
    # Attack on memory: 'frvs check' given a video of large frames (here the real clip
    # at 1920x1080; the same holds for 8K). Each decoded frame was kept until
    # checks.max_frames, 60 x 8K = 6 GB. Now the capture's pixels are bounded by the
    # process's pixel budget, as the API's uploads are, with a clear error.
    video = tmp_path / "big.mp4"
    cm.ffmpeg("-ss", f"{cm.TURN_START}", "-t", "1.5", "-i", str(cm.clip(data_dir)), "-an",
              "-vf", "scale=1920:1080", str(video))
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          limits={"max_concurrent_pixels": 10_000_000}))
    with pytest.raises(ImageTooLargeError, match="pixel budget"):
        read_capture(app, [video], fps=5.0)  # 8 frames of 2.07 MP: 16.6 MP
    assert len(read_capture(app, [video], fps=2.0)) == 3  # 6.2 MP: within the budget


CHECK_LOOP = """
import sys
from pathlib import Path
from frvs.app import build_application
from frvs.checks.models import LiveFrame, parse_challenge
from frvs.config.settings import load_settings
from frvs.core.caller import system_caller
from frvs.imaging.decode import read_image
app = build_application(load_settings(data_dir=Path(sys.argv[1]),
                                      checks={"keep_images": True}))
app.store.open()
images = Path(sys.argv[2])
document = read_image(images / "img38.jpg")
frames = [LiveFrame(read_image(images / "img39.jpg"), i / 5, f"f{i}") for i in range(5)]
caller, challenge = system_caller("counter"), parse_challenge("left,right")
app.checks.run(caller, document, frames, challenge)  # models loaded
print("ready", flush=True)
while True:
    app.checks.run(caller, document, frames, challenge)
"""


@pytest.mark.slow
def test_kill_9_during_checks_leaves_no_check_without_its_audit_entry(
        tmp_path: Path, data_dir: Path) -> None:
    # Attack on the audit trail: kill -9 a process in the middle of running checks
    # (with kept images: files, row and audit entry). Every check row must have its
    # audit entry, the trail must verify, and images without a row must be swept.
    import random
    import subprocess
    import sys
    import time

    from frvs_process import FRVS

    from frvs.checks.tables import IdentityCheckRow

    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-c", CHECK_LOOP, str(data),
                             str(data_dir / "pairs" / "images")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(1.5 + random.random())  # several checks, then anywhere in one
    finally:
        proc.kill()
        proc.wait(timeout=10)
    app = build_application(load_settings(data_dir=data))
    app.store.open()
    with app.store.unit() as uow:
        rows = {r.id: r.media_path for r in uow.session.scalars(select(IdentityCheckRow))}
        audited = {e.result.get("check") for e in uow.session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.action == "identity_check"))}
    assert rows and set(rows) <= audited
    assert all(path and app.store.media.exists(f"{path}/document.jpg")
               for path in rows.values())
    app.stop()
    done = subprocess.run([FRVS, "audit", "verify"], capture_output=True, text=True,
                          env={**os.environ, "FRVS_DATA_DIR": str(data)}, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_one_frame_repeated_with_noise_is_not_a_live_head(world: World) -> None:
    # Attack on "not a still image": the same real frame sent ten times, each with a
    # little sensor-like noise so that the frames (and their digests) differ.
    rng = np.random.default_rng(7)
    frames = [np.asarray(np.clip(world.turn[0] + rng.normal(0, 4, world.turn[0].shape),
                                 0, 255), np.uint8) for _ in range(10)]
    document = _decoded(cm.id_card(cm.portrait(
        world.app, world.data_dir / "video" / "lin-manuel-miranda.png")))
    live = [LiveFrame(f, i / 5, f"f{i}") for i, f in enumerate(frames)]
    result = world.app.checks.run(LOCAL, document, live, parse_challenge("left,right"))
    assert result.match and not result.liveness.passed
    assert any(r.startswith("challenge not followed") for r in result.liveness.reasons)


def test_too_many_frames_and_a_huge_declared_frame_are_refused_cheaply(world: World) -> None:
    # Attacks on memory over the API: 301 frames; one PNG whose header declares
    # 60000 x 60000 pixels (a few hundred bytes, 10.8 GB decoded).
    card = cm.jpeg(cm.portrait(world.app, world.data_dir / "video" / "lin-manuel-miranda.png"))
    small = cm.jpeg(world.turn[0])
    r = post_check(world, ("d.jpg", card), [(f"{i}.jpg", small) for i in range(301)])
    assert r.status_code == 400 and "too many frames" in r.text, r.text
    _, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    header = bytearray(png.tobytes())
    header[16:24] = (60000).to_bytes(4, "big") * 2  # IHDR width and height
    header[29:33] = zlib.crc32(bytes(header[12:29])).to_bytes(4, "big")  # its CRC
    frames = [(f"{i}.jpg", small) for i in range(5)] + [("big.png", bytes(header))]
    r = post_check(world, ("d.jpg", card), frames)
    assert r.status_code in (400, 413, 422) and "pixels" in r.text, r.text


def test_by_default_the_server_picks_the_moves_and_its_clock_bounds_the_capture(
        tmp_path: Path, data_dir: Path) -> None:
    # Attack on the challenge: a client that names its own challenge (one that fits a
    # recording it holds) and the capture times it likes (here 1 s for the whole
    # capture, whatever it took). By default the API now takes only issued challenges,
    # whose moves the server drew and whose expiry its own clock measures.
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    app.store.open()
    token, _ = key_caller(app, Role.VERIFIER, "counter-11", "ivy")
    headers = {"Authorization": f"Bearer {token}"}
    frames = [p.read_bytes() for p in cm.turn_frames(data_dir, tmp_path / "turn")]
    card = cm.id_card(cm.portrait(app, data_dir / "video" / "lin-manuel-miranda.png"))
    files = [("document", ("d.jpg", card, "image/jpeg"))]
    files += [("live", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    times = ",".join(f"{i / len(frames):.3f}" for i in range(len(frames)))
    with TestClient(create_api(app)) as client:
        r = client.post("/v1/checks", files=files, headers=headers,
                        data={"challenge": "right,left", "times": times})
        assert r.status_code == 400 and "issued challenge" in r.text, r.text
        issued = client.post("/v1/checks/challenges", headers=headers).json()
        r = client.post("/v1/checks", files=files, headers=headers,
                        data={"challenge_id": issued["id"], "times": times})
        assert r.status_code == 201, r.text
        assert r.json()["liveness"]["challenge"] == issued["moves"]
    app.stop()


def test_a_print_rotated_in_its_plane_and_scaled_is_a_flat_picture(world: World) -> None:
    # A real frontal photo turned in the image plane by up to 30 degrees each way and
    # brought closer and further (70%..130%): roll and size change, the pose does not.
    images = world.data_dir / "pairs" / "images"
    photo = cm.read(images / "img39.jpg")
    h, w = photo.shape[:2]
    frames = []
    for i, (angle, scale) in enumerate([(0, 1.0), (-15, 0.85), (-30, 0.7), (-15, 0.85),
                                        (0, 1.0), (15, 1.15), (30, 1.3), (15, 1.15),
                                        (0, 1.0)]):
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        frames.append(LiveFrame(np.asarray(cv2.warpAffine(photo, matrix, (w, h)), np.uint8),
                                i / 5, f"f{i}"))
    result = world.app.checks.run(LOCAL, read_image(images / "img38.jpg"), frames,
                                  parse_challenge("left,right"))
    assert result.match and not result.liveness.passed
    assert any(r.startswith("flat picture") for r in result.liveness.reasons), result
