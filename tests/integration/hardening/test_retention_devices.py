"""Issue 12, findings 4 and 5, as an attacker (or an auditor) tries them: sightings that
outlive their retention, and device keys that report for any camera at any time.

Each test failed on the code before the fix: with every sighting expired, ``frvs purge``
deleted none, ``GET /v1/sightings`` and the search by photo still returned them, and a
purge of gallery subjects swept the crops of sightings and alerts that had not expired;
``frvs serve`` never purged; a device key raised sightings for any camera, dated
2030-01-01 or before the camera existed, as fast as it liked; a key could not be bound.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from frvs_process import serve_process
from sqlalchemy import func, select, update
from stored_alerts import stored_alert
from typer.testing import CliRunner

from frvs.alerts.models import AlertStatus
from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.cli.main import app as cli
from frvs.config.settings import load_settings
from frvs.core.errors import InvalidInputError
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.oversight.audit import AuditQuery
from frvs.oversight.models import Role
from frvs.storage.schema import SubjectRow
from frvs.video.service import CameraSpec
from frvs.video.tables import SightingRow

PROBLEM = "application/problem+json"
CASE = {"X-Case-Reference": "CASE-12", "X-Purpose": "retention regression test"}
"""Loopback ports this file's ``frvs serve`` may use."""


def _entries(app: Application, action: str) -> list[dict[str, Any]]:
    """Entries of ``action``, newest first."""
    return [e.as_dict() for e in app.oversight.trail.page(AuditQuery(limit=100, action=action))]


def _cli(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args],
                                env={"FRVS_API_KEY": None})
    return result.exit_code, result.stdout


def _report(camera: str, first: datetime, last: datetime, track: int = 1) -> dict[str, str]:
    return {"camera": camera, "track_id": str(track), "first_seen": first.isoformat(),
            "last_seen": last.isoformat()}


@dataclass
class Centre:
    app: Application
    client: TestClient
    tokens: dict[str, str]
    faces: dict[str, bytes]

    @property
    def data(self) -> Path:
        return self.app.settings.data_dir

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def submit(self, who: str, camera: str, *, face: str = "obama",
               first: datetime | None = None, last: datetime | None = None,
               track: int = 1) -> httpx.Response:
        first = first or datetime.now(UTC)
        last = last or first + timedelta(seconds=2)
        return self.client.post(
            "/v1/sightings", headers=self.headers(who),
            files=[("image", (f"{face}.jpg", self.faces[face], "image/jpeg"))],
            data=_report(camera, first, last, track))


@pytest.fixture
def centre(tmp_path: Path, data_dir: Path) -> Iterator[Centre]:
    """A centre with a general gallery (obama enrolled), two edge cameras matched against
    it (``gate`` keeps crops), a device key bound to ``gate``, and people's keys."""
    settings = load_settings(data_dir=tmp_path / "data",
                             api={"search_rate_per_minute": 10_000, "search_burst": 1_000},
                             devices={"submit_burst": 8, "submit_rate_per_minute": 1})
    app = build_application(settings)
    app.store.open()
    train = data_dir / "identities" / "train"
    faces = {name: (train / name / f"{name}.jpg").read_bytes() for name in ("obama", "biden")}
    app.galleries.create(LOCAL, GallerySpec("staff"))
    app.galleries.enrol(LOCAL, "staff", [EnrolItem("obama", faces["obama"], name="o.jpg")])
    for name, crops in (("gate", True), ("door", False)):
        # Edge cameras: FRVS never opens their source (the node reports sightings).
        app.video.cameras.add(LOCAL, CameraSpec(name, f"/nonexistent/edge-{name}", ("staff",),
                                                keep_crops=crops))
    tokens = {r.value: key_caller(app, r, r.value)[0] for r in (Role.ADMIN, Role.INVESTIGATOR)}
    tokens["node"] = app.oversight.keys.create(LOCAL, Role.DEVICE, "node-1",
                                               cameras=["gate"]).token
    tokens["unbound"] = key_caller(app, Role.DEVICE, "node-2")[0]
    with TestClient(create_api(app), raise_server_exceptions=False) as client:
        yield Centre(app, client, tokens, faces)


def _expire_every_sighting(app: Application) -> None:
    with app.store.unit(write=True) as uow:
        uow.session.execute(update(SightingRow).values(
            expires_at=datetime.now(UTC) - timedelta(days=1)))


def _sightings(app: Application) -> list[SightingRow]:
    with app.store.unit() as uow:
        return list(uow.session.scalars(select(SightingRow)))


