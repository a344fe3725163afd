"""An attacker's view of edge intake, through the real API in-process with a real template
of a real photo: the idempotency key cannot be split by re-spelling its parts, a device
key cannot report or call in for a camera it is not bound to (single, batch, heartbeat),
nor read another key's answers; hostile templates, crops, batches and heartbeats get a
clear 4xx (never a 500), are audited, and the audit chain verifies afterwards."""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from callers import LOCAL
from fastapi.testclient import TestClient
from postgres import fresh_database
from sqlalchemy import func, select
from video_app import watch_hamilton

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.caller import Role
from frvs.core.errors import InvalidInputError
from frvs.edge.outbox import Outbox, Report
from frvs.edge.sender import Link, NodeInfo, Sender
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.imaging.decode import decode_image
from frvs.oversight.tables import AuditEntryRow
from frvs.video.edge_report import quality_numbers
from frvs.video.service import CameraSpec
from frvs.video.tables import SightingRow

BURST = 20


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path
          ) -> Iterator[tuple[Application, TestClient, dict[str, Any]]]:
    data = tmp_path_factory.mktemp("edge-attacks") / "data"
    app = build_application(load_settings(data_dir=data, devices={
        "submit_burst": BURST, "submit_rate_per_minute": 1}))
    app.store.open()
    watch_hamilton(app, data_dir, ["lin-manuel-miranda"], edge_cameras=["stage", "lobby"])
    face = app.engine.analyse(decode_image(
        (data_dir / "video" / "lin-manuel-miranda.png").read_bytes()))[0]
    ref = {"space": face.template.space.key,
           "vector": face.template.vector.astype("<f4"),
           "quality": quality_numbers(face.face.quality),
           "photo": (data_dir / "video" / "lin-manuel-miranda.png").read_bytes()}
    with TestClient(create_api(app), raise_server_exceptions=False) as client:
        yield app, client, ref
    app.stop()


def _device(app: Application, name: str, *cameras: str) -> dict[str, str]:
    issued = app.oversight.keys.create(LOCAL, Role.DEVICE, name, cameras=list(cameras))
    return {"Authorization": f"Bearer {issued.token}"}


def _form(ref: dict[str, Any], camera: str, track: str, first: str, last: str,
          **extra: str) -> dict[str, str]:
    v = ref["vector"]
    return {"camera": camera, "track_id": track, "first_seen": first, "last_seen": last,
            "frames": "5", "space": ref["space"],
            "template": base64.b64encode(np.asarray(v, "<f4").tobytes()).decode(),
            "quality": json.dumps(ref["quality"]), **extra}


def _count(app: Application, stmt: Any) -> int:
    with app.store.unit() as uow:
        return int(uow.session.scalar(stmt) or 0)


def _refusals(app: Application, action: str) -> int:
    return _count(app, select(func.count()).select_from(AuditEntryRow).where(
        AuditEntryRow.action == action, AuditEntryRow.outcome == "refused"))


def test_respelled_key_parts_are_one_report(world: tuple[Application, TestClient, Any]) -> None:
    app, client, ref = world
    h = _device(app, "respell", "stage")
    at = datetime.now(UTC).replace(microsecond=250_000) - timedelta(seconds=30)
    end = (at + timedelta(seconds=3)).isoformat()
    plus2 = timezone(timedelta(hours=2))
    spellings = [("7", at.isoformat()),
                 ("07", at.astimezone(plus2).isoformat()),
                 (" 7", at.strftime("%Y-%m-%dT%H:%M:%S.250000Z")),
                 ("7", at.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat()),
                 ("+7", at.strftime("%Y-%m-%dT%H:%M:%S.250Z"))]
    before = _count(app, select(func.count()).select_from(SightingRow))
    answers = [client.post("/v1/sightings", headers=h, data=_form(ref, "stage", t, f, end))
               for t, f in spellings]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200], \
        [a.text for a in answers]
    assert len({a.json()["sighting"] for a in answers}) == 1
    assert _count(app, select(func.count()).select_from(SightingRow)) == before + 1
    # Another spelling of the camera is another camera: not bound, not stored.
    for camera in ("Stage", "STAGE", "ｓｔａｇｅ", "stage ", "stage\u200b", "stage\n"):
        r = client.post("/v1/sightings", headers=h, data=_form(
            ref, camera, "7", at.isoformat(), end))
        assert r.status_code in (400, 403, 422), (camera, r.status_code, r.text)
    # Nor can such a spelling be registered as a camera of its own (a trailing newline
    # passed the name rule's ``re.match`` with ``$``).
    with pytest.raises(InvalidInputError):
        CameraSpec("stage\n", "edge", ("hamilton",))
    assert _count(app, select(func.count()).select_from(SightingRow)) == before + 1
    assert app.oversight.trail.verify().ok


