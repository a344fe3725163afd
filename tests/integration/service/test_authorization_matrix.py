"""Every endpoint x every role (and no key, and a revoked key) gets exactly the intended
status. The endpoint list comes from the app's routes: an endpoint without a row here
fails ``test_every_route_has_a_matrix_row``.

Each row names the roles allowed (admin is always allowed), the request, and the status
an allowed caller gets; everyone else gets 403, no key and a revoked key 401.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient

from frvs.alerts.tables import AlertRow
from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec
from frvs.oversight.models import Role
from frvs.video.service import CameraSpec

A, O, I, R, U, D = (Role.ADMIN, Role.OPERATOR, Role.INVESTIGATOR, Role.REVIEWER,  # noqa: E741
                    Role.AUDITOR, Role.DEVICE)
V = Role.VERIFIER
PEOPLE = frozenset({O, I, R})
EVERYONE = frozenset(Role)
OPEN = "open"
CASE = {"X-Case-Reference": "CASE-1", "X-Purpose": "authorisation matrix test"}

_counter = itertools.count()
# A public address (no name to resolve): the source policy lets it through, and nothing
# is ever sent to it (no alert is raised in this module).
WEBHOOK_URL = "https://93.184.215.14/frvs-hook"


@dataclass
class World:
    """The application under test and what the rows need from it."""

    app: Application
    face: bytes
    other_face: bytes
    check_id: str = ""

    def fresh_gallery(self) -> str:
        name = f"g{next(_counter)}"
        self.app.galleries.create(LOCAL, GallerySpec(name))
        return name

    def two_person_gallery(self) -> str:
        name = self.fresh_gallery()
        for sid, face in (("a", self.face), ("b", self.other_face)):
            self.app.galleries.enrol(LOCAL, name, [EnrolItem(sid, face, name="f.jpg")])
        return name

    def fresh_subject(self) -> str:
        sid = f"s{next(_counter)}"
        self.app.galleries.enrol(LOCAL, "staff", [EnrolItem(sid, self.face, name="face.jpg")])
        return sid

    def fresh_key(self) -> str:
        return self.app.oversight.keys.create(LOCAL, O, "victim").key.key_id

    def fresh_camera(self) -> str:
        name = f"cam{next(_counter)}"
        self.app.video.cameras.add(LOCAL, CameraSpec(name, "/nonexistent/folder"))
        return name

    def fresh_webhook(self) -> str:
        name = f"hook{next(_counter)}"
        self.app.webhooks.add(LOCAL, name, WEBHOOK_URL, "a-secret-of-sixteen")
        return name

    def verifier_check(self) -> str:
        """A check run by the verifier key: its own result, which only it (and admin)
        may read."""
        return self.check_id

    def fresh_alert(self) -> str:
        now = datetime.now(UTC)
        row = AlertRow(camera="cam", track_id=1, gallery="staff", subject="anchor", score=0.9,
                       threshold=0.4, attempts=1, at=now, frame_time=0.0, quality=0.9,
                       crop_path=None, status="new", two_person=False, created_at=now,
                       decided_at=None)
        with self.app.store.unit(write=True) as uow:
            uow.session.add(row)
            uow.session.flush()
            return str(row.id)


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    allowed: frozenset[Role] | str
    ok: int = 200
    params: Callable[[World], dict[str, str]] = field(default=lambda _w: {})
    request: Callable[[World], dict[str, Any]] = field(default=lambda _w: {})
    admin: bool = True  # admin may call everything but reviews (separation of duties)


def _face(w: World, field_name: str = "image") -> dict[str, Any]:
    return {"files": [(field_name, ("face.jpg", w.face, "image/jpeg"))]}


def _edge_report(w: World) -> dict[str, Any]:
    """A template-only report for camera "edge" in its galleries' space, made now."""
    space = w.app.packs.info(w.app.packs.default_name).space
    vector = b"\x00\x00\x80\x3f" + b"\x00" * (4 * space.dimension - 4)  # 1, 0, 0, ...
    now = datetime.now(UTC).isoformat()
    return {"camera": "edge", "track_id": next(_counter), "first_seen": now,
            "last_seen": now, "space": space.key,
            "template": base64.b64encode(vector).decode()}


