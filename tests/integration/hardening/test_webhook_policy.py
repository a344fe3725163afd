"""Webhook URLs follow the camera source policy (issue 12): no loopback or private
receiver unless the deployment allows private hosts, no redirect followed to a host the
policy has not checked, and one error for every failure to connect."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from frvs.alerts.models import Alert, AlertStatus
from frvs.alerts.notify import AlertNotice, WebhookNotifier, WebhookTarget
from frvs.app import build_application
from frvs.config.settings import load_settings
from frvs.video.source_policy import SourcePolicy, SourceRefusedError

SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    """A loopback HTTP receiver: POST /hook answers 204, POST /moved redirects to
    /elsewhere; every request's method and path is remembered."""

    def __init__(self) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                else:
                    self.send_response(204)
                self.end_headers()

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _notice() -> AlertNotice:
    now = datetime.now(UTC)
    return AlertNotice("raised", Alert(
        id=1, camera="cam", track_id=1, gallery="g", subject="x", score=0.9, threshold=0.4,
        attempts=1, at=now, frame_time=0.0, quality=0.9, crop_path=None,
        status=AlertStatus.NEW, two_person=True))


def _deliver(notifier: WebhookNotifier) -> None:
    notifier(_notice())
    assert notifier.flush(20)
    notifier.close()


def test_loopback_webhooks_are_refused_by_default(receiver: Receiver) -> None:
    for url in (f"{receiver.base}/hook", receiver.base.replace("127.0.0.1", "localhost")):
        with pytest.raises(SourceRefusedError, match=r"\(loopback\)"):
            WebhookNotifier(WebhookTarget(url, SECRET))
    assert receiver.seen == []


def test_a_service_configured_with_a_loopback_webhook_does_not_start(
        tmp_path: Path, receiver: Receiver) -> None:
    hook = {"url": f"{receiver.base}/hook", "secret": SECRET}
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          video={"webhooks": [hook]}))
    try:
        with pytest.raises(SourceRefusedError, match="allow_private_sources"):
            app.start()
    finally:
        app.stop()
    allowed = build_application(load_settings(
        data_dir=tmp_path / "lan", video={"webhooks": [hook], "allow_private_sources": True}))
    allowed.start()
    try:
        assert [w.target.url for w in allowed.video.webhooks] == [hook["url"]]
    finally:
        allowed.stop()


def test_where_allowed_a_webhook_is_delivered_but_no_redirect_is_followed(
        receiver: Receiver) -> None:
    lan = SourcePolicy(allow_private=True)
    delivered = WebhookNotifier(WebhookTarget(f"{receiver.base}/hook", SECRET), lan)
    _deliver(delivered)
    assert delivered.stats.delivered == 1
    moved = WebhookNotifier(WebhookTarget(f"{receiver.base}/moved", SECRET, attempts=2,
                                          backoff=0.01), lan)
    _deliver(moved)
    assert moved.stats.failed == 1 and moved.stats.last_error == "HTTP 302"
    assert "GET /elsewhere" not in receiver.seen and "POST /elsewhere" not in receiver.seen


def test_a_failed_connection_records_one_generic_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    notifier = WebhookNotifier(WebhookTarget(closed, SECRET, attempts=1),
                               SourcePolicy(allow_private=True))
    _deliver(notifier)
    assert notifier.stats.failed == 1
    assert notifier.stats.last_error == "cannot reach the webhook"


def test_a_webhook_refused_at_delivery_sends_nothing(receiver: Receiver) -> None:
    """The policy is asked again before each delivery (what a name resolves to may have
    changed since the sender was made)."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    policy = SourcePolicy(resolver=lambda _host: next(answers))
    url = receiver.base.replace("127.0.0.1", "hook.example.com") + "/hook"
    notifier = WebhookNotifier(WebhookTarget(url, SECRET, attempts=3, backoff=0.01), policy)
    _deliver(notifier)
    assert notifier.stats.failed == 1 and notifier.stats.retries == 0
    assert notifier.stats.last_error == "refused by the source policy"
    assert receiver.seen == []