def test_binding_holds_on_every_route(world: tuple[Application, TestClient, Any]) -> None:
    app, client, ref = world
    h = _device(app, "bound-a", "stage")
    now = datetime.now(UTC)
    first, last = (now - timedelta(seconds=9)).isoformat(), (now - timedelta(seconds=5)).isoformat()
    before = _refusals(app, "sighting.submit")
    single = client.post("/v1/sightings", headers=h, data=_form(ref, "lobby", "1", first, last))
    assert single.status_code == 403
    item = {k: v for k, v in _form(ref, "lobby", "2", first, last).items()}
    item["quality"] = ref["quality"]
    batch = client.post("/v1/sightings/batch", headers=h, json={"reports": [item]})
    assert batch.status_code == 200 and batch.json()[0]["status"] == 403
    assert _refusals(app, "sighting.submit") == before + 2
    beat = client.post("/v1/edge/heartbeat", headers=h, json={
        "name": "n", "version": "1", "cameras": ["stage", "lobby"], "sent_at": last})
    assert beat.status_code == 403
    assert _count(app, select(func.count()).select_from(SightingRow).where(
        SightingRow.camera == "lobby")) == 0


def test_another_key_cannot_read_the_first_answer(
        world: tuple[Application, TestClient, Any]) -> None:
    app, client, ref = world
    owner, thief = _device(app, "owner", "stage"), _device(app, "thief", "stage")
    now = datetime.now(UTC)
    form = _form(ref, "stage", "41", (now - timedelta(seconds=8)).isoformat(),
                 (now - timedelta(seconds=6)).isoformat())
    first = client.post("/v1/sightings", headers=owner, data=form)
    assert first.status_code == 201 and first.json()["subject"] == "lin-manuel-miranda"
    stolen = client.post("/v1/sightings", headers=thief, data=form)
    # The thief's key is another node: its report is its own, never the owner's answer.
    assert stolen.status_code == 201 and not stolen.json()["replayed"]
    assert stolen.json()["sighting"] != first.json()["sighting"]


def test_hostile_templates_are_refused_and_audited(
        world: tuple[Application, TestClient, Any]) -> None:
    app, client, ref = world
    h = _device(app, "hostile-templates", "stage")
    now = datetime.now(UTC)
    dim = len(ref["vector"])
    hostile: dict[str, dict[str, str]] = {
        "nan": {"template": base64.b64encode(np.full(dim, np.nan, "<f4").tobytes()).decode()},
        "inf": {"template": base64.b64encode(np.full(dim, np.inf, "<f4").tobytes()).decode()},
        "zeros": {"template": base64.b64encode(np.zeros(dim, "<f4").tobytes()).decode()},
        "huge": {"template": base64.b64encode(np.full(dim, 3e38, "<f4").tobytes()).decode()},
        "tiny": {"template": base64.b64encode(np.full(dim, 1e-45, "<f4").tobytes()).decode()},
        "short": {"template": base64.b64encode(ref["vector"][:-1].tobytes()).decode()},
        "odd-bytes": {"template": base64.b64encode(ref["vector"].tobytes()[:-1]).decode()},
        "not-base64": {"template": "@@@@"},
        "quality-nan": {"quality": '{"overall": NaN}'},
        "quality-inf": {"quality": '{"sharpness": 1e999}'},
        "quality-list": {"quality": "[1, 2]"},
        "no-space": {"space": ""},
    }
    before = _refusals(app, "sighting.submit")
    sightings = _count(app, select(func.count()).select_from(SightingRow))
    codes = {}
    for i, (name, override) in enumerate(hostile.items()):
        form = _form(ref, "stage", str(100 + i), (now - timedelta(seconds=9)).isoformat(),
                     (now - timedelta(seconds=5)).isoformat())
        form.update(override)
        r = client.post("/v1/sightings", headers=h, data=form)
        codes[name] = r.status_code
        assert r.headers["content-type"] == "application/problem+json", (name, r.text)
    assert all(400 <= c < 500 and c != 429 for c in codes.values()), codes
    assert _refusals(app, "sighting.submit") == before + len(hostile)
    assert _count(app, select(func.count()).select_from(SightingRow)) == sightings
    assert app.oversight.trail.verify().ok


