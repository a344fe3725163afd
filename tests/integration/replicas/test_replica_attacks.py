"""Attacks on the replicas' promises, each as short as it can be, on a real PostgreSQL
database (``repadv_*``, dropped afterwards; skipped, visibly, without a server)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factories
import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from postgres import fresh_database
from replica_helpers import HookReceiver
from sqlalchemy import delete, select, update

from frvs.alerts.tables import AlertRow
from frvs.alerts.webhooks import WebhookService, WebhookWorker, WorkerOptions
from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.oversight.models import Role
from frvs.pipeline.leases import LeaseBook, LeaseTerms, Replica
from frvs.pipeline.tables import CameraLeaseRow
from frvs.storage.rates import SharedBuckets
from frvs.storage.store import Store
from frvs.storage.webhooks import WebhookDeliveryRow, WebhookRepository, WebhookRow
from frvs.video.models import Sighting, TrackDecision
from frvs.video.processor import StepResult
from frvs.video.service import CameraSpec
from frvs.video.source_policy import SourcePolicy
from frvs.video.tables import SightingRow


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_database("repadv") as url:
        yield url


@pytest.fixture
def store(pg_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(pg_url, tmp_path / "media").open()
    yield s
    s.close()


def test_a_replica_whose_clock_runs_ahead_does_not_take_a_live_lease(store: Store) -> None:
    # Replica b's clock is 30 s ahead: by its clock, a's fresh 10 s lease is long gone.
    a = LeaseBook(store, lambda: datetime.now(UTC))
    b = LeaseBook(store, lambda: datetime.now(UTC) + timedelta(seconds=30))
    terms = LeaseTerms(seconds=10)
    camera = f"door-{uuid.uuid4().hex[:6]}"
    generation = a.claim(camera, "a", terms)
    assert generation is not None
    assert b.claim(camera, "b", terms) is None, "b took a camera a runs (both run it)"
    assert a.renew(camera, "a", generation, terms, None) is not None
    assert [h.replica for h in b.live() if h.camera == camera] == ["a"]


def _app(url: str, data: Path, replica: str) -> Application:
    app = build_application(load_settings(data_dir=data, database_url=url))
    app.store.open()
    app.video.leases.bind(Replica(replica))
    return app


def _decision(camera: str, gallery: str, ago: float = 0.0) -> TrackDecision:
    return factories.decision(camera, gallery=gallery,
                              at=datetime.now(UTC) - timedelta(seconds=ago))


def test_a_replica_that_stalled_past_its_lease_writes_no_alert(pg_url: str,
                                                               tmp_path: Path) -> None:
    # a runs the camera, stalls (SIGSTOP) past its lease; b takes it over and alerts; a
    # resumes with the decision of a frame from before its stall, before its next
    # renewal: only b's alert may commit.
    a, b = _app(pg_url, tmp_path / "a", "a"), _app(pg_url, tmp_path / "b", "b")
    try:
        gallery = f"wl-{uuid.uuid4().hex[:6]}"
        a.galleries.create(LOCAL, GallerySpec(gallery, GalleryKind.WATCH_LIST,
                                              purpose="test", legal_basis="test"))
        camera = CameraSpec(f"gate-{uuid.uuid4().hex[:6]}", "file.mp4")
        a.video.leases.acquire(camera)
        with a.store.unit(write=True) as uow:  # a's lease runs out while it is stopped
            uow.session.execute(update(CameraLeaseRow).where(
                CameraLeaseRow.camera == camera.name).values(
                expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        b.video.leases.acquire(camera)
        b.video.router.handle(camera, StepResult((_decision(camera.name, gallery),)), LOCAL)
        a.video.router.handle(camera, StepResult((_decision(camera.name, gallery, 12),)),
                              LOCAL)
        stale = _decision(camera.name, gallery, 12)
        seen = StepResult(sightings=(Sighting(camera.name, 1, stale.captured_at,
                                              stale.captured_at, 0.0, 0.0, 1,
                                              stale.best_shot, None, None, 1),))
        a.video.router.handle(camera, seen, LOCAL)
        # 'frvs watch' runs a camera without a lease: it is not fenced (one sighting).
        watch = _app(pg_url, tmp_path / "w", "w")
        watch.video.router.handle(camera, seen, LOCAL)
        watch.stop()
        with a.store.unit() as uow:
            holders = list(uow.session.scalars(select(AlertRow.camera).where(
                AlertRow.camera == camera.name)))
            sightings = list(uow.session.scalars(select(SightingRow.id).where(
                SightingRow.camera == camera.name)))
        assert len(holders) == 1, "the stalled replica wrote an alert under a lost lease"
        assert len(sightings) == 1, "a sighting under a lost lease, or none from a watch"
    finally:
        a.stop()
        b.stop()


def test_last_event_id_huge_or_from_the_future(tmp_path: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    app.store.open()
    bearer = {"Authorization": f"Bearer {key_caller(app, Role.REVIEWER, 'rita')[0]}"}
    params = {"max_seconds": 2, "status_every": 300}

    def publish() -> None:
        with app.store.unit(write=True) as uow:
            uow.publish("alert.raised", {"subject": "x"}, datetime.now(UTC), "watch/x")

    publish()
    with TestClient(create_api(app)) as client:
        for huge in ({"Last-Event-ID": "9" * 25}, {}):
            answer = client.get("/v1/events", headers=bearer | huge, params=params | (
                {} if huge else {"last_event_id": 10 ** 25}))
            assert answer.status_code in (400, 422), answer.text  # not a 500
        # An id the log never reached (the database was restored, the client talked to
        # another deployment): the client resumes from now, it is not left waiting
        # silently until the log grows past its id.
        threading.Timer(0.5, publish).start()
        future = client.get("/v1/events", headers=bearer | {"Last-Event-ID": "999"},
                            params=params).text
        assert [line for line in future.splitlines() if line.startswith("id: ")] == ["id: 2"]
    app.stop()


def test_a_replica_whose_clock_runs_ahead_does_not_refill_a_shared_bucket(
        store: Store) -> None:
    # Requests alternate between a replica in step and one 30 s ahead: each hop forward
    # in time must not count as 30 s of refill (60 a minute, burst 2: 2 of 10 pass).
    key = uuid.uuid4().hex[:8]
    a = SharedBuckets(store, time.time)
    b = SharedBuckets(store, lambda: time.time() + 30)
    passed = sum(replica.take("search", key, 1.0, 2.0) == 0.0
                 for _ in range(5) for replica in (a, b))
    assert passed <= 3, f"{passed} of 10 requests passed a burst of 2"


def test_a_reader_never_skips_an_event_committed_out_of_id_order(store: Store) -> None:
    # Writer 1 takes its id and holds its transaction open; writer 2 appends and
    # commits meanwhile. A reader polling with its last id must still get both.
    start = store.events.head()
    holding, seen = threading.Event(), []

    def slow_writer() -> None:
        with store.unit(write=True) as uow:
            uow.publish("alert.raised", {"n": 1}, datetime.now(UTC))
            holding.set()
            time.sleep(0.6)

    def quick_writer() -> None:
        with store.unit(write=True) as uow:
            uow.publish("alert.raised", {"n": 2}, datetime.now(UTC))

    writers = [threading.Thread(target=slow_writer), threading.Thread(target=quick_writer)]
    writers[0].start()
    holding.wait(5)
    writers[1].start()
    last, deadline = start, time.monotonic() + 3
    while len(seen) < 2 and time.monotonic() < deadline:
        for event in store.events.after(last):
            seen.append(event.data["n"])
            last = event.id
        time.sleep(0.05)
    for writer in writers:
        writer.join()
    assert sorted(seen) == [1, 2], f"the reader saw {seen}"


def test_a_replica_whose_clock_runs_ahead_does_not_resend_a_held_delivery(
        pg_url: str, tmp_path: Path) -> None:
    # a claims a delivery (held 25 s while it POSTs); b, 30 s ahead, must not claim it too.
    app = _app(pg_url, tmp_path / "a", "a")
    try:
        app.webhooks.add(LOCAL, f"soc-{uuid.uuid4().hex[:6]}", "https://93.184.215.14/hook",
                         "a-secret-of-sixteen")
        with app.store.unit(write=True) as uow:
            uow.publish("alert.raised", {"id": 1}, datetime.now(UTC))
        hold = timedelta(seconds=25)
        with app.store.unit(write=True) as uow:
            assert uow.repo(WebhookRepository).claim(datetime.now(UTC), hold)
        with app.store.unit(write=True) as uow:
            twice = uow.repo(WebhookRepository).claim(
                datetime.now(UTC) + timedelta(seconds=30), hold)
        assert twice == [], "a delivery another replica is sending was claimed again"
    finally:
        app.stop()


def test_a_webhook_host_rebound_to_loopback_after_the_check_gets_nothing(
        pg_url: str, tmp_path: Path) -> None:
    # DNS rebinding: the name answers a public address when the policy checks it, then
    # 127.0.0.1 when the request connects. The POST must never reach the loopback.
    receiver = HookReceiver()
    app = _app(pg_url, tmp_path / "a", "a")
    try:
        rebinding = SourcePolicy(resolver=lambda _host: ["93.184.215.14"])  # 1st answer
        now = lambda: datetime.now(UTC)  # noqa: E731
        WebhookService(app.store, now, rebinding).add(LOCAL, f"rebind-{uuid.uuid4().hex[:6]}",
                         f"http://localhost:{receiver.port}/hook", "a-secret-of-sixteen")
        with app.store.unit(write=True) as uow:
            uow.publish("alert.raised", {"id": 1}, datetime.now(UTC))
        WebhookWorker(app.store, now, rebinding,
                      WorkerOptions(timeout_seconds=1)).work_once()
        assert receiver.deliveries == [], \
            "the delivery reached 127.0.0.1 after the policy allowed the name"
    finally:
        app.stop()
        receiver.close()


def test_a_delivery_whose_sender_died_mid_post_is_sent_again_with_its_id(
        pg_url: str, tmp_path: Path) -> None:
    # Replica a claims a delivery and is killed before finishing it: once its hold
    # passes, b sends it, with the same X-FRVS-Delivery (receivers dedupe on it).
    receiver = HookReceiver()
    app = _app(pg_url, tmp_path / "a", "a")
    try:
        with app.store.unit(write=True) as uow:  # only this test's webhook and delivery
            uow.session.execute(update(WebhookRow).values(enabled=False))
            uow.session.execute(delete(WebhookDeliveryRow))
        loopback = SourcePolicy(allow_private=True)
        now = lambda: datetime.now(UTC)  # noqa: E731
        WebhookService(app.store, now, loopback).add(
            LOCAL, f"dies-{uuid.uuid4().hex[:6]}",
            receiver.url, "a-secret-of-sixteen")
        with app.store.unit(write=True) as uow:
            uow.publish("alert.raised", {"id": 1}, datetime.now(UTC))
        with app.store.unit(write=True) as uow:  # a's claim; a dies before its POST ends
            (abandoned,) = uow.repo(WebhookRepository).claim(now(), timedelta(seconds=1))
        b = WebhookWorker(app.store, now, loopback, WorkerOptions(timeout_seconds=2))
        assert b.work_once() == 0  # still held by a
        time.sleep(1.2)
        assert b.work_once() == 1
        assert [(d.headers["x-frvs-delivery"], d.headers["x-frvs-attempt"])
                for d in receiver.deliveries] == [(str(abandoned.id), "2")]
    finally:
        app.stop()
        receiver.close()
