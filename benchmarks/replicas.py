"""Replicas on one PostgreSQL store: failover time, event delivery latency across
replicas, and an index's catch-up time after one change (prints JSON).

- failover: two ``frvs serve`` replicas with the default lease (10 s) and scan (2 s); a
  camera plays a 90 s file on replica A; A is killed with SIGKILL; the time until B
  reports running the camera.
- event latency: B's ``/v1/events`` stream while A's camera raises alerts (repeat window
  0, so every track alerts); latency = arrival on B's stream minus the event's time
  (both clocks are this machine's).
- catch-up: a gallery whose change log holds N changes and whose in-memory exact index
  holds N vectors; one template is added by another "process" and the catalog's
  ``fresh`` catches up (median of 20). The templates table holds only the changed
  templates (seeding N real rows at 10M would take 6 GB); the change log, which is what
  catch-up reads, has all N rows.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth; FRVS_TEST_POSTGRES_URL to change) and
ffmpeg. The machine is shared: ``load_average`` is recorded; read figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _serve import FRVS, SHARED, free_port, log, start

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from postgres import PG_ADMIN_URL, database_on
from sqlalchemy import create_engine, insert, text

from frvs.config.settings import Settings
from frvs.core.templates import Metric, ModelSpace
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.schema import GalleryRow, SubjectRow, TemplateRow
from frvs.storage.store import Store

DATA = SHARED / "data"
SPACE = ModelSpace("bench", "1", 128, Metric.COSINE)


@contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (``replicas_bench_*``), dropped afterwards."""
    name = f"replicas_bench_{uuid.uuid4().hex[:8]}"
    with database_on(create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT"), name) as url:
        yield url


# -- catch-up -------------------------------------------------------------------------


def _template(gallery_id: int, subject_id: int, vector: np.ndarray, tag: str) -> dict[str, Any]:
    return {"subject_id": subject_id, "gallery_id": gallery_id, "space_key": SPACE.key,
            "pack": SPACE.pack, "pack_version": SPACE.version, "dimension": SPACE.dimension,
            "metric": SPACE.metric.value, "vector": vector.astype("<f4").tobytes(),
            "quality": 1.0, "image_sha256": tag, "source": None, "box": [0, 0, 1, 1],
            "crop_path": None, "created_at": datetime.now(UTC)}


def catch_up(url: str, size: int, folder: Path, repeats: int = 20) -> dict[str, Any]:
    """Milliseconds for ``fresh`` to apply one change at ``size`` templates."""
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(url, folder / "media").open()
    now = datetime.now(UTC)
    with store.unit(write=True) as uow:
        gallery = GalleryRow(name=f"g{size}", kind="general", pack=SPACE.pack, revision=0,
                             keep_crops=False, created_at=now)
        uow.session.add(gallery)
        uow.session.flush()
        gid = gallery.id
        subject = uow.session.scalars(insert(SubjectRow).returning(SubjectRow.id), [{
            "gallery_id": gid, "external_id": "s", "display_name": None, "attributes": {},
            "created_at": now, "expires_at": None}]).one()
    started = time.perf_counter()
    with store.database.engine.begin() as conn:  # the log of N additions, in one statement
        conn.execute(text(
            "INSERT INTO index_changes (gallery_id, template_id, space_key, added) "
            "SELECT :g, n, :k, true FROM generate_series(1, :n) AS n"),
            {"g": gid, "k": SPACE.key, "n": size})
        conn.execute(text("ANALYZE index_changes"))
    seeded = time.perf_counter() - started
    catalog = IndexCatalog(store, Settings().index, folder)
    index = catalog.fresh(gid, SPACE)  # empty templates table: position = the log's head
    rng = np.random.default_rng(1)
    for start_at in range(0, size, 1_000_000):  # N vectors in memory, as a load leaves them
        n = min(1_000_000, size - start_at)
        vectors = rng.standard_normal((n, SPACE.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.add(np.arange(start_at + 1, start_at + n + 1), vectors)
    timings = []
    for i in range(repeats):
        vector = rng.standard_normal(SPACE.dimension).astype(np.float32)
        vector /= np.linalg.norm(vector)
        with store.unit(write=True) as uow:  # another replica enrols one template
            tid = uow.session.scalars(insert(TemplateRow).returning(TemplateRow.id), [
                _template(gid, subject, vector, f"t{i}")]).one()
            uow.templates.record_added(gid, SPACE.key, [tid])
        t0 = time.perf_counter()
        fresh = catalog.fresh(gid, SPACE)
        timings.append((time.perf_counter() - t0) * 1000)
        assert fresh is index and int(index.search(vector.reshape(1, -1), 1).ids[0, 0]) == tid
    store.close()
    return {"templates": size, "seed_log_s": round(seeded, 1),
            "catch_up_ms_median": round(statistics.median(timings), 2),
            "catch_up_ms_max": round(max(timings), 2)}


# -- failover and event latency -------------------------------------------------------


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([FRVS, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, check=True, timeout=300)
    return done.stdout


def _holder(base: str, token: str, camera: str) -> str | None:
    try:
        r = httpx.get(f"{base}/v1/cameras/status", timeout=5,
                      headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError:
        return None
    return next((str(s["replica"]) for s in r.json() if s["camera"] == camera), None)


class Listener:
    """An SSE client of one replica: the arrival time of each logged event, by id."""

    def __init__(self, base: str, token: str) -> None:
        self.arrivals: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base, token), daemon=True)
        self._thread.start()

    def _run(self, base: str, token: str) -> None:
        with httpx.stream("GET", f"{base}/v1/events", timeout=None,
                          params={"max_seconds": 3600, "status_every": 300},
                          headers={"Authorization": f"Bearer {token}"}) as r:
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("id: "):
                    self.arrivals[int(line[len("id: "):])] = datetime.now(UTC).timestamp()

    def stop(self) -> None:
        self._stop.set()


def _latencies(url: str, arrivals: dict[int, float]) -> list[float]:
    """Arrival on the stream minus the time each alert.raised event was logged."""
    engine = create_engine(url)
    with engine.connect() as conn:
        logged = dict(conn.execute(text(
            "SELECT id, at FROM events WHERE kind = 'alert.raised'")).all())
    engine.dispose()
    return sorted(arrivals[i] - at.timestamp() for i, at in logged.items() if i in arrivals)


def cluster(url: str, folder: Path) -> dict[str, Any]:
    env = {"FRVS_DATABASE_URL": url, "FRVS_DATA_DIR": str(folder / "data")}
    clip = DATA / "video" / "short_hamilton_clip.mp4"
    folder.mkdir(parents=True, exist_ok=True)
    listing = folder / "list.txt"
    listing.write_text("".join(f"file '{clip}'\n" for _ in range(10)))
    long_clip = folder / "long.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i",
                    str(listing), "-c", "copy", str(long_clip)], check=True)
    token = json.loads(_cli(env, "init", "--json"))["admin_key"]
    _cli(env, "gallery", "create", "hamilton", "--kind", "watchlist", "--purpose", "bench",
         "--legal-basis", "bench")
    for person in ("lin-manuel-miranda", "alex-lacamoire"):
        _cli(env, "enroll", "hamilton", "--subject", person, str(DATA / "video" / f"{person}.png"))
    _cli(env, "camera", "add", "stage", str(long_clip), "--gallery", "hamilton")
    port_a, port_b = free_port(), free_port()
    a = start(folder / "data", port_a, env, args=["--replica", "a"])
    base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    httpx.put(f"{base_a}/v1/galleries/hamilton/alert-rule", timeout=10,
              headers={"Authorization": f"Bearer {token}"},
              json={"two_person": True, "suppress_seconds": 0}).raise_for_status()
    b = start(folder / "data", port_b, env, args=["--replica", "b"])
    try:
        while _holder(base_b, token, "stage") != "a":
            time.sleep(0.2)
        listener = Listener(base_b, token)
        time.sleep(45)  # half the file: alerts raised on A, streamed by B
        a.send_signal(signal.SIGKILL)
        a.wait()
        killed = time.monotonic()
        while _holder(base_b, token, "stage") != "b":
            time.sleep(0.1)
        failover = time.monotonic() - killed
        listener.stop()
        samples = _latencies(url, listener.arrivals)
        return {
            "failover_s": round(failover, 2),
            "lease_s": Settings().replica.lease_seconds,
            "scan_s": Settings().replica.scan_seconds,
            "event_latency_ms": {
                "events": len(samples),
                "p50": round(1000 * float(np.percentile(samples, 50)), 1) if samples else None,
                "p95": round(1000 * float(np.percentile(samples, 95)), 1) if samples else None,
            },
        }
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000",
                        help="template counts for the catch-up measurement")
    parser.add_argument("--skip-cluster", action="store_true",
                        help="only the catch-up measurement")
    options = parser.parse_args()
    load_start = os.getloadavg()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not options.skip_cluster:
            with database() as url:
                log("failover and event latency ...")
                out |= cluster(url, folder / "cluster")
        out["catch_up"] = []
        for size in (int(s) for s in options.sizes.split(",")):
            with database() as url:
                log(f"catch-up at {size} ...")
                out["catch_up"].append(catch_up(url, size, folder / f"c{size}"))
    out["load_average"] = {"start": load_start, "end": os.getloadavg()}
    out["cpus"] = os.cpu_count()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
