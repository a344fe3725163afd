"""A replica's role decides what it does: ``api`` runs no camera (and an operator's start
there is refused, naming why), ``cameras`` serves only its health and camera status over
HTTP, ``all`` both; each camera runs under a lease of the replica running it."""

from __future__ import annotations

from pathlib import Path

from callers import LOCAL, key_caller
from fastapi.testclient import TestClient

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.galleries.models import GallerySpec
from frvs.oversight.models import Role
from frvs.pipeline.leases import Replica, ReplicaRole
from frvs.video.service import CameraSpec


def _app(data: Path, name: str, role: ReplicaRole) -> Application:
    app = build_application(load_settings(data_dir=data, replica={"scan_seconds": 0.2}))
    app.store.open()
    app.video.leases.bind(Replica(name, role))
    return app


def test_an_api_replica_runs_no_camera_and_a_cameras_replica_serves_no_api(
        tmp_path: Path) -> None:
    api = _app(tmp_path / "data", "front", ReplicaRole.API)
    # A camera whose source never opens: a lease is taken all the same.
    api.galleries.create(LOCAL, GallerySpec("staff"))
    api.video.cameras.add(LOCAL, CameraSpec("door", "/dev/video-none", ("staff",)))
    token, _ = key_caller(api, Role.OPERATOR, "olga")
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(create_api(api)) as client:
        assert client.get("/v1/cameras/status", headers=bearer).json() == []
        refused = client.post("/v1/cameras/door/start", headers=bearer)
        assert refused.status_code == 409 and "role api" in refused.json()["detail"]
        cams = _app(tmp_path / "data", "cams", ReplicaRole.CAMERAS)
        with TestClient(create_api(cams)) as camera_client:
            assert camera_client.get("/healthz").status_code == 200
            assert camera_client.get("/v1/galleries", headers=bearer).status_code == 404
            # The enabled camera runs on the cameras replica, as every replica reports.
            for c in (client, camera_client):
                (status,) = c.get("/v1/cameras/status", headers=bearer).json()
                assert (status["camera"], status["replica"]) == ("door", "cams")
        # A clean stop releases the lease at once: nobody runs the camera now.
        assert client.get("/v1/cameras/status", headers=bearer).json() == []
    assert [h.camera for h in api.video.leases._book.live()] == []
