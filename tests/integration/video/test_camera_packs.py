"""One model pack per camera, checked by ``CameraService`` itself: whoever registers or
changes a camera (API, CLI, a script on the service) gets the same refusal, with the
same message, and the refusal is not audited (as when the API and CLI checked it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from sqlalchemy import select
from video_app import make_app

from frvs.api.app import create_api
from frvs.app import Application
from frvs.core.caller import Role
from frvs.core.errors import ModelSpaceMismatchError, NotFoundError
from frvs.galleries.models import GallerySpec
from frvs.oversight.tables import AuditEntryRow
from frvs.video.service import CameraSpec

MIXED = ("sface", "dlibbed")
MESSAGES = {f"galleries sface, dlibbed use different packs ({packs}); reindex them with one "
            "pack to watch them together" for packs in ("yunet_sface, dlib", "dlib, yunet_sface")}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Application]:
    pytest.importorskip("dlib", reason="the dlib extra is not installed")
    application = make_app(tmp_path / "data")
    application.galleries.create(LOCAL, GallerySpec("sface", pack="yunet_sface"))
    application.galleries.create(LOCAL, GallerySpec("dlibbed", pack="dlib"))
    yield application
    application.stop()


def _camera_entries(app: Application) -> list[tuple[str, str]]:
    with app.store.unit() as uow:
        return [(a, o) for a, o in uow.session.execute(
            select(AuditEntryRow.action, AuditEntryRow.outcome)
            .where(AuditEntryRow.action.like("camera.%")).order_by(AuditEntryRow.seq))]


def test_the_service_refuses_galleries_of_two_packs_unaudited(app: Application) -> None:
    cameras = app.video.cameras
    with pytest.raises(ModelSpaceMismatchError) as mixed:
        cameras.add(LOCAL, CameraSpec("door", "/nonexistent/door", MIXED))
    assert mixed.value.message in MESSAGES  # the packs are named in set order
    with pytest.raises(NotFoundError):
        cameras.add(LOCAL, CameraSpec("door", "/nonexistent/door", ("nowhere",)))
    cameras.add(LOCAL, CameraSpec("door", "/nonexistent/door", ("sface",)))
    with pytest.raises(ModelSpaceMismatchError):
        cameras.update(LOCAL, "door", {"galleries": MIXED})
    cameras.update(LOCAL, "door", {"galleries": ()})  # no gallery: nothing to check
    assert cameras.get("door").galleries == ()
    assert _camera_entries(app) == [("camera.create", "ok"), ("camera.update", "ok")]


def test_the_api_answers_as_before(app: Application) -> None:
    token, _ = key_caller(app, Role.OPERATOR, "olga")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"name": "door", "source_url": "/dev/video0",
            "galleries": list(MIXED)}
    with TestClient(create_api(app)) as client:
        r = client.post("/v1/cameras", headers=headers, json=body)
        assert (r.status_code, r.json()["code"]) == (409, "model_space_mismatch"), r.text
        r = client.post("/v1/cameras", headers=headers, json=body | {"galleries": ["sface"]})
        assert r.status_code == 201, r.text
        r = client.patch("/v1/cameras/door", headers=headers, json={"galleries": list(MIXED)})
        assert (r.status_code, r.json()["code"]) == (409, "model_space_mismatch"), r.text
    assert _camera_entries(app) == [("camera.create", "ok")]
