"""Three real ``frvs serve`` replicas on one PostgreSQL database (a and b run cameras,
c only the API), and clients spreading their requests over them: the rate limit holds
across replicas; enrol on A, delete on B, identify on C each match the store; SIGKILL
the replica running both cameras and they run on b within the goal, with one alert per
person per repeat window, each delivered once to a webhook; an SSE client of the killed
replica resumes on another with ``Last-Event-ID`` and gets every event once, in order.

The tests of this module share one cluster and run in file order (the kill is last).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx
import pytest
from replica_helpers import Cluster, HookReceiver, Replica
from sqlalchemy import create_engine, text

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # three real frvs serve: minutes

LEASE_S = 4.0
SCAN_S = 0.5
FAILOVER_GOAL_S = 15.0
CAMERAS = ("stage-1", "stage-2")
CASE = {"X-Case-Reference": "REPL-1", "X-Purpose": "replica consistency test"}


@dataclass
class World:
    cluster: Cluster
    token: str
    a: Replica
    b: Replica
    c: Replica
    database_url: str
    hooks: HookReceiver


def _long_clip(data_dir: Path, folder: Path) -> Path:
    """The clip ten times over (90 s): long enough to be cut by a failover."""
    listing = folder / "list.txt"
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    listing.write_text("".join(f"file '{clip}'\n" for _ in range(10)))
    out = folder / "long.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i",
                    str(listing), "-c", "copy", str(out)], check=True, timeout=60)
    return out


def _status(replica: Replica, token: str) -> dict[str, dict[str, object]]:
    with replica.client(token) as client:
        r = client.get("/v1/cameras/status")
    assert r.status_code == 200, r.text
    return {str(s["camera"]): s for s in r.json()}


def _wait(what: str, ready: object, timeout: float) -> float:
    """Poll ``ready()`` until true; the seconds it took (fails after ``timeout``)."""
    assert callable(ready)
    start = time.monotonic()
    while not ready():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def world(cluster_factory: object, postgres_database: str, data_dir: Path,
          tmp_path_factory: pytest.TempPathFactory, hooks: HookReceiver) -> World:
    assert callable(cluster_factory)
    cluster: Cluster = cluster_factory({
        "FRVS_VIDEO__ALLOW_PRIVATE_SOURCES": "true", "FRVS_WEBHOOK_SECRET": "a-secret-of-sixteen+",
        "FRVS_REPLICA__LEASE_SECONDS": str(LEASE_S), "FRVS_REPLICA__SCAN_SECONDS": str(SCAN_S),
        "FRVS_API__DETECT_RATE_PER_MINUTE": "1", "FRVS_API__DETECT_BURST": "4",
        "FRVS_API__SEARCH_RATE_PER_MINUTE": "100000", "FRVS_API__SEARCH_BURST": "1000",
        "FRVS_API__ENROL_RATE_PER_MINUTE": "100000", "FRVS_API__ENROL_BURST": "1000"})
    clip = _long_clip(data_dir, tmp_path_factory.mktemp("clip"))
    token = json.loads(cluster.cli("init", "--json"))["admin_key"]
    cluster.cli("gallery", "create", "hamilton", "--kind", "watchlist", "--purpose", "test",
                "--legal-basis", "test")
    for person in ("lin-manuel-miranda", "alex-lacamoire"):
        cluster.cli("enroll", "hamilton", "--subject", person,
                    str(data_dir / "video" / f"{person}.png"))
    for camera in CAMERAS:
        cluster.cli("camera", "add", camera, str(clip), "--gallery", "hamilton")
    cluster.cli("webhook", "add", "soc", hooks.url)  # delivered by whichever replica
    a = cluster.start("a")  # alone at first: it takes both cameras
    _wait("replica a runs both cameras", lambda: all(
        _status(a, token).get(c, {}).get("replica") == "a" for c in CAMERAS), 60)
    b, c = cluster.start("b"), cluster.start("c", "--role", "api")  # c runs no camera
    return World(cluster, token, a, b, c, postgres_database, hooks)


def test_every_replica_reports_every_camera_with_the_replica_running_it(world: World) -> None:
    for replica in (world.a, world.b, world.c):
        status = _status(replica, world.token)
        assert {name: status[name]["replica"] for name in CAMERAS} == {
            name: "a" for name in CAMERAS}, status


def test_the_rate_limit_holds_across_replicas(world: World, data_dir: Path) -> None:
    """Burst 4 at 1 a minute: 8 detections spread over three replicas get 4 answers and
    4 refusals (per-process buckets would have answered all 8)."""
    photo = data_dir / "video" / "alex-lacamoire.png"
    codes = []
    for i in range(8):
        replica = (world.a, world.b, world.c)[i % 3]
        with replica.client(world.token) as client:
            r = client.post("/v1/detect",
                            files=[("image", (photo.name, photo.read_bytes(), "image/png"))])
        codes.append(r.status_code)
        if r.status_code == 429:
            assert float(r.headers["Retry-After"]) > 0
    assert Counter(codes) == {200: 4, 429: 4}, codes
    assert codes[:4] == [200] * 4


def _identify(replica: Replica, token: str, probe: Path) -> set[str]:
    with replica.client(token) as client:
        r = client.post("/v1/galleries/people/identify", headers=CASE,
                        files=[("image", (probe.name, probe.read_bytes(), "image/jpeg"))])
    assert r.status_code == 200, r.text
    return {str(face["match"]) for face in r.json()["faces"] if face["match"]}


def _enrol(replica: Replica, token: str, subject: str, photos: list[Path]) -> None:
    with replica.client(token) as client:
        r = client.post(f"/v1/galleries/people/subjects/{subject}/templates",
                        files=[("images", (p.name, p.read_bytes(), "image/jpeg"))
                               for p in photos])
    assert r.status_code == 200 and r.json()["enrolled"] == len(photos), r.text


def test_enrol_on_a_delete_on_b_identify_on_c(world: World, data_dir: Path) -> None:
    """Each answer matches the store at that moment: no stale template found, no new
    one missed, whichever replica enrolled or deleted it."""
    train, probes = data_dir / "identities" / "train", data_dir / "identities" / "test"
    with world.a.client(world.token) as client:
        assert client.post("/v1/galleries", json={"name": "people"}).status_code == 201
    both = probes / "obama_and_biden.jpg"
    assert _identify(world.c, world.token, both) == set()  # C has built its index now
    _enrol(world.a, world.token, "obama", sorted((train / "obama").glob("*")))
    assert _identify(world.c, world.token, both) == {"obama"}
    _enrol(world.b, world.token, "biden", sorted((train / "biden").glob("*")))
    assert _identify(world.c, world.token, both) == {"obama", "biden"}
    with world.b.client(world.token) as client:
        assert client.delete("/v1/galleries/people/subjects/obama").status_code == 200
    assert _identify(world.c, world.token, both) == {"biden"}
    assert _identify(world.a, world.token, both) == {"biden"}
    _enrol(world.c, world.token, "obama", sorted((train / "obama").glob("*")))
    assert _identify(world.b, world.token, both) == {"obama", "biden"}


@dataclass
class SseReader:
    """An SSE client that follows one replica and, when it dies, resumes on the next
    with ``Last-Event-ID``: every logged event it received, in order."""

    token: str
    targets: list[Replica]
    events: list[tuple[int, str, dict[str, object]]] = field(default_factory=list)
    reconnects: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        target = 0
        while not self.stop.is_set():
            replica = self.targets[target]
            last = str(self.events[-1][0]) if self.events else "0"
            try:
                with replica.client(self.token) as client, client.stream(
                        "GET", "/v1/events", headers={"Last-Event-ID": last},
                        params={"max_seconds": 600, "status_every": 300}) as r:
                    self._read(r)
            except httpx.HTTPError:
                target = min(target + 1, len(self.targets) - 1)
                self.reconnects += 1
                time.sleep(0.2)

    def _read(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if self.stop.is_set():
                return
            if line == "":
                if "id" in fields:
                    self.events.append((int(fields["id"]), fields["event"],
                                        json.loads(fields["data"])))
                fields = {}
            elif not line.startswith(":") and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    def kinds(self) -> Counter[str]:
        return Counter(kind for _, kind, _ in self.events)


def _alerts(database_url: str) -> Counter[tuple[str, str]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT camera, subject FROM alerts")).all()
    finally:
        engine.dispose()
    return Counter((str(camera), str(subject)) for camera, subject in rows)


def _logged_ids(database_url: str) -> list[int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [int(i) for (i,) in conn.execute(text("SELECT id FROM events ORDER BY id"))]
    finally:
        engine.dispose()


def test_failover_moves_both_cameras_and_the_event_stream_resumes(world: World) -> None:
    reader = SseReader(world.token, [world.a, world.b])
    reader.start()
    try:
        # Both cameras alert on A for the person on stage; the stream of A carries it.
        _wait("alerts raised on replica a", lambda: all(
            ("alert.raised", camera) in {(k, d.get("camera")) for _, k, d in reader.events}
            for camera in CAMERAS), 120)
        before = _alerts(world.database_url)
        assert {c for c, _ in before} == set(CAMERAS)
        world.a.kill()
        took = _wait("both cameras run on another replica", lambda: all(
            _status(world.b, world.token).get(c, {}).get("replica") == "b"
            for c in CAMERAS), 30)
        assert took <= FAILOVER_GOAL_S, f"failover took {took:.1f} s"
        status_c = _status(world.c, world.token)  # the API replica answers for them too
        assert {status_c[c]["replica"] for c in CAMERAS} == {"b"}
        # The new holders replay the file from its start: the people on stage appear
        # again within the repeat window, and raise nothing new.
        _wait("the new holders analysed a whole pass of the clip", lambda: all(
            int(str(_status(world.b, world.token)[c]["frames_processed"])) >= 50
            for c in CAMERAS), 120)
        after = _alerts(world.database_url)
        assert after == before, f"alerts after the failover: {after}, before: {before}"
        assert all(n == 1 for n in after.values()), after
        assert ("stage-1", "lin-manuel-miranda") in after
        assert ("stage-2", "lin-manuel-miranda") in after
        _wait("the takeovers reach the resumed stream", lambda: sum(
            1 for _, k, d in reader.events if k == "camera.run" and d.get("previous") == "a"
            and d.get("replica") == "b") == len(CAMERAS), 20)
    finally:
        reader.stop.set()
    # Each alert reached the webhook once, from the replicas' shared queue.
    _wait("every alert delivered to the webhook", lambda: len(world.hooks.deliveries) >= sum(
        after.values()), 30)
    time.sleep(1)  # a second delivery of anything would arrive by now
    delivered = Counter(str(d.body["event"]) + ":" + str(cast(dict[str, object],
                        d.body["alert"])["id"]) for d in world.hooks.deliveries)
    assert set(delivered.values()) == {1} and len(delivered) == sum(after.values()), delivered
    assert reader.reconnects >= 1
    received = [event_id for event_id, _, _ in reader.events]
    logged = _logged_ids(world.database_url)
    # Every event once, in order: exactly the log's ids up to the last one received.
    assert received == [i for i in logged if i <= received[-1]], (received, logged)
