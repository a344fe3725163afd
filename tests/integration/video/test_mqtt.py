"""The MQTT publisher against real Mosquitto brokers: the machine's on 127.0.0.1:1883
(topics, QoS 1, retained availability and status, sightings opt-in without crops, the
last will when the process dies) and a private one on a free port that is started late
and restarted (reconnection with backoff)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from frvs_process import free_port
from paho.mqtt.enums import CallbackAPIVersion

from frvs.alerts.models import Alert, AlertStatus
from frvs.alerts.mqtt import MqttPublisher, MqttTarget
from frvs.alerts.notify import AlertNotice
from frvs.video.models import CameraStatus, Health

BROKER = ("127.0.0.1", 1883)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _broker_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def broker() -> tuple[str, int]:
    if not _broker_up(*BROKER):
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (.ci/run starts mosquitto)")
    return BROKER


class Inbox:
    """A real subscriber: every message under a topic filter, with its flags."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._cond = threading.Condition()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.connect(host, port)
        self._client.loop_start()
        assert subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = 15.0
                 ) -> mqtt.MQTTMessage:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if m.topic == topic and (payload is None or m.payload.decode() == payload):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.topic, m.payload[:60]) for m in self.messages]
                    raise AssertionError(f"no {topic} {payload or ''} in {seen}")
                self._cond.wait(left)

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"frvs-test-{uuid.uuid4().hex[:8]}"
    yield name
    # Retained messages of this run are cleared (an empty retained message deletes).
    if _broker_up(*BROKER):
        c = mqtt.Client(CallbackAPIVersion.VERSION2)
        c.connect(*BROKER)
        c.loop_start()
        for topic in (f"{name}/available", f"{name}/cameras/door/status"):
            c.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()


def _alert(status: AlertStatus = AlertStatus.NEW) -> Alert:
    return Alert(7, "door", 3, "watch", "lin-manuel-miranda", 0.61, 0.36, 4,
                 datetime(2026, 1, 1, tzinfo=UTC), 1.5, 0.8, "alerts/door/x.jpg", status, True)


def _status() -> list[CameraStatus]:
    return [CameraStatus("door", Health.ONLINE, 25.0, 5.0, 100, 20, 1, 0.2, 2, None)]


def test_alerts_reviews_status_and_availability(broker: tuple[str, int], prefix: str) -> None:
    inbox = Inbox(*broker, f"{prefix}/#")
    publisher = MqttPublisher(MqttTarget(*broker, prefix=prefix, status_interval_s=0.2),
                              status=_status)
    try:
        publisher.start()
        online = inbox.wait_for(f"{prefix}/available", "online")
        publisher(AlertNotice("raised", _alert()))
        publisher(AlertNotice("reviewed", _alert(AlertStatus.CONFIRMED)))
        raised = json.loads(inbox.wait_for(f"{prefix}/alerts").payload)
        reviewed = json.loads(inbox.wait_for(f"{prefix}/reviews").payload)
        status = inbox.wait_for(f"{prefix}/cameras/door/status")
        # A sighting is not published unless the target opts in.
        publisher.on_event({"event": "sighting", "camera": "door", "subject": None,
                            "crop": "sightings/door/x.jpg"})
    finally:
        publisher.close()
    inbox.wait_for(f"{prefix}/available", "offline")
    assert online.qos == 1
    assert raised["event"] == "alert.raised" and raised["alert"]["subject"] == (
        "lin-manuel-miranda")
    assert reviewed["event"] == "alert.reviewed" and reviewed["alert"]["status"] == "confirmed"
    figures = json.loads(status.payload)
    assert figures["camera"] == "door" and figures["dropped"] == 1
    assert figures["reconnects"] == 2 and figures["health"] == "online"
    assert not inbox.on(f"{prefix}/sightings")
    inbox.close()
    # Retained: a subscriber arriving later learns FRVS is offline and the last status.
    late = Inbox(*broker, f"{prefix}/#")
    assert late.wait_for(f"{prefix}/available", "offline").retain
    assert late.wait_for(f"{prefix}/cameras/door/status").retain
    late.close()


def test_sightings_are_opt_in_and_without_crops_by_default(
        broker: tuple[str, int], prefix: str) -> None:
    inbox = Inbox(*broker, f"{prefix}/sightings")
    crops = {"sightings/door/x.jpg": b"\xff\xd8\xffjpeg"}
    plain = MqttPublisher(MqttTarget(*broker, prefix=prefix, sightings=True,
                                     status_interval_s=0), read_crop=crops.get)
    with_crops = MqttPublisher(MqttTarget(*broker, prefix=prefix, sightings=True,
                                          sighting_crops=True, status_interval_s=0),
                               read_crop=crops.get)
    for p in (plain, with_crops):
        p.start()
        assert p.connected.wait(10)
        p.on_event({"event": "sighting", "camera": "door", "subject": "obama",
                    "crop": "sightings/door/x.jpg", "frames": 12})
        p.close()
    deadline = time.monotonic() + 10
    while len(inbox.on(f"{prefix}/sightings")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    first, second = (json.loads(m.payload) for m in inbox.on(f"{prefix}/sightings"))
    inbox.close()
    assert first["subject"] == "obama" and first["frames"] == 12
    assert "crop" not in first and "crop_jpeg" not in first
    assert second["crop_jpeg"] == "/9j/anBlZw=="


def test_last_will_says_offline_when_the_process_dies(
        broker: tuple[str, int], prefix: str, tmp_path: Path) -> None:
    inbox = Inbox(*broker, f"{prefix}/available")
    script = tmp_path / "publisher.py"
    script.write_text(
        "import sys, time\n"
        "from frvs.alerts.mqtt import MqttPublisher, MqttTarget\n"
        f"p = MqttPublisher(MqttTarget('127.0.0.1', 1883, prefix={prefix!r}, keepalive=5))\n"
        "p.start()\n"
        "assert p.connected.wait(10)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
        inbox.wait_for(f"{prefix}/available", "online")
        proc.kill()  # no goodbye: the broker publishes the will
        proc.wait(10)
        will = inbox.wait_for(f"{prefix}/available", "offline", timeout=20)
        assert will.retain or will.payload == b"offline"
    finally:
        proc.kill()
        inbox.close()


def _mosquitto(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _broker_up("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the private mosquitto did not start")
        time.sleep(0.05)
    return proc


def test_reconnects_to_a_broker_that_comes_late_and_restarts(tmp_path: Path) -> None:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (.ci/run installs it)")
    port = free_port()
    publisher = MqttPublisher(MqttTarget("127.0.0.1", port, prefix="late",
                                         status_interval_s=0, reconnect_max_s=2))
    publisher.start()  # nothing listens yet: retried in the background
    time.sleep(1.5)
    assert not publisher.connected.is_set()
    broker = _mosquitto(port, tmp_path)
    try:
        assert publisher.connected.wait(15), "did not connect once the broker came up"
        broker.terminate()
        broker.wait(10)
        deadline = time.monotonic() + 10
        while publisher.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not publisher.connected.is_set()
        # Queued while the broker is down (QoS 1), delivered after reconnecting.
        publisher(AlertNotice("raised", _alert()))
        broker = _mosquitto(port, tmp_path)
        inbox = Inbox("127.0.0.1", port, "late/alerts")
        assert publisher.connected.wait(15), "did not reconnect after the restart"
        assert json.loads(inbox.wait_for("late/alerts").payload)["alert"]["id"] == 7
        inbox.close()
    finally:
        publisher.close()
        broker.terminate()
        broker.wait(10)
