"""`frvs watch` runs a source as a camera in `frvs serve` does: the same alerts reach the
same webhook receiver and MQTT subscriber, audited alike; a missing or unreadable source
fails with exit 9 before any work. `/metrics` of the service parses as Prometheus text
and its camera figures are those of `GET /v1/cameras/status`."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families
from replica_helpers import HookReceiver
from service_helpers import frvs, served

SECRET = "parity-secret-0123456789"


@pytest.fixture
def webhook() -> Iterator[HookReceiver]:
    server = HookReceiver()
    yield server
    server.close()


@pytest.fixture
def subscriber() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError:
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (.ci/run starts mosquitto)")
    prefix = f"frvs-parity-{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, dict[str, Any]]] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    ready = threading.Event()
    client.on_subscribe = lambda *_: ready.set()
    client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/alerts", qos=1)
    client.on_message = lambda _c, _u, m: got.append((m.topic, json.loads(m.payload)))
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    assert ready.wait(10)
    yield prefix, got
    client.disconnect()
    client.loop_stop()


def _bodies(webhook: HookReceiver) -> list[dict[str, Any]]:
    return [d.body for d in webhook.deliveries]


def _raised(bodies: list[dict[str, Any]], camera: str) -> list[str]:
    return sorted(b["alert"]["subject"] for b in bodies
                  if b["event"] == "alert.raised" and b["alert"]["camera"] == camera)


def _wait(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.mark.slow
def test_watch_and_serve_deliver_the_same_alerts_and_metrics_parse(
        tmp_path: Path, data_dir: Path, webhook: HookReceiver,
        subscriber: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    url = webhook.url
    prefix, messages = subscriber
    video = data_dir / "video"
    clip = video / "short_hamilton_clip.mp4"
    env = {"FRVS_DATA_DIR": str(tmp_path / "data"),
           # The receiver and broker are on loopback, which cameras and webhooks may
           # reach only when the deployment allows private hosts.
           "FRVS_VIDEO__ALLOW_PRIVATE_SOURCES": "true",
           "FRVS_VIDEO__WEBHOOKS": json.dumps([{"url": url, "secret": SECRET}]),
           "FRVS_VIDEO__MQTT": json.dumps({"host": "127.0.0.1", "prefix": prefix,
                                           "status_interval_s": 1})}
    frvs(["gallery", "create", "hamilton", "--kind", "watch_list", "--purpose", "test",
          "--legal-basis", "test"], env)
    for person in ("lin-manuel-miranda", "alex-lacamoire"):
        frvs(["enroll", "hamilton", "--subject", person, str(video / f"{person}.png")], env)

    # Missing and unreadable sources: exit 9 at once, no camera run on the trail.
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    for source in (tmp_path / "missing.mp4", not_video, tmp_path):
        run = frvs(["watch", str(source), "--gallery", "hamilton", "--json"], env, check=False)
        assert run.returncode == 9, (source, run.stdout, run.stderr)
        assert json.loads(run.stdout.splitlines()[-1])["error"] == "file_not_found"
    trail = frvs(["audit", "list", "--json"], env).stdout
    assert "camera.start" not in trail, trail

    run = frvs(["watch", str(clip), "--gallery", "hamilton", "--camera", "watch", "--json"],
               env)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    printed = sorted(str(e["subject"]) for e in lines if e.get("event") == "alert")
    assert printed, "the clip shows at least one enrolled person"
    # Delivered before watch exited (its sinks are flushed on the way out).
    assert _raised(_bodies(webhook), "watch") == printed
    _wait(lambda: len([m for m in messages if m[1]["alert"]["camera"] == "watch"])
          >= len(printed), 10)
    assert _raised([m[1] for m in messages], "watch") == printed

    frvs(["camera", "add", "stage", str(clip), "--gallery", "hamilton"], env)
    with served(env, tmp_path / "serve.log") as service, service.client() as admin:
        _wait(lambda: _raised(_bodies(webhook), "stage") == printed
              and _raised([m[1] for m in messages], "stage") == printed)
        assert _raised(_bodies(webhook), "stage") == printed
        assert _raised([m[1] for m in messages], "stage") == printed
        # Wait for the file's end: then the figures stand still and must agree exactly.
        # (capture ends first; analysis finishes the frames it holds a moment later).
        seen: list[Any] = []

        def settled() -> bool:
            seen.append(admin.get("/v1/cameras/status").json())
            return len(seen) > 3 and seen[-1] == seen[-4] and all(
                c["health"] == "ended" for c in seen[-1])

        _wait(settled)
        page = httpx.get(f"{service.base}/metrics")
        status = {c["camera"]: c for c in admin.get("/v1/cameras/status").json()}
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(page.text)}

        def sample(name: str, camera: str) -> float:
            family = families[name]
            found = [s.value for s in family.samples
                     if s.labels.get("camera") == camera and s.name.startswith(name)
                     and not s.name.endswith("_created")]
            assert len(found) == 1, (name, family.samples)
            return found[0]

        stage = status["stage"]
        assert sample("frvs_camera_frames_read", "stage") == stage["frames_read"]
        assert sample("frvs_camera_frames_processed", "stage") == stage["frames_processed"]
        assert sample("frvs_camera_frames_dropped", "stage") == stage["dropped"]
        assert sample("frvs_camera_reconnects", "stage") == stage["reconnects"]
        assert sample("frvs_camera_lag_seconds", "stage") == pytest.approx(
            stage["lag_seconds"], abs=1e-3)
        health = {s.labels["health"]: s.value for s in families["frvs_camera_health"].samples
                  if s.labels["camera"] == "stage"}
        assert health["ended"] == 1 and sum(health.values()) == 1
        raised = [s for s in families["frvs_alerts_raised"].samples
                  if s.name == "frvs_alerts_raised_total" and s.labels["camera"] == "stage"]
        assert sum(s.value for s in raised) == len(printed)
        delivered = {(s.labels["sink"], s.labels["result"]): s.value
                     for s in families["frvs_notifications"].samples
                     if s.name == "frvs_notifications_total"}
        assert delivered[("webhook", "delivered")] == len(printed)
        assert delivered[("mqtt", "delivered")] >= len(printed)
        assert families["frvs_mqtt_connected"].samples[0].value == 1
        embeds = [s for s in families["frvs_embed_batch_size"].samples
                  if s.name == "frvs_embed_batch_size_count"]
        assert embeds and embeds[0].value > 0
        searched = [s for s in families["frvs_search_seconds"].samples
                    if s.name == "frvs_search_seconds_count"
                    and s.labels["gallery"] == "hamilton"]
        assert searched and searched[0].value > 0
        audit = [s for s in families["frvs_audit_append_seconds"].samples
                 if s.name == "frvs_audit_append_seconds_count"]
        assert audit[0].value > 0
        trail = admin.get("/v1/audit", params={"action": "alert.raise", "limit": 500})
        runs = admin.get("/v1/audit", params={"action": "camera.start", "limit": 500})
    # The same trail: each alert raised and each camera run, whoever ran the camera.
    raised_on = [e["inputs"]["camera"] for e in trail.json()["items"]]
    assert sorted(raised_on) == sorted(["watch"] * len(printed) + ["stage"] * len(printed))
    assert sorted(e["inputs"]["camera"] for e in runs.json()["items"]) == ["stage", "watch"]