# -- 4. Retention that deletes ---------------------------------------------------------


def test_expired_sightings_are_never_shown_and_purge_deletes_them_with_their_crops(
        centre: Centre) -> None:
    for track, face in enumerate(("obama", "biden", "obama"), start=1):
        r = centre.submit("node", "gate", face=face, track=track)
        assert r.status_code == 201, r.text
    stored = _sightings(centre.app)
    crops = [centre.data / "media" / str(s.crop_path) for s in stored]
    assert len(stored) == 3 and all(c.is_file() for c in crops)
    inv = centre.headers("investigator", **CASE)
    probe = [("image", ("probe.jpg", centre.faces["obama"], "image/jpeg"))]
    assert len(centre.client.get("/v1/sightings", headers=inv).json()["items"]) == 3
    assert len(centre.client.post("/v1/sightings/search", headers=inv, files=probe).json()) == 2

    _expire_every_sighting(centre.app)
    # Before any purge: no listing or search shows an expired sighting.
    r = centre.client.get("/v1/sightings", headers=inv)
    assert (r.status_code, r.json()["items"]) == (200, [])
    r = centre.client.post("/v1/sightings/search", headers=inv, files=probe)
    assert (r.status_code, r.json()) == (200, [])
    code, out = _cli(centre.data, "sightings", "--json")
    assert code == 0 and '"sightings": []' in out, out

    code, out = _cli(centre.data, "purge", "--json")
    assert code == 0, out
    assert '"sightings": 3' in out and '"sighting_crops": 3' in out, out
    assert _sightings(centre.app) == []
    assert not any(c.exists() for c in crops)
    (run,) = _entries(centre.app, "retention")
    assert run["outcome"] == "ok" and run["actor"]["kind"] == "cli"
    assert run["result"] == {"subjects": 0, "templates": 0, "sightings": 3,
                             "sighting_crops": 3, "alert_evidence": 0}
    assert centre.app.oversight.trail.verify().ok


def _alert(app: Application, gallery: str, status: str, age: timedelta) -> tuple[int, Path]:
    at = datetime.now(UTC) - age
    crop = f"alerts/gate/{at:%Y%m%dT%H%M%S%f}-{status}.jpg"
    app.store.media.write(crop, b"\xff\xd8\xff evidence")
    alert = stored_alert(app.store, gallery, "obama", at=at, crop_path=crop,
                         status=AlertStatus(status))
    return alert, app.store.media.root / crop


def _aged(path: Path, seconds: float) -> Path:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))
    return path


def test_retention_deletes_alert_evidence_and_subjects_by_policy_and_spares_the_rest(
        centre: Centre) -> None:
    app = centre.app
    app.galleries.create(LOCAL, GallerySpec("watch", GalleryKind.WATCH_LIST, "test", "test",
                                            retention_days=2))
    app.galleries.enrol(LOCAL, "watch", [EnrolItem("biden", centre.faces["biden"],
                                                   name="b.jpg")])
    with app.store.unit(write=True) as uow:  # enrolled three days ago
        uow.session.execute(update(SubjectRow).where(SubjectRow.external_id == "biden")
                            .values(expires_at=datetime.now(UTC) - timedelta(days=1)))
    old, recent = timedelta(days=3), timedelta(hours=1)
    gone = _alert(app, "watch", "confirmed", old)
    kept = [_alert(app, "watch", "new", old),        # still waiting for its reviewers
            _alert(app, "watch", "dismissed", recent),  # within the gallery's retention
            _alert(app, "staff", "confirmed", old)]     # a gallery without retention
    # An unexpired sighting's crop, written an hour ago: a purge of subjects swept it.
    assert centre.submit("node", "gate").status_code == 201
    (sighting,) = _sightings(app)
    live_crop = _aged(app.store.media.root / str(sighting.crop_path), 3600)
    _aged(kept[2][1], 3600)
    stray = app.store.media.root / "sightings" / "gate" / "stray.jpg"
    app.store.media.write("sightings/gate/stray.jpg", b"\xff\xd8\xff")
    young = app.store.media.root / "sightings" / "gate" / "young.jpg"
    app.store.media.write("sightings/gate/young.jpg", b"\xff\xd8\xff")
    _aged(stray, 3600)

    code, out = _cli(centre.data, "purge", "--json")
    assert code == 0, out
    run = _entries(app, "retention")[0]["result"]
    assert run == {"subjects": 1, "templates": 1, "sightings": 0, "sighting_crops": 0,
                   "alert_evidence": 1}
    assert '"orphan_files": 1' in out, out
    assert not gone[1].exists() and app.video.alerts.get(gone[0]).crop_path is None
    for alert_id, path in kept:
        assert path.is_file() and app.video.alerts.get(alert_id).crop_path
    assert live_crop.is_file() and young.is_file() and not stray.exists()
    assert app.galleries.show("watch")[1] == []
    (purge,) = _entries(app, "purge")
    assert purge["subjects"] == ["watch/biden"]