def _png_bomb(side: int) -> bytes:
    """A valid PNG header claiming ``side`` x ``side`` pixels with a few bytes of data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))
    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))


def test_hostile_crops_are_refused_and_audited(
        world: tuple[Application, TestClient, Any]) -> None:
    app, client, ref = world
    h = _device(app, "hostile-crops", "stage")
    now = datetime.now(UTC)
    crops = {"text": b"not an image at all", "truncated-png": ref["photo"][:200],
             "bomb": _png_bomb(60_000), "empty": b""}
    before = _refusals(app, "sighting.submit")
    codes = {}
    for i, (name, data) in enumerate(crops.items()):
        form = _form(ref, "stage", str(200 + i), (now - timedelta(seconds=9)).isoformat(),
                     (now - timedelta(seconds=5)).isoformat(), space="other@1/128/cosine")
        r = client.post("/v1/sightings", headers=h, data=form,
                        files=[("image", ("c.png", io.BytesIO(data), "image/png"))])
        codes[name] = r.status_code
    assert all(400 <= c < 500 and c != 429 for c in codes.values()), codes
    assert _refusals(app, "sighting.submit") >= before + len(crops)
    assert app.oversight.trail.verify().ok


def _item(ref: dict[str, Any], camera: str, track: int, first: datetime) -> dict[str, Any]:
    return {"camera": camera, "track_id": track, "first_seen": first.isoformat(),
            "last_seen": (first + timedelta(seconds=2)).isoformat(), "space": ref["space"],
            "template": base64.b64encode(ref["vector"].tobytes()).decode(),
            "quality": ref["quality"]}


def test_batch_shape_duplicates_and_one_bad_report(
        world: tuple[Application, TestClient, Any]) -> None:
    app, client, ref = world
    h = _device(app, "batcher", "stage")
    t = datetime.now(UTC) - timedelta(seconds=60)
    too_many = client.post("/v1/sightings/batch", headers=h, json={
        "reports": [_item(ref, "stage", i, t) for i in range(101)]})
    assert too_many.status_code == 422
    bad = _item(ref, "stage", 302, t)
    bad["template"] = base64.b64encode(np.zeros(len(ref["vector"]), "<f4").tobytes()).decode()
    reports = [_item(ref, "stage", 300, t), _item(ref, "stage", 300, t),
               _item(ref, "stage", 301, t), bad, _item(ref, "stage", 303, t)]
    r = client.post("/v1/sightings/batch", headers=h, json={"reports": reports})
    assert r.status_code == 200, r.text
    statuses = [i["status"] for i in r.json()]
    assert statuses == [201, 200, 201, 400, 201], r.json()
    ids = [i["result"]["sighting"] for i in r.json() if i["result"]]
    assert ids[0] == ids[1] and len(set(ids)) == 3
    assert app.oversight.trail.verify().ok


def test_a_batch_pays_for_every_report(world: tuple[Application, TestClient, Any]) -> None:
    """The device rate limit bounds what one stolen key can inject; a batch must not
    let a key inject more reports than the limit allows one by one."""
    app, client, ref = world
    h = _device(app, "flooder", "stage")
    t = datetime.now(UTC) - timedelta(seconds=120)
    stored = 0
    for round_ in range(3):
        r = client.post("/v1/sightings/batch", headers=h, json={
            "reports": [_item(ref, "stage", 1000 * round_ + i, t) for i in range(50)]})
        if r.status_code == 200:
            stored += sum(i["status"] == 201 for i in r.json())
    assert stored <= BURST, f"{stored} reports stored by a key whose burst is {BURST}"


def test_hostile_heartbeats(world: tuple[Application, TestClient, Any]) -> None:
    app, client, _ref = world
    h = _device(app, "beater", "stage")
    now = datetime.now(UTC)
    before = len(client.get("/v1/edge/nodes", headers=_admin(app)).json())
    refused = _refusals(app, "edge.heartbeat")
    for name in ("evil\x1b[2J\x07node", "line\nbreak", "nul\x00", "bidi\u202enoitacol"):
        r = client.post("/v1/edge/heartbeat", headers=h, json={
            "name": name, "version": "1", "cameras": ["stage"], "sent_at": now.isoformat()})
        assert r.status_code == 400, (name, r.status_code)
    for field in ("version", "pack", "location"):
        r = client.post("/v1/edge/heartbeat", headers=h, json={
            "name": "ok", "version": "1", "cameras": ["stage"], "sent_at": now.isoformat(),
            field: "x\x1b]8;;http://evil\x07"})
        assert r.status_code == 400, (field, r.status_code)
    assert len(client.get("/v1/edge/nodes", headers=_admin(app)).json()) == before
    assert _refusals(app, "edge.heartbeat") == refused + 7
    # A far-future clock is recorded and flagged, never believed.
    r = client.post("/v1/edge/heartbeat", headers=h, json={
        "name": "future", "version": "1", "cameras": ["stage"],
        "sent_at": (now + timedelta(days=3000)).isoformat()})
    assert r.status_code == 200 and not r.json()["clock_ok"]
    assert app.oversight.trail.verify().ok


def _admin(app: Application) -> dict[str, str]:
    issued = app.oversight.keys.create(LOCAL, Role.OPERATOR, f"op-{datetime.now(UTC).timestamp()}")
    return {"Authorization": f"Bearer {issued.token}"}


def test_a_replay_after_erasure_names_no_one(world: tuple[Application, TestClient, Any]) -> None:
    """Last in this module: it erases the enrolled subject."""
    app, client, ref = world
    h = _device(app, "after-erasure", "stage")
    now = datetime.now(UTC)
    form = _form(ref, "stage", "77", (now - timedelta(seconds=8)).isoformat(),
                 (now - timedelta(seconds=6)).isoformat())
    first = client.post("/v1/sightings", headers=h, data=form)
    assert first.status_code == 201 and first.json()["subject"] == "lin-manuel-miranda"
    app.oversight.rights.erase(LOCAL, "hamilton", "lin-manuel-miranda")
    again = client.post("/v1/sightings", headers=h, data=form)
    assert again.status_code == 200 and again.json()["replayed"]
    body = again.json()
    assert (body["subject"], body["gallery"], body["score"]) == (None, None, None), body
    assert body["sighting"] == first.json()["sighting"]
    assert app.oversight.trail.verify().ok


@pytest.mark.postgres
def test_nul_and_control_characters_on_postgresql(tmp_path: Path) -> None:
    """PostgreSQL text cannot hold NUL: a heartbeat or report carrying one is refused
    with a 4xx and its refusal is on the record, never a 500 or a lost audit entry."""
    with fresh_database("edgeadv") as url:
        app = build_application(load_settings(data_dir=tmp_path / "data", database_url=url))
        try:
            app.store.open()
            app.galleries.create(LOCAL, GallerySpec("staff", GalleryKind.ATTENDANCE))
            app.video.cameras.add(LOCAL, CameraSpec("stage", "edge", ("staff",)))
            h = _device(app, "pg-node", "stage")
            now = datetime.now(UTC)
            with TestClient(create_api(app), raise_server_exceptions=False) as client:
                beat = client.post("/v1/edge/heartbeat", headers=h, json={
                    "name": "nul\x00node", "version": "1", "cameras": ["stage"],
                    "sent_at": now.isoformat()})
                assert beat.status_code == 400, beat.text
                report = {"camera": "st\x00age", "track_id": "1",
                          "first_seen": (now - timedelta(seconds=5)).isoformat(),
                          "last_seen": now.isoformat(), "space": "x", "template": "AAAA"}
                single = client.post("/v1/sightings", headers=h, data=report)
                assert single.status_code in (400, 403, 422), single.text
                batch = client.post("/v1/sightings/batch", headers=h, json={"reports": [
                    report | {"track_id": 1, "quality": {}}]})
                assert batch.status_code in (200, 422), batch.text
                if batch.status_code == 200:
                    assert 400 <= batch.json()[0]["status"] < 500
            assert _refusals(app, "edge.heartbeat") == 1
            assert _refusals(app, "sighting.submit") >= 1
            assert app.oversight.trail.verify().ok
        finally:
            app.stop()


def test_heartbeats_cannot_flood_the_audit_trail(
        world: tuple[Application, TestClient, Any]) -> None:
    """Drop counters that fall back and jump again make an ``edge.drops`` entry each
    time; a stolen key must not be able to write them as fast as it can send."""
    app, client, _ref = world
    h = _device(app, "flood-beats", "stage")
    drops = lambda: _count(app, select(func.count()).select_from(AuditEntryRow).where(  # noqa: E731
        AuditEntryRow.action == "edge.drops"))
    before = drops()
    codes = []
    for i in range(BURST + 10):
        r = client.post("/v1/edge/heartbeat", headers=h, json={
            "name": "flood", "version": "1", "cameras": ["stage"],
            "dropped_reports": 0 if i % 2 else 2**62, "sent_at": datetime.now(UTC).isoformat()})
        codes.append(r.status_code)
    assert set(codes) <= {200, 429}
    assert codes.count(200) <= BURST, codes
    assert drops() - before <= BURST
    assert app.oversight.trail.verify().ok


def test_a_node_whose_batches_exceed_the_burst_loses_nothing(
        world: tuple[Application, TestClient, Any], tmp_path: Path) -> None:
    """The centre refuses a batch larger than its burst; the node's real sender then
    sends those reports one by one and halves its batches: every report delivered once,
    none refused for good, none stored twice."""
    app, client, ref = world
    h = _device(app, "big-batches", "stage")
    box = Outbox(tmp_path / "outbox.db")
    t = datetime.now(UTC) - timedelta(seconds=90)
    box.add_all([(Report("stage", 5000 + i, t, t + timedelta(seconds=2), 5, ref["space"],
                         ref["vector"].tobytes(), ref["quality"], None), 0.0)
                  for i in range(BURST + 10)])
    clock = [1000.0]
    sender = Sender(box, Link("http://127.0.0.1:9", "unused"),
                    NodeInfo("big", "1", ref["space"], ("stage",)), clock=lambda: clock[0],
                    heartbeat_s=1e9)
    sender._client = client  # the in-process centre
    saved = dict(client.headers)
    client.headers.update(h)
    try:
        for _ in range(200):
            if box.pending() == 0:
                break
            clock[0] += sender.step() + 0.01
            # The centre's bucket refills in real time: a minute of it per round.
            app_limits = client.app.state.rate_limits  # type: ignore[attr-defined]
            with app_limits._lock:
                for bucket in app_limits._buckets.values():
                    bucket.tokens = bucket.burst
    finally:
        client.headers.clear()
        client.headers.update(saved)
    status = box.status()
    assert (box.pending(), status.refused) == (0, 0), box.meta("last_error")
    assert status.delivered == BURST + 10
    assert sender._batch <= BURST  # it learnt to send batches the centre takes
    assert _count(app, select(func.count()).select_from(SightingRow).where(
        SightingRow.camera == "stage", SightingRow.track_id >= 5000)) == BURST + 10
    box.close()
