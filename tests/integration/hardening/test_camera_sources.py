"""Camera sources as an attacker with an operator key would set them (issue 12,
findings 1 and 2), through the real API, CLI and camera pipeline.

A small HTTP server on loopback serves a secret as ``secret.nfo``: FFmpeg's tty demuxer
would render it as video, and the camera's frame route would show it. No byte of it may
reach a frame, an error message, the camera's status or any API answer, and a camera's
error must not tell an open port from a closed one. FRVS's own database must never be
opened as a camera (FFmpeg closing it drops SQLite's locks in the server process).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.cli.main import app as cli
from frvs.config.settings import load_settings
from frvs.core.caller import Role
from frvs.galleries.models import GallerySpec
from frvs.oversight.audit import AuditQuery
from frvs.video.models import CameraStatus, Health
from frvs.video.service import CameraSpec
from frvs.video.source_policy import SourceOrigin, SourceRefusedError
from frvs.video.sources import SourceError, SourceOptions, open_source
from frvs.video.tables import CameraRow

SECRET = b"FRVS-SECRET-41c7: the password is swordfish\n" * 20
MARKERS = ("FRVS-SECRET", "swordfish")


class SecretServer:
    """A loopback HTTP service serving SECRET at every path; remembers what was asked."""

    def __init__(self) -> None:
        paths: list[str] = []
        self.paths = paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(SECRET)))
                self.end_headers()
                self.wfile.write(SECRET)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/secret.nfo#.nfo"

    def __enter__(self) -> SecretServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def secret() -> Iterator[SecretServer]:
    with SecretServer() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _app(data: Path, **video: object) -> Application:
    app = build_application(load_settings(data_dir=data, video=video or None))
    app.store.open()
    app.galleries.create(LOCAL, GallerySpec("g"))
    return app


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Application, TestClient, dict[str, str]]]:
    """The default deployment: no media roots, no private hosts."""
    app = _app(tmp_path / "data")
    token, _ = key_caller(app, Role.OPERATOR, "olga")
    with TestClient(create_api(app)) as client:
        yield app, client, {"Authorization": f"Bearer {token}"}
    app.stop()


def _create(client: TestClient, op: dict[str, str], name: str, source: str) -> tuple[int, str]:
    answer = client.post("/v1/cameras", headers=op, json={
        "name": name, "source_url": source, "galleries": ["g"]})
    return answer.status_code, answer.text


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert not any(marker in text for marker in MARKERS), text


def _refused(client: TestClient, op: dict[str, str], name: str, source: str) -> str:
    status, body = _create(client, op, name, source)
    assert status == 400, body
    assert json.loads(body)["code"] == "source_refused"
    return body


def test_loopback_services_are_refused_as_camera_sources(
        world: tuple[Application, TestClient, dict[str, str]], secret: SecretServer) -> None:
    app, client, op = world
    bodies = [_refused(client, op, "c1", secret.url()),
              _refused(client, op, "c2", secret.url("localhost")),  # a name for loopback
              _refused(client, op, "c3", f"rtsp://127.0.0.1:{secret.port}/clip"),
              _refused(client, op, "c4", f"http://[::1]:{secret.port}/x")]
    # Changing an existing camera's source is checked the same way.
    assert _create(client, op, "cam", "rtsp://192.0.2.1/stream")[0] == 400  # TEST-NET
    assert _create(client, op, "cam", "/dev/video0")[0] == 201
    patched = client.patch("/v1/cameras/cam", headers=op, json={"source_url": secret.url()})
    assert patched.status_code == 400 and patched.json()["code"] == "source_refused"
    assert secret.paths == []  # nothing was even asked of the service
    cameras = client.get("/v1/cameras", headers=op).json()["items"]
    assert [c["name"] for c in cameras] == ["cam"] and cameras[0]["source"] == "/dev/video0"
    _assert_clean(*bodies, patched.text)
    refusals = app.oversight.trail.page(AuditQuery(action="camera.create", limit=100))
    assert sum(e.outcome == "refused" for e in refusals) == 5  # each refusal audited


def _wait_for_error(app: Application, name: str, timeout: float = 30) -> CameraStatus:
    deadline = time.monotonic() + timeout
    status = app.video.supervisor.camera(name).status()
    while status.last_error is None and time.monotonic() < deadline:
        time.sleep(0.1)
        status = app.video.supervisor.camera(name).status()
    return status


def test_where_private_hosts_are_allowed_no_byte_of_a_text_reaches_a_frame_or_message(
        tmp_path: Path, secret: SecretServer, caplog: pytest.LogCaptureFixture) -> None:
    """The strongest case: the deployment allows private hosts, so the camera is
    registered and started. FFmpeg may fetch the file, but only video formats are
    demuxed (no tty): no frame, and the same error as for a closed port."""
    caplog.set_level(logging.INFO)
    app = _app(tmp_path / "data", allow_private_sources=True)
    token, _ = key_caller(app, Role.OPERATOR, "olga")
    op = {"Authorization": f"Bearer {token}"}
    closed = f"http://127.0.0.1:{closed_port()}/secret.nfo#.nfo"
    try:
        with TestClient(create_api(app)) as client:
            answers: list[str] = []
            for name, source in (("open", secret.url()), ("closed", closed)):
                assert _create(client, op, name, source)[0] == 201
                started = client.post(f"/v1/cameras/{name}/start", headers=op)
                assert started.status_code == 200, started.text
                answers.append(started.text)
            opened, refused = _wait_for_error(app, "open"), _wait_for_error(app, "closed")
            assert secret.paths  # FFmpeg did reach the service...
            assert opened.frames_read == 0 and app.video.supervisor.camera("open").latest is None
            frame = client.get("/v1/cameras/open/frame", headers=op)
            assert frame.status_code == 404  # ...and nothing became a frame
            # One message for both: an open port is not told from a closed one.
            assert opened.last_error == f"cannot read video from {secret.url()}"
            assert refused.last_error == f"cannot read video from {closed}"
            answers += [frame.text, client.get("/v1/cameras/status", headers=op).text,
                        client.get("/v1/cameras/open", headers=op).text,
                        client.get("/v1/cameras", headers=op).text]
            _assert_clean(*answers, caplog.text)
    finally:
        app.stop()


def test_a_local_text_file_never_becomes_frames(tmp_path: Path) -> None:
    """The command line may name any file, but FFmpeg reads only video formats."""
    note = tmp_path / "secret.nfo"
    note.write_bytes(SECRET)
    for source in (str(note), f"file://{note}"):
        with pytest.raises(SourceError) as failure:
            open_source(source, "c", SourceOptions(origin=SourceOrigin.LOCAL))
        assert failure.value.message == f"cannot read video from {source}"



def _stored(app: Application, name: str, source: str) -> CameraSpec:
    """A camera registered before the policy existed (its row written as it was)."""
    with app.store.unit(write=True) as uow:
        uow.session.add(CameraRow(
            name=name, location=None, role="general", source_url=source, sample_fps=5.0,
            roi=None, galleries=["g"], retention_days=7, keep_crops=False, enabled=True,
            created_at=datetime.now(UTC)))
    return app.video.cameras.get(name)


def test_frvs_own_database_is_refused_from_the_api(tmp_path: Path) -> None:
    """Refused even where a media root holds the data directory: by name, through a
    symlink and through '..'."""
    media = tmp_path / "media"
    media.mkdir()
    app = _app(tmp_path / "data", media_roots=[str(tmp_path)])
    db = app.settings.data_dir / "frvs.db"
    (media / "clip.mp4").symlink_to(db)
    (media / "data").symlink_to(app.settings.data_dir)
    token, _ = key_caller(app, Role.OPERATOR, "olga")
    op = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_api(app)) as client:
            for i, source in enumerate((str(db), f"{db}-wal", str(media / "clip.mp4"),
                                        str(media / "data" / "frvs.db"),
                                        f"{media}/../data/frvs.db",
                                        f"file://{media}/../data/frvs.db",
                                        str(app.settings.data_dir / "media"))):
                body = _refused(client, op, f"db{i}", source)
                assert "FRVS's own data" in body
            assert client.get("/v1/cameras", headers=op).json()["items"] == []
    finally:
        app.stop()


def test_a_stored_camera_on_the_database_is_refused_when_opened(tmp_path: Path) -> None:
    """A camera set before the policy restarted on every 'serve': now its start is
    refused (400, audited) and the service's run never opens the file."""
    app = _app(tmp_path / "data")
    spec = _stored(app, "old", str(app.settings.data_dir / "frvs.db"))
    token, _ = key_caller(app, Role.OPERATOR, "olga")
    try:
        with TestClient(create_api(app)) as client:
            start = client.post("/v1/cameras/old/start",
                                headers={"Authorization": f"Bearer {token}"})
            assert start.status_code == 400 and start.json()["code"] == "source_refused"
        (entry,) = app.oversight.trail.page(AuditQuery(action="camera.run_requested"))
        assert entry.outcome == "refused"
        app.video.supervisor.start([spec], app.video.runtime())  # as 'frvs serve' does
        status = _wait_for_error(app, "old")
        assert status.frames_read == 0 and "FRVS's own data" in (status.last_error or "")
        assert app.video.supervisor.camera("old").wait(10)  # not retried
        assert status.health is Health.OFFLINE
        app.galleries.create(LOCAL, GallerySpec("still-writable"))  # the store is intact
    finally:
        app.stop()


