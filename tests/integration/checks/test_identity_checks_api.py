"""Identity checks over the API, on real photos and real footage: a match that passes
liveness, a non-match, the attacks liveness must refuse (a still photo, a printed photo
moved flat, two people), and each refusal's clear error, audited. Then what the store
and the media directory hold afterwards: digests and the decision, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import check_media as cm
import cv2
import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.checks.models import LiveFrame, parse_challenge
from frvs.checks.service import IdentityChecks
from frvs.checks.tables import IdentityChallengeRow, IdentityCheckRow
from frvs.config.settings import load_settings
from frvs.core.caller import Role
from frvs.core.times import utc_now
from frvs.imaging.decode import decode_image
from frvs.oversight.tables import AuditEntryRow

PURPOSE = "SIM card registration"
CLIENT_NAMED = {"require_issued_challenge": False}
"""These tests post the challenge by name (the rules' cases need chosen moves); by
default the API takes only issued challenges (test_an_installation_may_require...)."""


@dataclass
class World:
    app: Application
    client: TestClient
    verifier: dict[str, str]
    other_verifier: dict[str, str]
    lin_card: bytes
    alex_card: bytes
    turn: list[bytes]
    data_dir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("checks")
    app = build_application(load_settings(data_dir=root / "data", checks=CLIENT_NAMED))
    app.store.open()
    token, _ = key_caller(app, Role.VERIFIER, "counter-1", "ana")
    other, _ = key_caller(app, Role.VERIFIER, "counter-2", "ben")
    video = data_dir / "video"
    lin = cm.id_card(cm.portrait(app, video / "lin-manuel-miranda.png"))
    alex = cm.id_card(cm.portrait(app, video / "alex-lacamoire.png"))
    turn = [p.read_bytes() for p in cm.turn_frames(data_dir, root / "turn")]
    with TestClient(create_api(app)) as client:
        yield World(app, client, {"Authorization": f"Bearer {token}"},
                    {"Authorization": f"Bearer {other}"}, lin, alex, turn, root / "data")


def post_check(w: World, document: bytes, frames: list[bytes], challenge: str = "left,right",
               times: str | None = None, *, headers: dict[str, str] | None = None) -> Any:
    files = [("document", ("document.jpg", document, "image/jpeg"))]
    files += [("live", (f"frame{i:02d}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    data = {"challenge": challenge, "purpose": PURPOSE}
    if times is not None:
        data["times"] = times
    return w.client.post("/v1/checks", files=files, data=data,
                         headers=headers or w.verifier)


def test_same_person_turning_passes_and_the_ghost_portrait_is_left_out(world: World) -> None:
    # 21 frames at 5 fps of a real head turn: right by ~50 deg, left past frontal, right.
    for challenge in ("left,right", "right,left"):
        r = post_check(world, world.lin_card, world.turn, challenge)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["match"] is True and body["liveness"]["passed"] is True, body
        assert body["passed"] is True and body["decision"] == "verified"
        assert body["score"] >= body["threshold"] == body["operating_point"]["threshold"]
        assert body["operating_point"]["target_fmr"] == 0.001
        assert body["operating_point"]["calibrated"] is False  # no calibration here
        assert body["liveness"]["moves_seen"] == challenge.split(",")
        document = body["quality"]["document"]
        assert document["faces_found"] == 2 and "ghost" in document["chosen"]
        assert document["box"][0] < 300  # the main portrait at the left, not the ghost
        assert 0 < body["quality"]["live"]["overall"] <= 1
        assert body["kept"]["images"] is False and body["purpose"] == PURPOSE


def test_another_persons_document_does_not_match(world: World) -> None:
    r = post_check(world, world.alex_card, world.turn)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["match"] is False and body["score"] < body["threshold"]
    assert body["liveness"]["passed"] is True  # a live person, just not the document's
    assert body["passed"] is False and body["decision"] == "not verified"


def test_a_still_photo_fails_liveness(world: World) -> None:
    r = post_check(world, world.lin_card, [world.turn[0]] * 10)
    body = r.json()
    assert r.status_code == 201 and body["match"] is True
    assert body["liveness"]["passed"] is False
    reasons = " ".join(body["liveness"]["reasons"])
    assert "still image" in reasons and "challenge not followed" in reasons


def test_a_printed_photo_moved_flat_fails_liveness(world: World, data_dir: Path) -> None:
    images = data_dir / "pairs" / "images"
    photo = cm.read(images / "img39.jpg")
    document = cm.id_card(cm.portrait(world.app, images / "img38.jpg"))
    r = post_check(world, document, cm.flat_moves(photo))
    body = r.json()
    assert r.status_code == 201 and body["match"] is True
    assert body["liveness"]["passed"] is False
    assert any(m.startswith("flat picture") for m in body["liveness"]["reasons"]), body
    assert any(m.startswith("challenge not followed") for m in body["liveness"]["reasons"])


def test_frames_of_two_people_fail_liveness(world: World, data_dir: Path) -> None:
    images = data_dir / "pairs" / "images"
    frames = [(images / f"img{i}.jpg").read_bytes() for i in (38, 39, 40, 41, 3, 12, 53, 54)]
    r = post_check(world, world.lin_card, frames)
    body = r.json()
    assert r.status_code == 201 and body["liveness"]["passed"] is False
    assert any(m.startswith("more than one face") for m in body["liveness"]["reasons"]), body


def test_challenge_not_followed(world: World) -> None:
    # The footage turns right, left, right: never left after that second right.
    r = post_check(world, world.lin_card, world.turn, "left,right,left")
    body = r.json()
    assert r.status_code == 201 and body["liveness"]["passed"] is False
    assert body["liveness"]["moves_seen"] == ["left", "right"]
    (reason,) = body["liveness"]["reasons"]
    assert reason.startswith("challenge not followed: asked left, right, left; saw left, "
                             "right (no 'left' move after that")


def test_too_slow_fails_liveness(world: World) -> None:
    slow = ",".join(str(i * 1.0) for i in range(len(world.turn)))  # 1 s apart: 20 s
    body = post_check(world, world.lin_card, world.turn, times=slow).json()
    assert body["liveness"]["passed"] is False
    assert any(m.startswith("too slow") for m in body["liveness"]["reasons"]), body


@pytest.mark.parametrize(("case", "status", "message"), [
    ("too few frames", 400, "too few frames: the live capture has 3, a check needs at least 5"),
    ("no face in document", 422, "document: no face found"),
    ("no face in live capture", 422, "live capture: no face in any of the 6 frames"),
    ("too few with a face", 400, "too few frames with a face: 3 of 6, a check needs at least 5"),
    ("two portraits of one size", 422, "cannot tell which is the portrait"),
    ("bad challenge", 400, "challenge: unknown move(s) 'sideways'"),
    ("times do not fit", 400, "times: 2 values for 6 live frames"),
])
def test_refusals_are_clear_and_audited(world: World, case: str, status: int,
                                        message: str) -> None:
    lin = world.lin_card
    blank = cm.blank_card()
    requests: dict[str, tuple[bytes, list[bytes], str, str | None]] = {
        "too few frames": (lin, world.turn[:3], "left,right", None),
        "no face in document": (blank, world.turn, "left,right", None),
        "no face in live capture": (lin, [blank] * 6, "left,right", None),
        "too few with a face": (lin, [*world.turn[:3], blank, blank, blank], "left,right", None),
        "two portraits of one size": (cm.two_portrait_card(
            cm.portrait(world.app, world.data_dir.parent / "turn" / "f001.jpg"),
            cm.portrait(world.app, world.data_dir.parent / "turn" / "f010.jpg")),
            world.turn, "left,right", None),
        "bad challenge": (lin, world.turn, "left,sideways", None),
        "times do not fit": (lin, world.turn[:6], "left,right", "0,1"),
    }
    document, frames, challenge, times = requests[case]
    before = _refusals(world)
    r = post_check(world, document, frames, challenge, times)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert message in r.json()["detail"]
    assert _refusals(world) == before + 1


def _refusals(w: World) -> int:
    with w.app.store.unit() as uow:
        return len(list(uow.session.scalars(select(AuditEntryRow.seq).where(
            AuditEntryRow.action == "identity_check", AuditEntryRow.outcome == "refused"))))


def test_each_verifier_reads_only_their_own_checks(world: World) -> None:
    made = post_check(world, world.lin_card, world.turn).json()
    own = world.client.get(f"/v1/checks/{made['id']}", headers=world.verifier)
    assert own.status_code == 200
    receipt = own.json()
    assert receipt["decision"] == "verified" and receipt["purpose"] == PURPOSE
    assert receipt["kept"]["images"] is False and receipt["contact"]
    assert receipt["digests"] == made["digests"]
    other = world.client.get(f"/v1/checks/{made['id']}", headers=world.other_verifier)
    assert other.status_code == 404
    assert made["id"] not in {c["id"] for c in world.client.get(
        "/v1/checks", headers=world.other_verifier).json()["items"]}
    assert made["id"] in {c["id"] for c in world.client.get(
        "/v1/checks", headers=world.verifier).json()["items"]}


def test_every_check_is_audited_with_verifier_purpose_and_decision(world: World) -> None:
    made = post_check(world, world.alex_card, world.turn).json()
    with world.app.store.unit() as uow:
        entry = uow.session.scalars(select(AuditEntryRow).where(
            AuditEntryRow.action == "identity_check", AuditEntryRow.outcome == "ok"
        ).order_by(AuditEntryRow.seq.desc())).first()
        assert entry is not None
        assert entry.actor_holder == "ana" and entry.purpose == PURPOSE
        assert entry.result["check"] == made["id"]
        assert entry.result["decision"] == "not verified" and entry.result["match"] is False
        assert entry.inputs["document_sha256"] == made["digests"]["document_sha256"]


def test_by_default_only_digests_and_the_decision_are_stored(world: World) -> None:
    made = post_check(world, world.lin_card, world.turn).json()
    media = world.data_dir / "media"
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]
    with world.app.store.unit() as uow:
        row = uow.session.get(IdentityCheckRow, made["id"])
        assert row is not None
        assert row.media_path is None and row.images_kept is False and row.images_until is None
        columns = {c.name for c in IdentityCheckRow.__table__.columns}
        assert not any(k in columns for k in ("vector", "template", "landmarks", "image"))
        # No template, sighting or picture anywhere else either.
        for table in ("templates", "sightings", "alerts"):
            assert uow.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0
        entries = uow.session.scalars(select(AuditEntryRow).where(
            AuditEntryRow.action == "identity_check")).all()
        assert entries and all("vector" not in str(e.inputs) + str(e.result) for e in entries)
    assert "identity_checks" in inspect(world.app.store.database.engine).get_table_names()


def test_images_are_kept_only_when_turned_on_and_purged_after_retention(
        world: World, tmp_path: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          checks={"keep_images": True,
                                                  "image_retention_days": 7} | CLIENT_NAMED))
    app.store.open()
    now = [utc_now()]
    checks = IdentityChecks(app.engine, app.store, app.checks.policy, lambda: now[0])
    frames = [LiveFrame(decode_image(f), i / 5, str(i)) for i, f in enumerate(world.turn[:8])]
    result = checks.run(LOCAL, decode_image(world.lin_card), frames, parse_challenge("left"))
    assert result.kept.images and result.kept.images_until is not None
    folder = tmp_path / "data" / "media" / "checks" / result.id
    assert len(list(folder.glob("*.jpg"))) == 9  # the document and 8 frames
    assert checks.purge_expired(LOCAL) == 0  # not yet due
    now[0] += timedelta(days=8)
    assert checks.purge_expired(LOCAL) == 1
    assert not folder.exists()
    assert checks.get(LOCAL, result.id)["kept"]["images"] is False
    app.stop()


def test_the_retention_run_deletes_kept_images_past_their_period(world: World,
                                                                 tmp_path: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          checks={"keep_images": True} | CLIENT_NAMED))
    app.store.open()
    frames = [LiveFrame(decode_image(f), i / 5, str(i)) for i, f in enumerate(world.turn[:6])]
    result = app.checks.run(LOCAL, decode_image(world.lin_card), frames,
                            parse_challenge("right"))
    folder = tmp_path / "data" / "media" / "checks" / result.id
    assert folder.is_dir()
    app.retention.run(LOCAL)
    assert folder.is_dir()  # within its period (30 days by default)
    with app.store.unit(write=True) as uow:  # the period has passed
        row = uow.session.get(IdentityCheckRow, result.id)
        assert row is not None
        row.images_until = utc_now() - timedelta(seconds=1)
    app.retention.run(LOCAL)
    assert not folder.exists()
    with app.store.unit() as uow:
        actions = list(uow.session.scalars(select(AuditEntryRow.action).where(
            AuditEntryRow.action == "identity_check_purge")))
    assert actions == ["identity_check_purge"]
    app.stop()


def test_left_and_right_are_the_customers_own_and_a_mirrored_capture_is_set_back(
        world: World, tmp_path: Path) -> None:
    # The first 2.6 s of the footage: he turns to his right (the image's left), then back
    # past frontal to his left.
    first = [decode_image(f) for f in world.turn[:14]]
    flipped = [cv2.flip(image, 1) for image in first]
    document = decode_image(world.lin_card)

    def moves(app: Application, images: list[Any], challenge: str) -> list[str]:
        frames = [LiveFrame(image, i / 5, str(i)) for i, image in enumerate(images)]
        check = app.checks.run(LOCAL, document, frames, parse_challenge(challenge))
        return [m.value for m in check.liveness.moves_seen]

    assert moves(world.app, first, "right,left") == ["right", "left"]
    assert moves(world.app, first, "left,right") == ["left"]
    assert moves(world.app, flipped, "left,right") == ["left", "right"]  # a mirror swaps
    mirrored = build_application(load_settings(data_dir=tmp_path / "data",
                                               checks={"mirrored_capture": True}
                                               | CLIENT_NAMED))
    mirrored.store.open()
    assert moves(mirrored, flipped, "right,left") == ["right", "left"]
    mirrored.stop()


def _answer(w: World, challenge_id: str, challenge: str | None = None,
            headers: dict[str, str] | None = None) -> Any:
    files = [("document", ("document.jpg", w.lin_card, "image/jpeg"))]
    files += [("live", (f"frame{i:02d}.jpg", f, "image/jpeg")) for i, f in enumerate(w.turn)]
    data = {"challenge_id": challenge_id} | ({"challenge": challenge} if challenge else {})
    return w.client.post("/v1/checks", files=files, data=data, headers=headers or w.verifier)


def test_an_issued_challenge_is_answered_once_by_its_verifier_in_time(world: World) -> None:
    issued = world.client.post("/v1/checks/challenges", headers=world.verifier)
    assert issued.status_code == 201, issued.text
    challenge = issued.json()
    assert len(challenge["moves"]) == 2 and challenge["moves"][0] != challenge["moves"][1]
    other = world.client.post("/v1/checks/challenges", headers=world.verifier).json()
    # Another verifier cannot answer it; the issued moves cannot be swapped for others.
    refused = _answer(world, challenge["id"], headers=world.other_verifier)
    assert refused.status_code == 400 and "was not issued to you" in refused.json()["detail"]
    wrong = "up,down" if challenge["moves"] != ["up", "down"] else "left,right"
    refused = _answer(world, challenge["id"], wrong)
    assert refused.status_code == 400 and "is not the challenge issued" in refused.text
    answered = _answer(world, challenge["id"])
    assert answered.status_code == 201, answered.text
    assert answered.json()["liveness"]["challenge"] == challenge["moves"]
    again = _answer(world, challenge["id"])
    assert again.status_code == 409 and "already answered" in again.json()["detail"]
    # Past its time (by the server's clock) it is refused.
    with world.app.store.unit(write=True) as uow:
        row = uow.session.get(IdentityChallengeRow, other["id"])
        assert row is not None
        row.expires_at = utc_now() - timedelta(seconds=1)
    late = _answer(world, other["id"])
    assert late.status_code == 400 and "expired" in late.json()["detail"]


def test_an_installation_may_require_issued_challenges(tmp_path: Path, world: World) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          checks={"require_issued_challenge": True}))
    app.store.open()
    token, _ = key_caller(app, Role.VERIFIER, "counter", "cy")
    with TestClient(create_api(app)) as client:
        files = [("document", ("d.jpg", world.lin_card, "image/jpeg"))]
        files += [("live", (f"f{i}.jpg", f, "image/jpeg")) for i, f in enumerate(world.turn)]
        r = client.post("/v1/checks", files=files, data={"challenge": "left,right"},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and "checks only issued challenges" in r.json()["detail"]


def test_the_auditors_statistics_count_checks_and_their_outcomes(world: World) -> None:
    token, _ = key_caller(world.app, Role.AUDITOR, "auditor", "dee")
    auditor = {"Authorization": f"Bearer {token}"}

    def counts() -> tuple[int, int, int]:
        r = world.client.get("/v1/stats", params={"period": "month"}, headers=auditor)
        assert r.status_code == 200, r.text
        b = r.json()["buckets"][-1]
        return (b["identity_checks"], b["identity_checks_verified"],
                b["identity_checks_liveness_failed"])

    before = counts()
    assert post_check(world, world.lin_card, world.turn).json()["passed"] is True
    assert post_check(world, world.lin_card, [world.turn[0]] * 6).json()["passed"] is False
    post_check(world, world.lin_card, world.turn[:2])  # refused: not a check, not counted
    after = counts()
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (2, 1, 1)