def _sighting(camera: str, track: int, expires: datetime, crop: str | None) -> SightingRow:
    now = datetime.now(UTC)
    return SightingRow(camera=camera, track_id=track, first_seen=now, last_seen=now, frames=1,
                       attempts=1, quality=0.5, crop_path=crop, expires_at=expires)


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


@pytest.mark.slow
def test_frvs_serve_runs_retention_on_its_schedule_as_the_system(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = build_application(load_settings(data_dir=data))
    app.store.open()
    app.store.media.write("sightings/cam/1.jpg", b"\xff\xd8\xff")
    past, future = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(days=7)
    with app.store.unit(write=True) as uow:
        uow.session.add_all([_sighting("cam", 1, past, "sightings/cam/1.jpg"),
                             _sighting("cam", 2, past, None),
                             _sighting("cam", 3, future, None)])
    app.store.close()
    env = {"FRVS_DATA_DIR": str(data), "FRVS_RETENTION__INTERVAL_S": "1"}
    db = data / "frvs.db"
    runs = "select count(*) from audit_entries where action = 'retention'"
    with serve_process(env, tmp_path / "serve.log", 90) as (proc, _):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and _count(db, runs) < 2:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.5)
    assert _count(db, runs) >= 2, "frvs serve did not run retention every second"
    assert _count(db, "select count(*) from sightings") == 1
    assert not (data / "media" / "sightings" / "cam" / "1.jpg").exists()
    app = build_application(load_settings(data_dir=data))
    first = _entries(app, "retention")[-1]
    assert first["actor"]["kind"] == "system" and first["actor"]["name"] == "retention"
    assert first["result"]["sightings"] == 2 and first["result"]["sighting_crops"] == 1
    assert app.oversight.trail.verify().ok


def test_retention_schedule_reads_settings(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, retention={"interval_s": 0})
    assert settings.retention.interval_s == 0
    assert load_settings(data_dir=tmp_path).retention.interval_s == 3600
    with pytest.raises(Exception, match="interval_s"):
        load_settings(data_dir=tmp_path, retention={"interval_s": -1})


# -- 5. Devices bound ------------------------------------------------------------------


