"""API speed under concurrent load on loopback: verify and identify, p50/p95 latency
and throughput, against real ``frvs serve`` processes (SQLite, exact index).

Verify (img38.jpg 1275x675 and img39.jpg 1507x2048 of ``pairs/images``) is measured on
two servers side by side, in alternating rounds: one with the default path (uploads
decoded at a reduced DCT scale, both images analysed at once) and one with
``detection.reduced_decode`` off (every pixel decoded, one image after the other), each
with one client (latency) and with ``--concurrency`` clients (throughput).
``--baseline-frvs`` adds a third server run by another checkout's ``frvs`` (an older
version, measured in the same rounds on the same machine). The servers'
CPU time per request is read from /proc: it holds when a shared machine's load makes
wall times noisy. Each client thread keeps one connection open (keep-alive, as API
clients do); the clients' own CPU time per request is reported, since they share the
cores with the server (a new ``httpx.Client`` per request, as before 2026-12-02, cost
the clients about 30 ms of CPU a request).

Galleries: ``g1k`` and ``g100k`` hold 1,000 and 100,000 subjects (one synthetic
template each, L2-normalised random vectors in the default pack's model space,
inserted directly into the store before the service starts) plus one real enrolled
subject, so each identify both detects/embeds a real probe and searches the whole
gallery. Every request carries a real photo and is authenticated and audited, as in
production.

    python benchmarks/api.py [--requests N] [--concurrency C] [--big 100000]
                             [--rounds R] [--verify-only] [--baseline-frvs PATH]

Prints one JSON document on stdout (progress on stderr). Timings are as noisy as the
machine: the load average is recorded at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _serve
import httpx
import numpy as np
from _serve import SHARED, cpu_seconds, log
from sqlalchemy import insert

from frvs.app import build_application
from frvs.config.settings import load_settings
from frvs.core.caller import system_caller
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec
from frvs.storage.schema import SubjectRow, TemplateRow

DATA = SHARED / "data"
CASE = {"X-Case-Reference": "BENCH", "X-Purpose": "benchmark"}
_BATCH = 5000


def seed(data_dir: Path, sizes: dict[str, int], real: Path) -> str:
    """Galleries of synthetic subjects, one real subject each, and the admin key."""
    app = build_application(load_settings(data_dir=data_dir))
    app.store.open()
    bench = system_caller("benchmark")
    token = app.oversight.keys.create_first_admin(bench).token
    space = app.packs.info(app.packs.default_name).space
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    for name, size in sizes.items():
        gallery = app.galleries.create(bench, GallerySpec(name))
        app.galleries.enrol(bench, name, [EnrolItem("real-person", real.read_bytes(),
                                                    name=real.name)])
        for start in range(0, size, _BATCH):
            count = min(_BATCH, size - start)
            vectors = rng.standard_normal((count, space.dimension)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            with app.store.unit(write=True) as uow:
                ids = uow.session.scalars(insert(SubjectRow).returning(SubjectRow.id), [
                    {"gallery_id": gallery.id, "external_id": f"synthetic-{start + i:07d}",
                     "display_name": None, "attributes": {}, "created_at": now,
                     "expires_at": None} for i in range(count)]).all()
                uow.session.execute(insert(TemplateRow), [
                    {"subject_id": sid, "gallery_id": gallery.id, "space_key": space.key,
                     "pack": space.pack, "pack_version": space.version,
                     "dimension": space.dimension, "metric": space.metric.value,
                     "vector": vec.astype("<f4").tobytes(), "quality": 1.0,
                     "image_sha256": f"{sid:064x}", "source": None, "box": [0, 0, 1, 1],
                     "crop_path": None, "created_at": now} for sid, vec in zip(ids, vectors,
                                                                             strict=True)])
                uow.galleries.bump_revision(gallery.id)
        log(f"seeded {name}: {size} synthetic subjects + 1 real")
    app.store.close()
    return token


def load(base: str, token: str, request: dict[str, Any], total: int,
         concurrency: int) -> dict[str, Any]:
    """``total`` POSTs of ``request`` from ``concurrency`` threads, each a client that
    keeps its connection open as API clients do; latency, rate and the clients' own CPU
    time per request (they share the machine with the server)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(_: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(
                base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"})
            clients.append(client)
        began = time.perf_counter()
        r = client.post(request["path"], files=request["files"], headers=request.get("headers"))
        latencies.append(time.perf_counter() - began)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    one(0)  # warm-up (model load, index build), not counted
    latencies.clear()
    statuses.clear()
    began, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - began
    client_cpu = time.process_time() - cpu
    for client in clients:
        client.close()
    ordered = sorted(latencies)
    return {"requests": total, "concurrency": concurrency, "statuses": statuses,
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
            "throughput_rps": round(total / elapsed, 2),
            "client_cpu_ms_per_request": round(1000 * client_cpu / total, 1)}


def measured(base: str, token: str, request: dict[str, Any], total: int, concurrency: int, *,
             pid: int) -> dict[str, Any]:
    """``load`` plus the server's CPU time per request."""
    before = cpu_seconds(pid)
    result = load(base, token, request, total, concurrency)
    # The warm-up request is included in the CPU time: one more request.
    result["server_cpu_ms_per_request"] = round(
        1000 * (cpu_seconds(pid) - before) / (total + 1), 1)
    return result


VARIANTS = {"reduced_decode": "true", "full_decode": "false"}


def baseline_server(frvs: str, data_dir: Path, port: int, env: dict[str, str]
                    ) -> tuple[subprocess.Popen[bytes], str]:
    """Another checkout's ``frvs serve`` on a data directory of its own, initialised by
    its own ``frvs init`` (its schema may be older than this checkout's); its admin key."""
    own = {**os.environ, "FRVS_DATA_DIR": str(data_dir)}
    out = subprocess.run([frvs, "init", "--json"], env=own, check=True,
                         capture_output=True, text=True).stdout
    token = str(json.loads(out[out.index("{"):])["admin_key"])
    return _serve.start(data_dir, port, env, timeout=300, executable=frvs), token


def compare_verify(data_dir: Path, token: str, port: int, args: argparse.Namespace,
                   env: dict[str, str]) -> dict[str, Any]:
    """Verify on both paths, side by side, in ``args.rounds`` alternating rounds: p50/p95
    with one client, throughput with ``args.concurrency``; medians over the rounds."""
    photos = DATA / "pairs" / "images"
    files = [("image_a", ("img38.jpg", (photos / "img38.jpg").read_bytes(), "image/jpeg")),
             ("image_b", ("img39.jpg", (photos / "img39.jpg").read_bytes(), "image/jpeg"))]
    request = {"path": "/v1/verify", "files": files}
    servers = {}
    for i, (name, flag) in enumerate(VARIANTS.items()):
        own = data_dir.parent / f"data-{name}"
        shutil.copytree(data_dir, own)
        servers[name] = (_serve.start(own, port + 1 + i, {
            **env, "FRVS_DETECTION__REDUCED_DECODE": flag}, timeout=300), port + 1 + i, token)
    if args.baseline_frvs:
        own_port = port + 1 + len(VARIANTS)
        proc, own_token = baseline_server(args.baseline_frvs, data_dir.parent / "data-baseline",
                                          own_port, env)
        servers["baseline"] = (proc, own_port, own_token)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    try:
        for r in range(args.rounds):
            for name, (proc, own_port, key) in servers.items():
                base = f"http://127.0.0.1:{own_port}"
                one = measured(base, key, request, args.requests, 1, pid=proc.pid)
                many = measured(base, key, request, args.requests, args.concurrency,
                                pid=proc.pid)
                rounds[name].append({"one_client": one, "clients": many})
                log(f"round {r + 1} {name}: 1 client p50 {one['p50_ms']} p95 {one['p95_ms']}"
                    f" ms; {args.concurrency} clients {many['throughput_rps']} req/s")
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=60)

    def median(name: str, case: str, key: str) -> float:
        return round(statistics.median(r[case][key] for r in rounds[name]), 2)

    summary = {name: {
        "one_client": {k: median(name, "one_client", k)
                       for k in ("p50_ms", "p95_ms", "server_cpu_ms_per_request")},
        f"{args.concurrency}_clients": {k: median(name, "clients", k) for k in (
            "p50_ms", "p95_ms", "throughput_rps", "server_cpu_ms_per_request")},
    } for name in servers}

    def ratio(slow: str) -> float:
        clients = f"{args.concurrency}_clients"
        return round(summary["reduced_decode"][clients]["throughput_rps"]
                     / summary[slow][clients]["throughput_rps"], 2)

    ratios = {"throughput_ratio": ratio("full_decode")}
    if "baseline" in servers:
        ratios["throughput_ratio_to_baseline"] = ratio("baseline")
    return {"photos": ["img38.jpg", "img39.jpg"], "rounds": args.rounds,
            "baseline_frvs": args.baseline_frvs, **summary, **ratios, "per_round": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=80)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=18790)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the verify comparison")
    parser.add_argument("--baseline-frvs", default="",
                        help="another checkout's frvs executable (e.g. of the commit an "
                        "issue measured), verified against as a third server side by side")
    parser.add_argument("--verify-only", action="store_true",
                        help="only the verify comparison (no galleries to seed)")
    args = parser.parse_args()
    real = DATA / "identities" / "train" / "obama" / "obama.jpg"
    probe = DATA / "identities" / "test" / "obama1.jpg"
    load_start, cpu_start = os.getloadavg(), os.times()
    unlimited = {"FRVS_API__SEARCH_RATE_PER_MINUTE": "1000000",
                 "FRVS_API__SEARCH_BURST": "100000",
                 "FRVS_API__VERIFY_RATE_PER_MINUTE": "1000000",
                 "FRVS_API__VERIFY_BURST": "100000"}
    results: dict[str, Any] = {}
    seed_s = start_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        began = time.perf_counter()
        token = seed(data_dir, {} if args.verify_only else {"g1k": 1000, "g100k": args.big},
                     real)
        seed_s = time.perf_counter() - began
        log("verify, both paths side by side ...")
        results["verify"] = compare_verify(data_dir, token, args.port, args, unlimited)
        if not args.verify_only:
            began = time.perf_counter()
            proc = _serve.start(data_dir, args.port, unlimited, timeout=300)
            start_s = time.perf_counter() - began
            base = f"http://127.0.0.1:{args.port}"
            identify = [("image", (probe.name, probe.read_bytes(), "image/jpeg"))]
            try:
                for label, request in [
                    ("identify_1k", {"path": "/v1/galleries/g1k/identify",
                                     "files": identify, "headers": CASE}),
                    (f"identify_{args.big // 1000}k", {
                        "path": "/v1/galleries/g100k/identify", "files": identify,
                        "headers": CASE}),
                ]:
                    log(f"loading {label} ...")
                    results[label] = load(base, token, request, args.requests,
                                          args.concurrency)
                    log(f"  {results[label]}")
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    cpu_end = os.times()
    print(json.dumps({
        "benchmark": "api", "store": "sqlite", "index": "exact",
        "seed_seconds": round(seed_s, 1), "startup_seconds": round(start_s, 1),
        "results": results, "cpu_count": os.cpu_count(),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "client_cpu_seconds": round(cpu_end.user + cpu_end.system
                                    - cpu_start.user - cpu_start.system, 1),
        "note": "loopback, one service process, client threads on the same machine; "
                "shared cores make these figures noisy",
    }, indent=2))


if __name__ == "__main__":
    main()
