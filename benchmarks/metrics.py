"""What /metrics and the MQTT publisher cost: scrape latency of a real `frvs serve` with
N folder cameras registered (each camera adds its figures to every scrape), and how fast
alert notices reach the machine's Mosquitto with QoS 1 (published to PUBACK).

    python benchmarks/metrics.py [--cameras 8] [--scrapes 200] [--notices 800]

Prints one JSON document; the machine's load average is in it (figures under load say
little about an idle machine)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _serve import FRVS, start

from frvs.alerts.models import Alert, AlertStatus
from frvs.alerts.mqtt import MqttPublisher, MqttTarget
from frvs.alerts.notify import AlertNotice


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(cameras: int, scrapes: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="frvs-metrics-"))
    data, frames = root / "data", root / "frames"
    frames.mkdir()
    env = {**os.environ, "FRVS_DATA_DIR": str(data)}
    subprocess.run([FRVS, "gallery", "create", "g"], env=env, check=True, capture_output=True)
    for i in range(cameras):
        subprocess.run([FRVS, "camera", "add", f"cam{i}", str(frames), "-g", "g"], env=env,
                       check=True, capture_output=True)
    port = _free_port()
    proc = start(data, port)
    try:
        base = f"http://127.0.0.1:{port}"
        times, size = [], 0
        with httpx.Client(base_url=base) as client:
            for _ in range(scrapes):
                t0 = time.perf_counter()
                page = client.get("/metrics")
                times.append((time.perf_counter() - t0) * 1000)
                size = len(page.content)
        times.sort()
        return {"cameras": cameras, "scrapes": scrapes, "bytes": size,
                "p50_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[int(0.95 * len(times)) - 1], 2)}
    finally:
        proc.terminate()
        proc.wait(30)


def mqtt(notices: int) -> dict[str, object]:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError:
        return {"skipped": "no MQTT broker on 127.0.0.1:1883"}
    alert = Alert(1, "door", 1, "wl", "x", 0.6, 0.36, 3, datetime.now(UTC), 0.0, 0.8, None,
                  AlertStatus.NEW, True)
    publisher = MqttPublisher(MqttTarget("127.0.0.1", prefix="frvs-bench", status_interval_s=0))
    acked = threading.Semaphore(0)
    original = publisher._client.on_publish  # counted, then released per PUBACK

    def on_publish(*args: object) -> None:
        original(*args)  # type: ignore[misc]
        acked.release()

    publisher._client.on_publish = on_publish
    publisher.start()
    assert publisher.connected.wait(10)
    for _ in range(1):  # the 'online' message
        acked.acquire(timeout=10)
    t0 = time.perf_counter()
    for _ in range(notices):
        publisher(AlertNotice("raised", alert))
    for _ in range(notices):
        acked.acquire(timeout=30)
    seconds = time.perf_counter() - t0
    publisher.close()
    return {"notices": notices, "seconds": round(seconds, 3),
            "per_second": round(notices / seconds), "qos": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--notices", type=int, default=800)  # under the 1,000 queue bound
    args = parser.parse_args()
    result = {"benchmark": "metrics", "loadavg": os.getloadavg(), "cpus": os.cpu_count(),
              "python": sys.version.split()[0],
              "metrics_scrape": scrape(args.cameras, args.scrapes),
              "mqtt_publish": mqtt(args.notices)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
