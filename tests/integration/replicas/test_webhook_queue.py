"""Webhooks from the store's durable queue: managed by an admin (audited, effective at
once), queued in the transaction of the event, delivered once per attempt schedule by
whichever of two "replicas" (two applications on one store) claims it first, retried
with the same delivery id, signed."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from callers import LOCAL
from replica_helpers import HookReceiver

from frvs.alerts.notify import sign
from frvs.alerts.webhooks import WebhookWorker, WorkerOptions
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.errors import InvalidInputError
from frvs.core.times import utc_now
from frvs.oversight.audit import AuditQuery
from frvs.video.source_policy import SourceRefusedError

SECRET = "a-secret-of-sixteen+"
FAST = WorkerOptions(poll_seconds=0.05, timeout_seconds=2.0, backoff_seconds=0.05)


def _app(data: Path, allow_private: bool = True) -> Application:
    app = build_application(load_settings(
        data_dir=data, video={"allow_private_sources": allow_private}))
    app.store.open()
    return app


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    server = HookReceiver()
    yield server
    server.close()


def _raise_event(app: Application, alert_id: int) -> None:
    """An alert event as AlertService writes it: in a transaction of the store."""
    with app.store.unit(write=True) as uow:
        uow.publish("alert.raised", {"id": alert_id, "subject": "x"}, datetime.now(UTC))


def test_webhooks_are_managed_by_an_admin_and_audited(tmp_path: Path,
                                                      receiver: HookReceiver) -> None:
    app = _app(tmp_path / "data", allow_private=False)
    with pytest.raises(SourceRefusedError):  # loopback, and private hosts are not allowed
        app.webhooks.add(LOCAL, "soc", receiver.url, SECRET)
    with pytest.raises(InvalidInputError):
        app.webhooks.add(LOCAL, "soc", "https://93.184.215.14/hook", "short")
    hook = app.webhooks.add(LOCAL, "soc", "https://user:pw@93.184.215.14/hook", SECRET)
    assert "pw" not in hook.url and "93.184.215.14" in hook.url  # the password masked
    assert [h.name for h in app.webhooks.list()] == ["soc"]
    app.webhooks.remove(LOCAL, "soc")
    assert app.webhooks.list() == []
    created = app.oversight.trail.page(AuditQuery(action="webhook.create", limit=10))
    assert Counter(e.outcome for e in created) == {"refused": 2, "ok": 1}
    assert "pw" not in str([e.inputs for e in created])
    (deleted,) = app.oversight.trail.page(AuditQuery(action="webhook.delete", limit=10))
    assert deleted.outcome == "ok"
    app.store.close()


def test_two_replicas_deliver_each_event_once(tmp_path: Path, receiver: HookReceiver) -> None:
    a, b = _app(tmp_path / "data"), _app(tmp_path / "data")
    a.webhooks.add(LOCAL, "soc", receiver.url, SECRET)  # on A; B sees it at once
    workers = [WebhookWorker(app.store, utc_now, app.video.sources, FAST) for app in (a, b)]
    for worker in workers:
        worker.start()
    try:
        threads = [threading.Thread(target=lambda app=app, k=k: [
            _raise_event(app, 100 * k + i) for i in range(15)]) for k, app in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = datetime.now(UTC).timestamp() + 30
        while len(receiver.deliveries) < 30 and datetime.now(UTC).timestamp() < deadline:
            threading.Event().wait(0.05)
    finally:
        for worker in workers:
            worker.stop()
    alerts = [d.body["alert"] for d in receiver.deliveries]
    assert sorted(x["id"] for x in alerts if isinstance(x, dict)) == sorted(
        [i for i in range(15)] + [100 + i for i in range(15)])
    ids = [d.headers["x-frvs-delivery"] for d in receiver.deliveries]
    assert len(set(ids)) == len(ids) == 30
    for d in receiver.deliveries:  # signed like the configured webhooks
        body = json.dumps(d.body, ensure_ascii=False).encode()
        assert d.headers["x-frvs-signature"] == sign(SECRET.encode(),
                                                     d.headers["x-frvs-timestamp"], body)
    (listed,) = b.webhooks.list()
    assert (listed.delivered, listed.pending, listed.failed) == (30, 0, 0)
    a.webhooks.remove(LOCAL, "soc")  # takes effect at once: nothing more is queued
    _raise_event(b, 999)
    assert b.webhooks.list() == []
    a.store.close()
    b.store.close()


def test_a_failed_attempt_is_retried_with_the_same_delivery_id(tmp_path: Path) -> None:
    receiver = HookReceiver([500, 503])
    try:
        app = _app(tmp_path / "data")
        app.webhooks.add(LOCAL, "soc", receiver.url, SECRET, attempts=3)
        _raise_event(app, 7)
        worker = WebhookWorker(app.store, utc_now, app.video.sources, FAST)
        worker.start()
        deadline = datetime.now(UTC).timestamp() + 20
        while len(receiver.deliveries) < 3 and datetime.now(UTC).timestamp() < deadline:
            threading.Event().wait(0.05)
        worker.stop()
        assert [d.headers["x-frvs-attempt"] for d in receiver.deliveries] == ["1", "2", "3"]
        assert len({d.headers["x-frvs-delivery"] for d in receiver.deliveries}) == 1
        (listed,) = app.webhooks.list()
        assert (listed.delivered, listed.failed) == (1, 0)
        app.store.close()
    finally:
        receiver.close()
