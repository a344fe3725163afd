"""GET /metrics: the service's figures in the Prometheus text format.

Per camera (read from each running camera's status at scrape time, so they are the
figures of ``GET /v1/cameras/status``): input and processed frame rates, frames read,
processed, skipped and dropped, lag, reconnects and health. Beside them the process's
own metrics (``frvs.core.metrics``): embedder batch sizes and latency, search latency
per gallery, alerts raised and reviewed, webhook and MQTT deliveries, audit appends.

The page names cameras and galleries, not people, but it still says what the service
watches: it answers without a key only to loopback clients; a scraper elsewhere sends
``Authorization: Bearer <api.metrics_key>``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from frvs.api.deps import AppDep
from frvs.core.errors import AuthenticationError, PermissionDeniedError
from frvs.core.hosts import is_loopback
from frvs.core.metrics import REGISTRY
from frvs.video.models import CameraStatus, Health

router = APIRouter(tags=["service"])


class CameraCollector(Collector):
    """Each camera's status as Prometheus metric families, labelled ``camera``."""

    def __init__(self, statuses: Iterable[CameraStatus]) -> None:
        self._statuses = list(statuses)

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=["camera"])

        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=["camera"])

        input_fps = gauge("frvs_camera_input_fps", "Frames per second read from the source.")
        processed_fps = gauge("frvs_camera_processed_fps", "Frames per second analysed.")
        lag = gauge("frvs_camera_lag_seconds", "How far analysis runs behind capture.")
        read = counter("frvs_camera_frames_read", "Frames read from the source.")
        processed = counter("frvs_camera_frames_processed", "Frames analysed.")
        skipped = counter("frvs_camera_frames_skipped",
                          "Frames read but not due under the camera's sampling rate.")
        dropped = counter("frvs_camera_frames_dropped",
                          "Due frames lost because analysis fell behind.")
        reconnects = counter("frvs_camera_reconnects", "Times the source was reopened.")
        health = GaugeMetricFamily("frvs_camera_health", "1 for the camera's current health.",
                                   labels=["camera", "health"])
        for s in self._statuses:
            labels = [s.camera]
            input_fps.add_metric(labels, s.input_fps)
            processed_fps.add_metric(labels, s.processed_fps)
            lag.add_metric(labels, s.lag_seconds)
            read.add_metric(labels, s.frames_read)
            processed.add_metric(labels, s.frames_processed)
            skipped.add_metric(labels, s.skipped)
            dropped.add_metric(labels, s.dropped)
            reconnects.add_metric(labels, s.reconnects)
            for state in Health:
                health.add_metric([s.camera, state.value], 1.0 if s.health is state else 0.0)
        yield from (input_fps, processed_fps, lag, read, processed, skipped, dropped,
                    reconnects, health)


def _loopback(request: Request) -> bool:
    return is_loopback(request.client.host if request.client else "")


def _check_access(request: Request, key: str | None) -> None:
    if _loopback(request):
        return
    given = request.headers.get("authorization", "")
    if not given:
        raise AuthenticationError("/metrics answers loopback clients, or a scraper that "
                                  "sends 'Authorization: Bearer <api.metrics_key>'")
    if key is None or not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
        raise PermissionDeniedError("not the metrics key (api.metrics_key)")


# Not in the OpenAPI document: a scraper's page, not an API (README, "Metrics").
@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, app: AppDep) -> Response:
    """Prometheus metrics: per-camera figures and the service's own counters and
    latency histograms. Loopback clients, or ``Authorization: Bearer`` the metrics key."""
    _check_access(request, app.settings.api.metrics_key)
    cameras = CollectorRegistry(auto_describe=False)
    cameras.register(CameraCollector(app.video.supervisor.status()))
    body = generate_latest(REGISTRY) + generate_latest(cameras)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