MATRIX: dict[str, Row] = {
    "health": Row("GET", "/healthz", OPEN),
    "whoami": Row("GET", "/v1/me", EVERYONE),
    "detect_faces": Row("POST", "/v1/detect", PEOPLE, request=_face),
    "verify_faces": Row("POST", "/v1/verify", PEOPLE, request=lambda w: {"files": [
        ("image_a", ("a.jpg", w.face, "image/jpeg")),
        ("image_b", ("b.jpg", w.other_face, "image/jpeg"))]}),
    "list_galleries": Row("GET", "/v1/galleries", PEOPLE),
    "create_gallery": Row("POST", "/v1/galleries", frozenset({O}), 201,
                          request=lambda _w: {"json": {"name": f"new{next(_counter)}"}}),
    "get_gallery": Row("GET", "/v1/galleries/staff", PEOPLE),
    "delete_gallery": Row("DELETE", "/v1/galleries/{g}", frozenset({O}),
                          params=lambda w: {"g": w.fresh_gallery()}),
    "update_gallery": Row("PATCH", "/v1/galleries/{g}", frozenset({O}),
                          params=lambda w: {"g": w.fresh_gallery()},
                          request=lambda _w: {"json": {"retention_days": 30}}),
    "calibrate_gallery": Row("POST", "/v1/galleries/{g}/calibrate", frozenset({O}),
                             params=lambda w: {"g": w.two_person_gallery()},
                             request=lambda _w: {"json": {"fpir": 0.5, "apply": True}}),
    # Subjects and their enrolment photos: operators (investigators learn subjects from
    # audited searches, reviewers from the alert under review: get_alert_subject_photo).
    "list_subjects": Row("GET", "/v1/galleries/staff/subjects", frozenset({O})),
    "get_subject": Row("GET", "/v1/galleries/staff/subjects/anchor", frozenset({O})),
    "delete_subject": Row("DELETE", "/v1/galleries/staff/subjects/{s}", frozenset({O}),
                          params=lambda w: {"s": w.fresh_subject()}),
    "enrol_subject": Row("POST", "/v1/galleries/staff/subjects/{s}/templates",
                         frozenset({O}), params=lambda _w: {"s": f"n{next(_counter)}"},
                         request=lambda w: _face(w, "images")),
    "export_subject": Row("GET", "/v1/galleries/staff/subjects/anchor/export", frozenset()),
    "erase_subject": Row("POST", "/v1/galleries/staff/subjects/{s}/erase", frozenset({O}),
                         params=lambda w: {"s": w.fresh_subject()}),
    "identify": Row("POST", "/v1/galleries/staff/identify", frozenset({I}),
                    request=lambda w: _face(w) | {"headers": CASE}),
    "crossmatch": Row("POST", "/v1/crossmatch", frozenset({I}), request=lambda _w: {
        "json": {"gallery_a": "staff", "case_reference": "CASE-1", "purpose": "matrix"}}),
    "list_keys": Row("GET", "/v1/keys", frozenset()),
    "create_key": Row("POST", "/v1/keys", frozenset(), 201,
                      request=lambda _w: {"json": {"name": "new", "role": "reviewer"}}),
    "get_key": Row("GET", "/v1/keys/{k}", frozenset(), params=lambda w: {"k": w.fresh_key()}),
    "update_key": Row("PATCH", "/v1/keys/{k}", frozenset(), params=lambda w: {"k": w.fresh_key()},
                      request=lambda _w: {"json": {"name": "renamed"}}),
    "revoke_key": Row("DELETE", "/v1/keys/{k}", frozenset(),
                      params=lambda w: {"k": w.fresh_key()}),
    "list_cameras": Row("GET", "/v1/cameras", frozenset({O})),
    "create_camera": Row("POST", "/v1/cameras", frozenset({O}), 201, request=lambda _w: {
        "json": {"name": f"c{next(_counter)}", "source_url": "/nonexistent/folder"}}),
    "camera_status": Row("GET", "/v1/cameras/status", frozenset({O, R})),
    "get_camera": Row("GET", "/v1/cameras/{c}", frozenset({O}),
                      params=lambda w: {"c": w.fresh_camera()}),
    "update_camera": Row("PATCH", "/v1/cameras/{c}", frozenset({O}),
                         params=lambda w: {"c": w.fresh_camera()},
                         request=lambda _w: {"json": {"sample_fps": 2, "location": "door"}}),
    "delete_camera": Row("DELETE", "/v1/cameras/{c}", frozenset({O}),
                         params=lambda w: {"c": w.fresh_camera()}),
    "list_sightings": Row("GET", "/v1/sightings", frozenset({I}),
                          request=lambda _w: {"headers": CASE}),
    "search_sightings_by_photo": Row("POST", "/v1/sightings/search", frozenset({I}),
                                     request=lambda w: _face(w) | {"headers": CASE}),
    # The device key is bound to camera "edge"; times are the server's now (a report
    # from before the camera was registered, or ahead of the clock, is refused).
    "submit_sighting": Row("POST", "/v1/sightings", frozenset({D}), 201,
                           request=lambda w: _face(w) | {"data": {
                               "camera": "edge", "track_id": "7",
                               "first_seen": datetime.now(UTC).isoformat(),
                               "last_seen": datetime.now(UTC).isoformat()}}),
    "submit_sighting_batch": Row("POST", "/v1/sightings/batch", frozenset({D}),
                                 request=lambda w: {"json": {"reports": [_edge_report(w)]}}),
    # Heartbeats are a node's: device keys only, not even admin.
    "edge_heartbeat": Row("POST", "/v1/edge/heartbeat", frozenset({D}), admin=False,
                          request=lambda _w: {"json": {
                              "name": "node", "version": "1", "cameras": ["edge"],
                              "sent_at": datetime.now(UTC).isoformat()}}),
    "list_edge_nodes": Row("GET", "/v1/edge/nodes", frozenset({O})),
    "list_alerts": Row("GET", "/v1/alerts", frozenset({R})),
    "get_alert": Row("GET", "/v1/alerts/{a}", frozenset({R}),
                     params=lambda w: {"a": w.fresh_alert()}),
    "review_alert": Row("POST", "/v1/alerts/{a}/review", frozenset({R}),
                        params=lambda w: {"a": w.fresh_alert()},
                        request=lambda _w: {"json": {"verdict": "dismiss", "note": "no"}},
                        admin=False),
    "get_alert_rule": Row("GET", "/v1/galleries/staff/alert-rule", frozenset({O})),
    "set_alert_rule": Row("PUT", "/v1/galleries/staff/alert-rule", frozenset({O}),
                          request=lambda _w: {"json": {"two_person": True,
                                                       "suppress_seconds": 60}}),
    "attendance_report": Row("GET", "/v1/attendance", frozenset({O})),
    "list_webhooks": Row("GET", "/v1/webhooks", frozenset()),
    # Managed webhooks every replica delivers (routes/webhooks.py): admin only.
    "create_webhook": Row("POST", "/v1/webhooks", frozenset(), 201, request=lambda _w: {
        "json": {"name": f"new{next(_counter)}", "url": WEBHOOK_URL,
                 "secret": "a-secret-of-sixteen"}}),
    "delete_webhook": Row("DELETE", "/v1/webhooks/{h}", frozenset(),
                          params=lambda w: {"h": w.fresh_webhook()}),
    "stream_events": Row("GET", "/v1/events?max_seconds=1", frozenset({O, R})),
    # Pictures and camera start (routes/evidence.py, for the console). No picture is kept
    # for these records, the camera is not running and has no gallery to match against
    # (so it cannot start, and no camera thread outlives the row): allowed callers get 404.
    "get_alert_crop": Row("GET", "/v1/alerts/{a}/crop", frozenset({R}), 404,
                          params=lambda w: {"a": w.fresh_alert()}),
    "get_subject_photo": Row("GET", "/v1/galleries/staff/subjects/anchor/photo",
                             frozenset({O}), 404),
    "get_alert_subject_photo": Row("GET", "/v1/alerts/{a}/subject-photo", frozenset({R}), 404,
                                   params=lambda w: {"a": w.fresh_alert()}),
    "get_camera_frame": Row("GET", "/v1/cameras/{c}/frame", frozenset({O, R}), 404,
                            params=lambda w: {"c": w.fresh_camera()}),
    "start_camera": Row("POST", "/v1/cameras/{c}/start", frozenset({O}), 404,
                        params=lambda w: {"c": w.fresh_camera()}),
    # Identity checks: verifier keys only (and admin); a still photo as the live capture
    # is a completed check that fails liveness (201), not a refusal.
    "run_identity_check": Row("POST", "/v1/checks", frozenset({V}), 201, request=lambda w: {
        "files": [("document", ("doc.jpg", w.face, "image/jpeg")),
                  *[("live", (f"f{i}.jpg", w.face, "image/jpeg")) for i in range(5)]],
        "data": {"challenge": "left,right"}}),
    "list_identity_checks": Row("GET", "/v1/checks", frozenset({V})),
    "issue_identity_challenge": Row("POST", "/v1/checks/challenges", frozenset({V}), 201),
    "get_identity_check": Row("GET", "/v1/checks/{c}", frozenset({V}),
                              params=lambda w: {"c": w.verifier_check()}),
    "list_audit_entries": Row("GET", "/v1/audit", frozenset({U})),
    "verify_audit_trail": Row("GET", "/v1/audit/verify", frozenset({U})),
    "get_stats": Row("GET", "/v1/stats", frozenset({U})),
}