def test_etc_passwd_is_refused_from_the_api(
        world: tuple[Application, TestClient, dict[str, str]]) -> None:
    _, client, op = world
    for i, source in enumerate(("/etc/passwd", "file:///etc/passwd", "/etc/../etc/passwd",
                                "concat:/etc/passwd|/etc/passwd", "/etc")):
        body = _refused(client, op, f"p{i}", source)
        assert "root:" not in body


def test_rtsp_to_loopback_is_refused_by_default_and_accepted_where_allowed(
        tmp_path: Path) -> None:
    source = "rtsp://127.0.0.1:8554/clip"
    strict = _app(tmp_path / "strict")
    lan = _app(tmp_path / "lan", allow_private_sources=True)
    try:
        for app, expected in ((strict, 400), (lan, 201)):
            token, _ = key_caller(app, Role.OPERATOR, "olga")
            with TestClient(create_api(app)) as client:
                status, body = _create(client, {"Authorization": f"Bearer {token}"}, "rtsp",
                                       source)
                assert status == expected, body
        with pytest.raises(SourceRefusedError, match=r"\(loopback\)"):  # the CLI too
            strict.video.cameras.add(LOCAL, CameraSpec("cli", source, ("g",)))
        lan.video.cameras.add(LOCAL, CameraSpec("cli", source, ("g",)))
    finally:
        strict.stop()
        lan.stop()