def test_a_device_key_reports_only_for_its_cameras_and_refusals_are_audited(
        centre: Centre) -> None:
    assert centre.submit("node", "gate").status_code == 201
    for who, camera in (("node", "door"), ("node", "nowhere"), ("unbound", "gate")):
        r = centre.submit(who, camera)
        assert r.status_code == 403, (who, camera, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert [s.camera for s in _sightings(centre.app)] == ["gate"]
    refusals = [e for e in _entries(centre.app, "sighting.submit")]
    assert [(e["inputs"]["camera"], e["outcome"], e["result"]["error"]) for e in refusals] == [
        ("gate", "refused", "permission_denied"), ("nowhere", "refused", "permission_denied"),
        ("door", "refused", "permission_denied")]
    assert all(e["actor"]["role"] == "device" for e in refusals)


def test_binding_changes_are_admin_only_and_audited(centre: Centre) -> None:
    app = centre.app
    node = app.oversight.keys.authenticate(centre.tokens["node"])
    assert node.cameras == ("gate",)
    path = f"/v1/keys/{node.key_id}"
    r = centre.client.patch(path, headers=centre.headers("node"), json={"cameras": ["door"]})
    assert r.status_code == 403
    r = centre.client.patch(path, headers=centre.headers("admin"),
                            json={"cameras": ["door", "gate"]})
    assert (r.status_code, r.json()["cameras"]) == (200, ["door", "gate"]), r.text
    assert centre.submit("node", "door").status_code == 201
    # The CLI's admin (the OS user) narrows it again; the edge node loses the gate.
    code, out = _cli(centre.data, "key", "update", node.key_id, "--camera", "door", "--json")
    assert code == 0 and '"cameras": ["door"]' in out, out
    assert centre.submit("node", "gate").status_code == 403
    changes = _entries(app, "key.update")  # newest first
    assert [(e["actor"]["kind"], e["result"]["before"]["cameras"], e["result"]["after"][
        "cameras"]) for e in changes] == [("cli", ["door", "gate"], ["door"]),
                                         ("key", ["gate"], ["door", "gate"])]
    # Bindings name registered cameras, and only device keys have them.
    r = centre.client.patch(path, headers=centre.headers("admin"), json={"cameras": ["x"]})
    assert r.status_code == 404 and "no camera 'x'" in r.json()["detail"]
    r = centre.client.post("/v1/keys", headers=centre.headers("admin"), json={
        "name": "desk", "role": "operator", "cameras": ["gate"]})
    assert r.status_code == 400 and "only device keys" in r.json()["detail"]
    r = centre.client.post("/v1/keys", headers=centre.headers("admin"), json={
        "name": "node-3", "role": "device", "cameras": ["gate"]})
    assert (r.status_code, r.json()["cameras"]) == (201, ["gate"]), r.text
    refused = [e for e in _entries(app, "key.update") if e["outcome"] == "refused"]
    assert [e["inputs"]["cameras"] for e in refused] == [["x"]]
    with pytest.raises(InvalidInputError, match="nothing to change"):
        app.oversight.keys.update(LOCAL, node.key_id)


def test_frvs_key_create_binds_cameras_without_an_api_key(centre: Centre) -> None:
    """What ../shared/checks/edge does on the centre's machine."""
    code, out = _cli(centre.data, "key", "create", "node-9", "--role", "device",
                     "--camera", "gate", "--camera", "door", "--json")
    assert code == 0 and '"cameras": ["door", "gate"]' in out and '"token": "frvs_' in out
    code, out = _cli(centre.data, "key", "create", "node-10", "--role", "device",
                     "--camera", "nowhere", "--json")
    assert code == 16 and "no camera 'nowhere'" in out, out
    created = _entries(centre.app, "key.create")[1]
    assert created["inputs"]["cameras"] == ["door", "gate"]


@pytest.mark.parametrize(("first", "last", "why"), [
    ("2030-01-01T00:00:00Z", "2030-01-01T00:00:04Z", "ahead of the server's clock"),
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:04Z", "out of range"),
    ("2000-01-01T00:00:00Z", "2000-01-01T00:00:04Z", "before camera 'gate' was registered"),
    ("-1d", "-1d", "before camera 'gate' was registered"),
    ("+1h", "+1h", "ahead of the server's clock"),
])
def test_reports_dated_outside_the_believable_span_are_refused(
        centre: Centre, first: str, last: str, why: str) -> None:
    now = datetime.now(UTC)
    shift = {"-1d": -timedelta(days=1), "+1h": timedelta(hours=1)}

    def when(value: str) -> datetime:
        return now + shift[value] if value in shift else datetime.fromisoformat(value)

    r = centre.submit("node", "gate", first=when(first), last=when(last))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM) and why in r.json()["detail"]
    assert _sightings(centre.app) == []
    refused = _entries(centre.app, "sighting.submit")[0]
    assert (refused["outcome"], refused["result"]["error"]) == ("refused", "invalid_input")


def test_a_report_within_the_allowed_skew_is_accepted(centre: Centre) -> None:
    ahead = datetime.now(UTC) + timedelta(seconds=60)  # devices.clock_skew_s is 120
    r = centre.submit("node", "gate", first=ahead, last=ahead + timedelta(seconds=1))
    assert r.status_code == 201, r.text


def test_device_submissions_are_rate_limited_and_audited(centre: Centre) -> None:
    """The fixture allows a burst of 8 and then 1 a minute; refusals cost no decoding."""
    codes = [centre.submit("node", "door").status_code for _ in range(8)]
    assert codes == [403] * 8  # not its camera, but each took a token
    r = centre.submit("node", "gate")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"].startswith(PROBLEM)
    limited = _entries(centre.app, "sighting.submit")[0]
    assert (limited["outcome"], limited["result"]["error"]) == ("refused", "rate_limited")
    # Another device key has its own bucket.
    assert centre.submit("unbound", "gate").status_code == 403


def test_existing_device_keys_report_for_nothing_until_bound(centre: Centre) -> None:
    """Keys from before the binding (NULL) are bound to no camera."""
    unbound = centre.app.oversight.keys.authenticate(centre.tokens["unbound"])
    assert unbound.cameras == ()
    with centre.app.store.unit() as uow:
        assert uow.session.scalar(select(func.count()).select_from(SightingRow)) == 0
