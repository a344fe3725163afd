"""Hostile uploads against one real ``frvs serve`` process: memory and liveness.

The attack of issue 12: 8 and 16 concurrent uploads to ``POST /v1/detect`` of a
16383 x 2441 image (40 Mpx, just under the pixel limit, a few tens of kB on disk) as
WebP and as PNG. For each wave the service's resident memory is sampled every 20 ms
(peak), and again 10 s after the last answer (settled), against its idle figure after a
warm-up detection; ``/healthz`` is polled throughout the wave (p95 latency). Each wave
uses a fresh operator key, so the per-key rate limit does not hide the pixel budget;
the answers' statuses are counted (200 analysed, 503 ``busy`` refused by the budget).
Finally a 1 x 39,000,000 PNG is sent once and its answer timed.

    python benchmarks/hostile.py [--port P] [--waves webp:8,webp:16,png:8,png:16]

Prints one JSON document on stdout (progress on stderr). Goals (issue 12): peak RSS
under 1536 MB at 8 concurrent WebP uploads, settled within 200 MB of idle, healthz p95
at most 100 ms. Timings are as noisy as the machine: the load average is recorded.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _serve
import httpx
from _serve import SHARED, free_port, log
from PIL import Image

PHOTO = SHARED / "data" / "pairs" / "images" / "img1.jpg"
WIDE = (16383, 2441)
SETTLE_S = 10.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return kb / 1024


def hostile_images() -> dict[str, bytes]:
    """The issue's uploads: 40 Mpx of flat grey (tiny once compressed), and a line of
    39 million pixels."""
    out: dict[str, bytes] = {}
    wide = Image.new("RGB", WIDE, (128, 128, 128))
    for fmt, params in (("webp", {"quality": 10}), ("png", {"optimize": True})):
        buf = io.BytesIO()
        wide.save(buf, fmt.upper(), **params)
        out[fmt] = buf.getvalue()
    buf = io.BytesIO()
    Image.new("L", (1, 39_000_000)).save(buf, "PNG", optimize=True)
    out["line"] = buf.getvalue()
    return out


@dataclass
class Watch:
    """Samples the service's RSS and times /healthz while a wave runs."""

    pid: int
    base: str
    peak: float = 0.0
    health_ms: list[float] = field(default_factory=list)
    health_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _memory(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def _health(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self._stop.is_set():
                began = time.perf_counter()
                try:
                    client.get("/healthz").raise_for_status()
                    self.health_ms.append(1000 * (time.perf_counter() - began))
                except httpx.HTTPError:
                    self.health_errors += 1
                time.sleep(0.05)

    def __enter__(self) -> Watch:
        self.threads = [threading.Thread(target=self._memory),
                        threading.Thread(target=self._health)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self.threads:
            t.join()


def p95(values: list[float]) -> float | None:
    if len(values) < 2:
        return round(values[0], 1) if values else None
    return round(statistics.quantiles(values, n=20)[18], 1)


def operator_key(base: str, admin: str, name: str) -> str:
    r = httpx.post(f"{base}/v1/keys", json={"name": name, "role": "operator"},
                   headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    r.raise_for_status()
    return str(r.json()["token"])


def wave(proc: subprocess.Popen[bytes], base: str, token: str, upload: tuple[str, bytes],
         concurrency: int) -> dict[str, Any]:
    """``concurrency`` simultaneous detections of ``upload``; memory, health, answers."""
    idle = rss_mb(proc.pid)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    gate = threading.Barrier(concurrency)

    def send() -> None:
        gate.wait()
        began = time.perf_counter()
        try:
            r = httpx.post(f"{base}/v1/detect", headers={"Authorization": f"Bearer {token}"},
                           files={"image": upload}, timeout=180)
            statuses[r.status_code] += 1
        except httpx.HTTPError:
            statuses[0] += 1
        latencies.append(time.perf_counter() - began)

    with Watch(proc.pid, base) as watch:
        senders = [threading.Thread(target=send) for _ in range(concurrency)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
    time.sleep(SETTLE_S)
    settled = rss_mb(proc.pid)
    return {"upload": upload[0], "bytes": len(upload[1]), "concurrency": concurrency,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "rss_idle_mb": round(idle), "rss_peak_mb": round(watch.peak),
            "rss_settled_mb": round(settled), "settled_minus_idle_mb": round(settled - idle),
            "slowest_answer_s": round(max(latencies), 2),
            "healthz_p95_ms": p95(watch.health_ms), "healthz_max_ms":
                round(max(watch.health_ms), 1) if watch.health_ms else None,
            "healthz_errors": watch.health_errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--waves", default="webp:8,webp:16,png:8,png:16")
    args = parser.parse_args()
    load_start = os.getloadavg()
    images = hostile_images()
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="frvs-hostile-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {**os.environ, "FRVS_DATA_DIR": str(data_dir)}
        admin = json.loads(subprocess.run([_serve.FRVS, "init", "--json"], env=env, check=True,
                                          capture_output=True, text=True).stdout)["admin_key"]
        proc = _serve.start(data_dir, port)
        try:
            warm = httpx.post(f"{base}/v1/detect", headers={"Authorization": f"Bearer {admin}"},
                              files={"image": ("photo.jpg", PHOTO.read_bytes())}, timeout=120)
            warm.raise_for_status()
            time.sleep(2)
            idle = rss_mb(proc.pid)
            log(f"idle RSS after warm-up: {idle:.0f} MB")
            waves = []
            for spec in args.waves.split(","):
                fmt, n = spec.split(":")
                token = operator_key(base, admin, f"hostile-{fmt}-{n}")
                result = wave(proc, base, token, (f"wide.{fmt}", images[fmt]), int(n))
                log(json.dumps(result))
                waves.append(result)
            began = time.perf_counter()
            line = httpx.post(f"{base}/v1/detect", headers={"Authorization": f"Bearer {admin}"},
                              files={"image": ("line.png", images["line"])}, timeout=120)
            line_s = time.perf_counter() - began
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps({
        "image": f"{WIDE[0]}x{WIDE[1]}", "rss_idle_after_warmup_mb": round(idle),
        "waves": waves,
        "line_1x39000000_png": {"bytes": len(images["line"]), "status": line.status_code,
                                "code": line.json().get("code"),
                                "answer_ms": round(1000 * line_s, 1)},
        "goals": {"rss_peak_mb_below": 1536, "settled_within_mb_of_idle": 200,
                  "healthz_p95_ms_at_most": 100},
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