CALLERS = [*(r.value for r in Role), "no key", "revoked key"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[
        tuple[World, TestClient, dict[str, str]]]:
    # create_camera names a folder: API cameras may name folders under the media roots.
    settings = load_settings(data_dir=tmp_path_factory.mktemp("matrix"),
                             api={"search_rate_per_minute": 100_000, "search_burst": 10_000},
                             video={"media_roots": ["/nonexistent"]},
                             checks={"require_issued_challenge": False})
    app = build_application(settings)
    app.store.open()
    tokens = {r.value: key_caller(app, r, r.value)[0] for r in Role}
    revoked = app.oversight.keys.create(LOCAL, Role.ADMIN, "revoked")
    app.oversight.keys.revoke(LOCAL, revoked.key.key_id)
    tokens["revoked key"] = revoked.token
    images = data_dir / "identities" / "train"
    w = World(app, (images / "obama" / "obama.jpg").read_bytes(),
              (images / "biden" / "biden.jpg").read_bytes())
    app.galleries.create(LOCAL, GallerySpec("staff"))
    app.galleries.enrol(LOCAL, "staff", [EnrolItem("anchor", w.face, name="a.jpg")])
    # An edge node's camera: FRVS never opens its source (the node reports sightings).
    app.video.cameras.add(LOCAL, CameraSpec("edge", "/nonexistent/edge-node-gate", ("staff",)))
    device = app.oversight.keys.authenticate(tokens[D.value])
    app.oversight.keys.update(LOCAL, device.key_id, cameras=["edge"])
    with TestClient(create_api(app)) as client:
        made = client.post("/v1/checks", headers={"Authorization": f"Bearer {tokens[V.value]}"},
                           **MATRIX["run_identity_check"].request(w))
        assert made.status_code == 201, made.text
        w.check_id = made.json()["id"]
        yield w, client, tokens


def test_every_route_has_a_matrix_row(world: tuple[World, TestClient, dict[str, str]]) -> None:
    """Derived from the served OpenAPI document, which lists every route of the app."""
    _, client, _ = world
    spec = client.get("/openapi.json").json()
    operations = [(path, method, op.get("operationId")) for path, item in spec["paths"].items()
                  for method, op in item.items()]
    unnamed = [(path, method) for path, method, op_id in operations if not op_id]
    assert not unnamed, f"routes without a stable operation_id: {unnamed}"
    ids = {op_id for _, _, op_id in operations}
    assert ids - set(MATRIX) == set(), "endpoints without an authorisation-matrix row"
    assert set(MATRIX) - ids == set(), "matrix rows for endpoints that do not exist"
    for op_id, row in MATRIX.items():
        path = next(p for p, _, o in operations if o == op_id)
        assert row.method.lower() == next(m for _, m, o in operations if o == op_id), op_id
        assert re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", path), row.path.split("?")[0]), (
            op_id, path)


def expected(row: Row, caller: str) -> int:
    if row.allowed == OPEN:
        return row.ok
    if caller in ("no key", "revoked key"):
        return 401
    assert isinstance(row.allowed, frozenset)
    admins = {Role.ADMIN} if row.admin else set()
    return row.ok if Role(caller) in row.allowed | admins else 403


@pytest.mark.parametrize("operation", sorted(MATRIX))
def test_authorisation(world: tuple[World, TestClient, dict[str, str]], operation: str) -> None:
    w, client, tokens = world
    row = MATRIX[operation]
    got: dict[str, int] = {}
    for caller in CALLERS:
        request = row.request(w)
        headers = dict(request.pop("headers", {}))
        if caller != "no key":
            headers["Authorization"] = f"Bearer {tokens[caller]}"
        path = row.path.format(**row.params(w))
        response = client.request(row.method, path, headers=headers, **request)
        got[caller] = response.status_code
        if response.status_code in (401, 403):
            assert response.headers["content-type"].startswith("application/problem+json")
    want = {caller: expected(row, caller) for caller in CALLERS}
    assert got == want
