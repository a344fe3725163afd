"""The process's Prometheus metrics: what the service's parts count and time.

Each part records into these as it works (the embedder its batches, a search its
latency, the audit trail each append, alert sinks each delivery); ``GET /metrics``
(``frvs.api.metrics``) exposes them beside each running camera's figures, which are read
from the cameras' own status when scraped (so they match ``GET /v1/cameras/status``).

One registry per process, not prometheus_client's global one: nothing registered by a
library leaks into FRVS's page, and FRVS registers nothing there.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

EMBED_BATCH_SIZE = Histogram(
    "frvs_embed_batch_size", "Faces embedded per call of a pack's shared embedder "
    "(1 means no batching happened).", ["pack"],
    buckets=(1, 2, 4, 8, 16, 32, 64), registry=REGISTRY)
EMBED_SECONDS = Histogram(
    "frvs_embed_batch_seconds", "Time of one call of a pack's shared embedder.", ["pack"],
    buckets=_FAST, registry=REGISTRY)
SEARCH_SECONDS = Histogram(
    "frvs_search_seconds", "Time of one 1:N search of a gallery's index (one probe "
    "template).", ["gallery"], buckets=_FAST, registry=REGISTRY)
ALERTS_RAISED = Counter(
    "frvs_alerts_raised", "Watch-list alerts raised.", ["gallery", "camera"],
    registry=REGISTRY)
ALERTS_REVIEWED = Counter(
    "frvs_alerts_reviewed", "Alert reviews recorded, by verdict.", ["gallery", "verdict"],
    registry=REGISTRY)
DELIVERIES = Counter(
    "frvs_notifications", "Deliveries of alert notices and events to sinks, by sink "
    "(webhook, mqtt) and result (delivered, failed, retried, dropped).",
    ["sink", "result"], registry=REGISTRY)
AUDIT_APPEND_SECONDS = Histogram(
    "frvs_audit_append_seconds", "Time to append one entry to the audit trail (hash "
    "chained, in the operation's transaction).", buckets=_FAST, registry=REGISTRY)
MQTT_CONNECTED = Gauge(
    "frvs_mqtt_connected", "1 while the MQTT publisher is connected to its broker.",
    registry=REGISTRY)
