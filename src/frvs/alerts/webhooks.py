"""Webhooks managed over the API and CLI, and the worker that delivers their queue.

Adding and removing a webhook is an admin's act, audited in the same transaction; it
takes effect at once on every replica (the next alert is queued for the webhooks
enabled when it commits). Each replica runs one ``WebhookWorker`` over the store's
durable queue (``frvs.storage.webhooks``): a delivery is POSTed as JSON, signed like
the configured webhooks (``X-FRVS-Timestamp``, ``X-FRVS-Signature``), with
``X-FRVS-Delivery`` (its id, the same on every retry) and ``X-FRVS-Attempt``; failed
attempts are retried with exponential backoff up to the webhook's ``attempts``. The
URL passes the source policy when the webhook is added and before every attempt.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from frvs.alerts.notify import UNREACHABLE, checked_opener, sign
from frvs.core.caller import AuditContext, AuditDraft, record_refusal
from frvs.core.errors import ConflictError, InvalidInputError, NotFoundError
from frvs.core.metrics import DELIVERIES
from frvs.core.times import Clock
from frvs.storage.store import Store
from frvs.storage.webhooks import Claimed, StoredWebhook, WebhookRepository
from frvs.video.source_policy import SourcePolicy, SourceRefusedError, describe

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as shown: its URL with any password masked, never its secret."""

    name: str
    url: str
    attempts: int
    enabled: bool
    created_at: datetime
    pending: int = 0
    delivered: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "url": self.url, "attempts": self.attempts,
                "enabled": self.enabled, "created_at": self.created_at.isoformat(),
                "pending": self.pending, "delivered": self.delivered, "failed": self.failed}


class WebhookService:
    """Add, list and remove the store's webhooks (admin; audited)."""

    def __init__(self, store: Store, clock: Clock, policy: SourcePolicy) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy

    def add(self, caller: AuditContext, name: str, url: str, secret: str,
            attempts: int = 4) -> Webhook:
        """Register a webhook; alerts from now on are queued for it on every replica."""
        inputs = {"name": name, "url": describe(url), "attempts": attempts}
        try:
            if not _NAME.match(name):
                raise InvalidInputError(f"webhook name {name!r} must be 1-100 letters, "
                                        "digits, '.', '_' or '-'")
            if len(secret) < 16:
                raise InvalidInputError("the webhook secret must be at least 16 characters")
            if not 1 <= attempts <= 20:
                raise InvalidInputError("attempts must be 1 to 20")
            self._policy.check_webhook(url)
            with self._store.unit(write=True) as uow:
                hooks = uow.repo(WebhookRepository)
                if hooks.get(name) is not None:
                    raise ConflictError(f"webhook {name!r} already exists")
                stored = hooks.add(name, url, secret, attempts, self._clock())
                uow.audit(caller, AuditDraft("webhook.create", inputs, {}))
                return _public(stored)
        except Exception as exc:
            record_refusal(self._store, caller, "webhook.create", inputs, exc)
            raise

    def remove(self, caller: AuditContext, name: str) -> Webhook:
        """Remove a webhook and its queued deliveries (audited)."""
        inputs = {"name": name}
        try:
            with self._store.unit(write=True) as uow:
                hooks = uow.repo(WebhookRepository)
                stored = hooks.get(name)
                if stored is None:
                    raise NotFoundError(f"webhook {name!r} not found")
                hooks.delete(name)
                uow.audit(caller, AuditDraft("webhook.delete", inputs | {
                    "url": describe(stored.url)}, {}))
                return _public(stored)
        except Exception as exc:
            record_refusal(self._store, caller, "webhook.delete", inputs, exc)
            raise

    def list(self) -> list[Webhook]:
        """Every webhook by name, with its deliveries counted by state."""
        with self._store.unit() as uow:
            hooks = uow.repo(WebhookRepository)
            counts = hooks.delivery_counts()
            return [_public(stored, counts) for stored in hooks.all()]


def _public(row: StoredWebhook, counts: dict[tuple[int, str], int] | None = None) -> Webhook:
    counts = counts or {}
    return Webhook(row.name, describe(row.url), row.attempts, row.enabled, row.created_at,
                   counts.get((row.id, "pending"), 0), counts.get((row.id, "delivered"), 0),
                   counts.get((row.id, "failed"), 0))


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a replica works the queue: how often it looks, how long a claim holds (past
    the request timeout), the first retry's delay (doubled each time)."""

    poll_seconds: float = 0.5
    timeout_seconds: float = 5.0
    backoff_seconds: float = 0.5


class WebhookWorker:
    """Delivers the store's queued webhook deliveries from one thread per replica."""

    def __init__(self, store: Store, clock: Clock, policy: SourcePolicy,
                 options: WorkerOptions | None = None) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy
        self.options = options or WorkerOptions()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-queue", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.options.timeout_seconds + 5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.work_once()
            except Exception:  # a loop boundary: the store may be back at the next turn
                logger.exception("webhook queue round failed")
                worked = 0
            if not worked:
                self._stop.wait(self.options.poll_seconds)

    def work_once(self) -> int:
        """Claim due deliveries and attempt each once: how many were attempted."""
        hold = timedelta(seconds=self.options.timeout_seconds * 2 + 5)
        with self._store.unit(write=True) as uow:
            claimed = uow.repo(WebhookRepository).claim(self._clock(), hold)
        for delivery in claimed:
            error = self._attempt(delivery)
            retry_at = None
            if error is not None and delivery.attempt < delivery.max_attempts:
                retry_at = self._clock() + timedelta(
                    seconds=self.options.backoff_seconds * 2 ** (delivery.attempt - 1))
            with self._store.unit(write=True) as uow:
                uow.repo(WebhookRepository).finish(delivery.id, self._clock(), error,
                                                   retry_at)
            # The same counts as the in-process sender's, for /metrics.
            DELIVERIES.labels("webhook", "delivered" if error is None else
                              "retried" if retry_at is not None else "failed").inc()
            if error is not None and retry_at is None:
                logger.warning("webhook %s: giving up on delivery %d: %s", delivery.webhook,
                               delivery.id, error)
        return len(claimed)

    def _attempt(self, delivery: Claimed) -> str | None:
        """POST one delivery: None when the receiver answered 2xx, else the error."""
        try:
            # Again: what a name resolves to changes. The request then connects to the
            # address checked here, not to a fresh resolution (DNS rebinding).
            opener = checked_opener(self._policy, delivery.url)
        except SourceRefusedError as exc:
            logger.warning("webhook %s refused: %s", delivery.webhook, exc.message)
            return "refused by the source policy"
        body = json.dumps(delivery.body, ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        request = urllib.request.Request(delivery.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-FRVS-Timestamp": stamp,
            "X-FRVS-Signature": sign(delivery.secret.encode(), stamp, body),
            "X-FRVS-Delivery": str(delivery.id), "X-FRVS-Attempt": str(delivery.attempt)})
        try:
            with opener.open(request, timeout=self.options.timeout_seconds) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            logger.warning("webhook %s: %s", describe(delivery.url), exc)
            return UNREACHABLE
