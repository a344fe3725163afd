"""The durable event log on one store (SQLite here; the PostgreSQL replicas test runs the
same across processes): ids with every message, resume with ``Last-Event-ID``, erasure
with the subject, pruning by the retention run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from callers import LOCAL, key_caller
from fastapi.testclient import TestClient

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.caller import system_caller
from frvs.oversight.models import Role
from frvs.oversight.records import EventRecords
from frvs.storage.events import EventRow
from frvs.storage.webhooks import WebhookDeliveryRow


def _app(data: Path) -> Application:
    app = build_application(load_settings(data_dir=data))
    app.store.open()
    return app


def _publish(app: Application, n: int, subject: str = "watch/x",
             at: datetime | None = None) -> None:
    for i in range(n):
        with app.store.unit(write=True) as uow:
            uow.publish("alert.raised", {"id": i, "subject": subject.split("/")[1]},
                        at or datetime.now(UTC), subject)


def _ids(text: str) -> list[int]:
    return [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]


def test_the_stream_resumes_after_the_last_event_id(tmp_path: Path) -> None:
    app = _app(tmp_path / "data")
    token, _ = key_caller(app, Role.REVIEWER, "rita")
    bearer = {"Authorization": f"Bearer {token}"}
    _publish(app, 5)
    with TestClient(create_api(app)) as client:
        params = {"max_seconds": 1, "status_every": 300}
        everything = client.get("/v1/events", params=params, headers=bearer | {
            "Last-Event-ID": "0"}).text
        assert _ids(everything) == [1, 2, 3, 4, 5]
        assert "retry: " in everything and everything.count("event: alert.raised") == 5
        resumed = client.get("/v1/events", params=params,
                             headers=bearer | {"Last-Event-ID": "3"})
        assert _ids(resumed.text) == [4, 5]
        assert _ids(client.get("/v1/events", params=params | {"last_event_id": 4},
                               headers=bearer).text) == [5]
        assert _ids(client.get("/v1/events", params=params, headers=bearer).text) == []
        bad = client.get("/v1/events", params=params, headers=bearer | {
            "Last-Event-ID": "yesterday"})
        assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["detail"]


def test_events_are_erased_with_their_subject_and_pruned_by_retention(tmp_path: Path) -> None:
    app = _app(tmp_path / "data")
    app.webhooks.add(LOCAL, "soc", "https://93.184.215.14/hook", "a-secret-of-sixteen")
    _publish(app, 2, "watch/x")
    _publish(app, 1, "watch/y")
    assert "events" in {s.kind for s in app.oversight.rights._sources}
    records = EventRecords(app.store)
    assert [e["data"]["subject"] for e in records.export("watch", "x")] == ["x", "x"]
    with app.store.unit(write=True) as uow:
        assert records.erase(uow, "watch", "x").count == 2
    with app.store.unit() as uow:
        left = [(r.subject_ref, r.id) for r in uow.session.query(EventRow)]
        deliveries = uow.session.query(WebhookDeliveryRow).count()
    assert [ref for ref, _ in left] == ["watch/y"] and deliveries == 1  # x's went with them

    _publish(app, 1, "watch/z", at=datetime.now(UTC) - timedelta(hours=100))
    app.retention.run(system_caller("retention"))  # keeps 72 h of the log by default
    with app.store.unit() as uow:
        assert [r.subject_ref for r in uow.session.query(EventRow)] == ["watch/y"]