def _cli(data: Path, *args: str) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines


@pytest.mark.slow
def test_the_command_line_may_name_files_but_never_the_data_directory(
        tmp_path: Path, data_dir: Path) -> None:
    data = tmp_path / "data"
    assert _cli(data, "gallery", "create", "g")[0] == 0
    link = tmp_path / "innocent.mp4"
    link.symlink_to(data / "frvs.db")
    for i, source in enumerate((str(data / "frvs.db"), str(link),
                                f"{tmp_path}/elsewhere/../data/frvs.db")):
        code, out = _cli(data, "camera", "add", f"c{i}", source, "-g", "g", "--json")
        assert code == 22 and out[-1]["error"] == "source_refused", out
        code, out = _cli(data, "watch", source, "--gallery", "g", "--json")
        assert code == 22 and out[-1]["error"] == "source_refused", out
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    code, out = _cli(data, "camera", "add", "stage", str(clip), "-g", "g", "--json")
    assert code == 0, out
    code, out = _cli(data, "watch", str(clip), "--gallery", "g", "--fps", "1", "--json")
    summary = out[-1]
    assert code == 0 and summary["event"] == "summary", out
    assert summary["health"] == "ended" and summary["last_error"] is None
    assert isinstance(summary["frames_processed"], int) and summary["frames_processed"] >= 8
