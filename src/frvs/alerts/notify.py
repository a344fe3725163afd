"""Alert delivery: an in-process pub/sub (the service's live events) and webhooks.

Neither may slow down a camera: publishing puts into bounded queues and never blocks;
a slow subscriber loses its oldest notices (counted), a webhook sender works from its
own bounded queue on its own thread, retrying with backoff.

A webhook URL passes the source policy (``frvs.video.source_policy``: http or https, no
loopback, link-local or private host unless ``video.allow_private_sources``) when its
sender is made and again before every delivery; redirects are not followed, and a
delivery that fails to connect records one generic error (details in the server log).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from frvs.alerts.models import Alert
from frvs.core.metrics import DELIVERIES
from frvs.video.source_policy import SourcePolicy, SourceRefusedError, describe

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """Something happened to an alert: ``raised`` or ``reviewed``."""

    kind: str
    alert: Alert

    def document(self) -> dict[str, object]:
        return {"event": f"alert.{self.kind}", "alert": self.alert.as_dict()}


class Subscription:
    """One subscriber's bounded inbox."""

    def __init__(self, bus: AlertBus, capacity: int) -> None:
        self._bus = bus
        self._items: deque[AlertNotice] = deque(maxlen=capacity)
        self._cond = threading.Condition()
        self.lost = 0

    def offer(self, notice: AlertNotice) -> None:
        with self._cond:
            if len(self._items) == self._items.maxlen:
                self.lost += 1
            self._items.append(notice)
            self._cond.notify_all()

    def get(self, timeout: float) -> AlertNotice | None:
        """The next notice, or None after ``timeout`` seconds."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        self._bus.unsubscribe(self)


class AlertBus:
    """In-process publish/subscribe of alert notices."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, capacity: int = 256) -> Subscription:
        sub = Subscription(self, capacity)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, notice: AlertNotice) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.offer(notice)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``; receivers recompute it and compare, and
    refuse old timestamps (replay)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where alerts are POSTed as JSON, signed with ``secret``.

    Headers: ``X-FRVS-Timestamp`` (Unix seconds) and ``X-FRVS-Signature``
    (``sha256=<hex HMAC of "timestamp.body">``).
    """

    url: str
    secret: str
    attempts: int = 4
    backoff: float = 0.5
    timeout: float = 5.0


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0
    retries: int = 0
    dropped: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_STOP = object()
UNREACHABLE = "cannot reach the webhook"
"""The one recorded error for a delivery that did not get an HTTP answer (refused,
timed out, TLS failed): details go to the server log."""


def _opener() -> urllib.request.OpenerDirector:
    """urllib without its redirect handler: a redirect is an answer (HTTP 3xx, a failed
    delivery), never followed to a host the policy has not checked."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def pinned_opener(address: str) -> urllib.request.OpenerDirector:
    """``_opener`` that connects to ``address`` (the one the source policy checked),
    whatever the URL's host resolves to by then; HTTPS still verifies the certificate
    of the URL's host name. Without a proxy only: a proxy resolves names itself."""

    def pin(conn: http.client.HTTPConnection) -> http.client.HTTPConnection:
        def connect(where: tuple[str, int], *args: Any) -> socket.socket:
            return socket.create_connection((address, where[1]), *args)

        conn._create_connection = connect  # type: ignore[attr-defined]
        return conn

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(lambda host, **kw: pin(http.client.HTTPConnection(host, **kw)),
                                req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            context = getattr(self, "_context", None)
            return self.do_open(lambda host, **kw: pin(http.client.HTTPSConnection(host, **kw)),
                                req, context=context)

    opener = urllib.request.OpenerDirector()
    for handler in (Http(), Https(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def checked_opener(policy: SourcePolicy, url: str) -> urllib.request.OpenerDirector:
    """Check ``url`` against ``policy`` now (what a name resolves to changes) and the
    opener that connects to the address just checked (``SourceRefusedError`` when
    refused). Through a configured proxy, the proxy resolves the name."""
    addresses = policy.webhook_addresses(url)
    if url.split(":", 1)[0].lower() in urllib.request.getproxies():
        return _opener()
    return pinned_opener(addresses[0])


class WebhookNotifier:
    """Delivers notices to one webhook target from its own thread.

    ``policy`` is the deployment's source policy (the default one refuses private
    hosts); a target it refuses raises ``SourceRefusedError`` here.
    """

    def __init__(self, target: WebhookTarget, policy: SourcePolicy | None = None,
                 capacity: int = 1000) -> None:
        self.policy = policy or SourcePolicy()
        self.policy.check_webhook(target.url)
        self.target = target
        self.stats = WebhookStats()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def __call__(self, notice: AlertNotice) -> None:
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            with self.stats.lock:
                self.stats.dropped += 1
            DELIVERIES.labels("webhook", "dropped").inc()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued notice was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if isinstance(item, AlertNotice):
                    self._deliver(item)
            except Exception:  # a loop boundary: one bad notice must not stop delivery
                logger.exception("webhook delivery failed")
            finally:
                self._queue.task_done()

    def _deliver(self, notice: AlertNotice) -> None:
        t = self.target
        body = json.dumps(notice.document(), ensure_ascii=False).encode()
        for attempt in range(1, t.attempts + 1):
            try:
                opener = checked_opener(self.policy, t.url)  # not a second resolution
            except SourceRefusedError as exc:
                logger.warning("webhook refused: %s", exc.message)
                with self.stats.lock:
                    self.stats.last_error = "refused by the source policy"
                break
            stamp = str(int(time.time()))
            request = urllib.request.Request(t.url, data=body, method="POST", headers={
                "Content-Type": "application/json",
                "X-FRVS-Timestamp": stamp,
                "X-FRVS-Signature": sign(t.secret.encode(), stamp, body),
                "X-FRVS-Attempt": str(attempt),
            })
            try:
                with opener.open(request, timeout=t.timeout) as response:
                    if 200 <= response.status < 300:
                        with self.stats.lock:
                            self.stats.delivered += 1
                        DELIVERIES.labels("webhook", "delivered").inc()
                        return
                    error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                logger.warning("webhook %s: %s", describe(t.url), exc)
                error = UNREACHABLE
            with self.stats.lock:
                self.stats.last_error = error
                if attempt < t.attempts:
                    self.stats.retries += 1
            if attempt < t.attempts:
                DELIVERIES.labels("webhook", "retried").inc()
                time.sleep(t.backoff * 2 ** (attempt - 1))
        with self.stats.lock:
            self.stats.failed += 1
        DELIVERIES.labels("webhook", "failed").inc()
        logger.warning("webhook %s: giving up on alert %d: %s", describe(t.url),
                       notice.alert.id, self.stats.last_error)
