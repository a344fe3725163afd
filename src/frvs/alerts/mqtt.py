"""Alerts, reviews, sightings and camera status published to an MQTT broker.

The topic layout follows what Frigate users know, under one prefix (default ``frvs``):

- ``<prefix>/available``: ``online`` while FRVS is connected, ``offline`` when it stops
  or dies (the broker publishes the last will); retained.
- ``<prefix>/alerts``: each alert raised, as JSON (``{"event": "alert.raised",
  "alert": {...}}``, the webhook body).
- ``<prefix>/reviews``: each alert decided by its reviewers (``alert.reviewed``).
- ``<prefix>/sightings``: each ended track (opt-in, ``sightings: true``), without its
  face crop unless ``sighting_crops: true`` (then base64 JPEG in ``crop_jpeg``).
- ``<prefix>/cameras/<camera>/status``: each running camera's status (the figures of
  ``GET /v1/cameras/status``), every ``status_interval_s``; retained.

Every message is sent with QoS 1 (at least once). Publishing never blocks a camera:
paho-mqtt's client queues messages while it (re)connects, with a bounded queue whose
overflow is counted as dropped; its network thread reconnects with exponential backoff
(1 s doubling to ``reconnect_max_s``).

The broker is named only in the configuration file (never over the API), by whoever runs
the service, so it is not held to the source policy for cameras and webhooks: a broker
on the same machine or the local network is the usual case.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from frvs.alerts.notify import AlertNotice
from frvs.core.metrics import DELIVERIES, MQTT_CONNECTED
from frvs.video.models import CameraStatus

logger = logging.getLogger(__name__)

QOS = 1
ONLINE, OFFLINE = "online", "offline"


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """Where and what to publish (see the module docstring for the topics)."""

    host: str
    port: int = 1883
    prefix: str = "frvs"
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    tls: bool = False
    keepalive: int = 30
    sightings: bool = False
    sighting_crops: bool = False
    status_interval_s: float = 10.0
    reconnect_max_s: int = 60
    queue_limit: int = 1000

    def topic(self, *parts: str) -> str:
        return "/".join((self.prefix.rstrip("/"), *parts))


CropReader = Callable[[str], bytes | None]
"""The bytes of a stored crop by its media path, or None when it is gone."""
StatusSource = Callable[[], Iterable[CameraStatus]]
"""The running cameras' status, as ``Supervisor.status``."""


class MqttPublisher:
    """One connection to the broker for the whole process, on paho-mqtt's own thread.

    Call it with an ``AlertNotice`` (an ``AlertService`` notifier); ``on_event`` takes
    the router's ``VideoEvent`` documents for sightings; ``close`` says ``offline``.
    """

    def __init__(self, target: MqttTarget, *, status: StatusSource | None = None,
                 read_crop: CropReader | None = None) -> None:
        self.target = target
        self._status = status
        self._read_crop = read_crop
        self._stop = threading.Event()
        self.connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=target.client_id or "",
                             protocol=mqtt.MQTTv311)
        if target.username:
            client.username_pw_set(target.username, target.password)
        if target.tls:
            client.tls_set()
        client.will_set(target.topic("available"), OFFLINE, qos=QOS, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=target.reconnect_max_s)
        client.max_queued_messages_set(target.queue_limit)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._status_thread: threading.Thread | None = None

    def start(self) -> None:
        """Connect in the background (a broker that is down now is retried)."""
        self._client.connect_async(self.target.host, self.target.port, self.target.keepalive)
        self._client.loop_start()
        if self._status is not None and self.target.status_interval_s > 0:
            self._status_thread = threading.Thread(target=self._status_loop,
                                                   name="mqtt-status", daemon=True)
            self._status_thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Publish the last camera status and ``offline``, wait for what is queued (up to
        ``timeout``), then disconnect."""
        self._stop.set()
        if self._status_thread is not None:
            self._status_thread.join(timeout)
        if self.connected.is_set():
            self.publish_status()
            info = self._client.publish(self.target.topic("available"), OFFLINE, qos=QOS,
                                        retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # not queued: the connection went meanwhile
                logger.warning("mqtt: could not say offline; the broker's last will will")
        self._client.disconnect()
        self._client.loop_stop()
        MQTT_CONNECTED.set(0)

    # -- what is published ----------------------------------------------------------

    def __call__(self, notice: AlertNotice) -> None:
        topic = "alerts" if notice.kind == "raised" else "reviews"
        self._publish(self.target.topic(topic), notice.document())

    def on_event(self, document: Mapping[str, Any]) -> None:
        """A router event: sightings are published when the target opts in."""
        if document.get("event") != "sighting" or not self.target.sightings:
            return
        body = {k: v for k, v in document.items() if k != "crop"}
        crop = document.get("crop")
        if self.target.sighting_crops and isinstance(crop, str) and self._read_crop:
            data = self._read_crop(crop)
            if data is not None:
                body["crop_jpeg"] = base64.b64encode(data).decode()
        self._publish(self.target.topic("sightings"), body)

    def publish_status(self) -> None:
        """Each running camera's status, retained on its own topic."""
        if self._status is None:
            return
        for status in self._status():
            self._publish(self.target.topic("cameras", status.camera, "status"),
                          status.as_dict(), retain=True)

    def _publish(self, topic: str, body: Mapping[str, Any], retain: bool = False) -> None:
        payload = json.dumps(body, ensure_ascii=False, default=str)
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            DELIVERIES.labels("mqtt", "dropped").inc()
            logger.warning("mqtt: queue full, %s dropped", topic)
        elif info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: queued, sent on reconnect (QoS 1); anything else is lost.
            DELIVERIES.labels("mqtt", "failed").inc()
            logger.warning("mqtt: publishing to %s failed: %s", topic,
                           mqtt.error_string(info.rc))

    def _status_loop(self) -> None:
        while not self._stop.wait(self.target.status_interval_s):
            if self.connected.is_set():
                try:
                    self.publish_status()
                except Exception:  # a loop boundary: the next round tries again
                    logger.exception("mqtt: camera status could not be published")

    # -- paho-mqtt callbacks (its network thread) -------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object,
                    reason: Any, _properties: object) -> None:
        if reason.is_failure:
            logger.warning("mqtt: broker %s:%d refused the connection: %s",
                           self.target.host, self.target.port, reason)
            return
        logger.info("mqtt: connected to %s:%d", self.target.host, self.target.port)
        client.publish(self.target.topic("available"), ONLINE, qos=QOS, retain=True)
        self.connected.set()
        MQTT_CONNECTED.set(1)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object,
                       reason: Any, _properties: object) -> None:
        self.connected.clear()
        MQTT_CONNECTED.set(0)
        if not self._stop.is_set():
            logger.warning("mqtt: disconnected (%s); reconnecting", reason)

    def _on_publish(self, _client: mqtt.Client, _userdata: object, _mid: int,
                    _reason: object, _properties: object) -> None:
        DELIVERIES.labels("mqtt", "delivered").inc()  # the broker's PUBACK (QoS 1)
