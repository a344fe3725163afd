"""Alerts (two-person rule, repeat window, signed webhooks against a real local HTTP
server) and attendance from two image-folder cameras, on a fresh SQLite store."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import factories
import pytest
from callers import LOCAL, key_caller
from video_app import make_app

from frvs.alerts.models import Alert, AlertRule, AlertStatus, Verdict
from frvs.alerts.notify import AlertNotice, WebhookNotifier, WebhookTarget
from frvs.alerts.service import AlertDefaults
from frvs.app import Application
from frvs.core.caller import Role
from frvs.core.errors import ConflictError, PermissionDeniedError
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.pipeline.camera import CAMERA_RUNNER
from frvs.video.models import CameraRole, TrackDecision
from frvs.video.service import CameraSpec
from frvs.video.source_policy import SourcePolicy

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def _decision(subject: str, at: datetime, camera: str = "door",
              kind: str = "watch_list") -> TrackDecision:
    return factories.decision(camera, subject, gallery="wl", kind=kind, at=at)


@pytest.fixture
def app(tmp_path: Path) -> Application:
    made = make_app(tmp_path / "data")
    # Alerts refer to their gallery by key: the watch list the decisions name exists.
    made.galleries.create(LOCAL, GallerySpec("wl", GalleryKind.WATCH_LIST, "test", "test"))
    return made


def test_two_person_rule_dismissal_and_repeat_window(app: Application) -> None:
    alerts = app.video.alerts
    _, ann = key_caller(app, Role.REVIEWER, "ann")
    _, ann_again = key_caller(app, Role.REVIEWER, "ann's second key", holder="Ann")
    _, bob = key_caller(app, Role.REVIEWER, "bob")
    _, cid = key_caller(app, Role.REVIEWER, "cid")

    def raise_for(decision: TrackDecision) -> Alert | None:
        return alerts.raise_for(CAMERA_RUNNER, decision)

    first = raise_for(_decision("x", T0))
    assert first is not None and first.status is AlertStatus.NEW
    assert raise_for(_decision("x", T0 + timedelta(seconds=60))) is None  # repeat
    assert raise_for(_decision("x", T0, camera="hall")) is not None  # other camera
    assert raise_for(_decision("x", T0 + timedelta(seconds=301))) is not None
    assert raise_for(_decision("y", T0, kind="general")) is None  # not a watch list
    with pytest.raises(PermissionDeniedError):  # no key: nobody vouches for a person
        alerts.review(LOCAL, first.id, Verdict.CONFIRM)
    once = alerts.review(ann, first.id, Verdict.CONFIRM)
    assert once.status is AlertStatus.NEW
    with pytest.raises(ConflictError):
        alerts.review(ann, first.id, Verdict.CONFIRM)
    with pytest.raises(ConflictError):  # another key of the same person is the same person
        alerts.review(ann_again, first.id, Verdict.CONFIRM)
    assert alerts.review(bob, first.id, Verdict.CONFIRM).status is AlertStatus.CONFIRMED
    with pytest.raises(ConflictError):
        alerts.review(cid, first.id, Verdict.DISMISS)
    other = alerts.list(camera="hall")[0]
    assert alerts.review(ann, other.id, Verdict.DISMISS).status is AlertStatus.DISMISSED


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.fail_first:
            _Hook.fail_first = False
            self.send_response(503)
        else:
            _Hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhook_is_retried_and_signed(app: Application) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "s3cret-s3cret-s3cret"
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    # The receiver is on loopback, which the default policy refuses: allowed here.
    notifier = WebhookNotifier(WebhookTarget(url, secret, attempts=3, backoff=0.05),
                               SourcePolicy(allow_private=True))
    app.video.alerts.add_notifier(notifier)
    sub = app.video.bus.subscribe()
    alert = app.video.alerts.raise_for(CAMERA_RUNNER, _decision("x", T0))
    assert alert is not None
    assert notifier.flush(10)
    server.shutdown()
    notice = sub.get(1.0)
    assert isinstance(notice, AlertNotice) and notice.alert.id == alert.id
    assert notifier.stats.delivered == 1 and notifier.stats.retries == 1
    headers, body = _Hook.received[0]
    expected = hmac.new(secret.encode(), headers["x-frvs-timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["x-frvs-signature"] == f"sha256={expected}"
    assert json.loads(body)["alert"]["subject"] == "x"


def _folder(root: Path, name: str, shots: list[tuple[Path, datetime]]) -> Path:
    folder = root / name
    folder.mkdir()
    for image, at in shots:
        # Each passage is two frames a second apart: a track needs two identity attempts.
        for k in range(2):
            stamp = (at + timedelta(seconds=k)).strftime("%Y-%m-%dT%H-%M-%S")
            shutil.copy(image, folder / f"{stamp}{image.suffix}")
    return folder


def test_attendance_from_entry_and_exit_folders(tmp_path: Path, data_dir: Path) -> None:
    app = make_app(tmp_path / "data")
    ids = data_dir / "identities"
    app.galleries.create(LOCAL, GallerySpec("staff", GalleryKind.ATTENDANCE))
    app.galleries.enrol(LOCAL, "staff", [
        EnrolItem("obama", ids / "train/obama/obama.jpg"),
        EnrolItem("alex", ids / "train/alex_lacamoire/img1.jpg")])
    obama, alex = ids / "test/obama1.jpg", ids / "test/alex_lacamoire1.jpg"
    entry = _folder(tmp_path, "entry", [(obama, T0), (alex, T0 + timedelta(hours=1)),
                                        (obama, T0 + timedelta(hours=5))])
    exit_ = _folder(tmp_path, "exit", [(obama, T0 + timedelta(hours=4)),
                                       (alex, T0 + timedelta(hours=9))])
    for name, folder, role in (("in", entry, CameraRole.ENTRY), ("out", exit_, CameraRole.EXIT)):
        spec = CameraSpec(name, str(folder), ("staff",), role, sample_fps=None)
        app.video.supervisor.start_camera(spec, app.video.runtime())
    assert app.video.supervisor.wait(120)
    report = {line.subject: line for line in app.video.attendance.report(date(2025, 1, 6))}
    assert set(report) == {"obama", "alex"}
    assert report["obama"].first_in == T0
    assert report["obama"].last_out == T0 + timedelta(hours=4)
    assert report["obama"].present_seconds == 4 * 3600  # the 13:00 entry has no exit yet
    assert report["alex"].first_in == T0 + timedelta(hours=1)
    assert report["alex"].last_out == T0 + timedelta(hours=9)
    app.stop()


def test_records_refer_to_their_gallery_by_key(app: Application) -> None:
    """Alerts, rules and attendance go with their gallery; a sighting stays, without
    its match; a gallery made again under the same name starts with none of them."""
    app.galleries.create(LOCAL, GallerySpec("team", GalleryKind.ATTENDANCE))
    alert = app.video.alerts.raise_for(CAMERA_RUNNER, _decision("x", T0))
    assert alert is not None and alert.gallery == "wl"
    app.video.alerts.set_rule(LOCAL, AlertRule("wl", True, 60))
    came = _decision("ann", T0, kind="attendance")
    came = TrackDecision(came.camera, 1, "team", "attendance", "ann", 0.6, 0.363, 3, 0.0,
                         T0, came.best_shot)
    assert app.video.attendance.record(came, CameraRole.ENTRY) is not None
    assert [e.gallery for e in app.video.attendance.events(T0.date())] == ["team"]

    app.galleries.delete(LOCAL, "wl")
    app.galleries.delete(LOCAL, "team")
    assert app.video.alerts.list() == []
    assert app.video.attendance.events(T0.date()) == []
    assert app.video.alerts.raise_for(CAMERA_RUNNER, _decision("x", T0)) is None
    app.galleries.create(LOCAL, GallerySpec("wl", GalleryKind.WATCH_LIST, "test", "test"))
    assert app.video.alerts.rule("wl").suppress_seconds == AlertDefaults().suppress_seconds
