"""Delivery of the outbox to the centre: in order, each report until the centre has
answered for it, with exponential backoff and full jitter while the link is down.

A report is sent as a multipart ``POST /v1/sightings`` (its template, and its crop when
the centre's policy for the camera asks for crops); reports without a crop to ship go up
to 50 at a time as ``POST /v1/sightings/batch`` (one transaction at the centre). The
centre keys each by (device key, camera, track, start time) and stores it once, so a
report whose answer was lost (the link dropped, the node was killed after sending) is
simply sent again. Answers (per report, in a batch too):

- 201 or 200 (``replayed``): delivered; the node keeps the centre's ids;
- 401, 403 (a key or binding an admin has yet to fix), 408, 425, 429, 5xx, a
  connection error or a timeout: the link or the centre is not ready: back off
  (``Retry-After`` when the centre gives one) and try again;
- any other 4xx: refused for good (times the centre cannot believe, a model space it
  cannot compare, an unknown camera): kept with the reason, never re-sent.

A heartbeat goes first and then every ``heartbeat_s``: the node's backlog, drop counts
and clock; the answer carries the crop policy per camera and the centre's clock.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from frvs.core.errors import InvalidInputError
from frvs.core.hosts import is_loopback
from frvs.edge.outbox import Outbox, Queued, Report

logger = logging.getLogger(__name__)

# 401/403 too: a key being rotated or a camera not yet bound is for an admin to fix,
# and refusing for good would lose the backlog.
RETRYABLE = frozenset({401, 403, 408, 425, 429})
BATCH = 50
"""Reports sent per round: without crops, in one request (the centre takes up to 100)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: try ``n`` waits a random time up to
    ``min(cap_s, base_s * 2**n)`` (so nodes coming back together do not knock at once)."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s <= 3600:
            raise InvalidInputError("backoff needs 0 < base <= cap <= 3600 s, got "
                                    f"{self.base_s}, {self.cap_s}")

    def delay(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** min(failures, 30)))


@dataclass(frozen=True, slots=True)
class Link:
    """Where the centre is and how to trust it."""

    centre: str
    token: str
    ca_file: Path | None = None
    insecure: bool = False
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.centre)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(f"--centre must be an http(s):// URL, got {self.centre!r}")
        if parts.scheme == "http" and not self.insecure and not is_loopback(parts.hostname):
            raise InvalidInputError(
                f"refusing plain http to {parts.hostname}: reports carry face templates; "
                "use https:// (the centre's 'frvs serve --tls-cert/--tls-key'), or pass "
                "--insecure on a network you trust")
        if not self.token:
            raise InvalidInputError("no device key: set FRVS_DEVICE_KEY to the token of "
                                    "'frvs key create NAME --role device --camera CAM'")

    def verify(self) -> ssl.SSLContext | bool:
        """System CAs, or only ``ca_file``; ``--insecure`` does not turn verification
        off for https (it only allows plain http)."""
        if self.ca_file is None:
            return True
        if not self.ca_file.is_file():
            raise InvalidInputError(f"--ca-file {self.ca_file} is not a file")
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.centre.rstrip("/"), verify=self.verify(),
                            timeout=httpx.Timeout(self.timeout_s, connect=3.0),
                            headers={"Authorization": f"Bearer {self.token}"})




@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the heartbeat says of the node besides its outbox."""

    name: str
    version: str
    pack: str | None
    cameras: tuple[str, ...]
    location: str | None = None


class Sender:
    """A node's delivery loop, run in the caller's thread (``run``) until stopped."""

    def __init__(self, outbox: Outbox, link: Link, node: NodeInfo, *,
                 backoff: Backoff | None = None, heartbeat_s: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 batching: bool = True) -> None:
        self._outbox = outbox
        self._link = link
        self._node = node
        self._backoff = backoff or Backoff()
        self._heartbeat_s = heartbeat_s
        self._clock = clock
        self._rng = random.Random()
        self._stop = threading.Event()
        self._failures = 0
        self._last_beat = 0.0
        self._policy: dict[str, bool] = {}
        stored = outbox.meta("crop_policy")
        if isinstance(stored, dict):
            self._policy = {str(k): bool(v) for k, v in stored.items()}
        self._client: httpx.Client | None = None
        self._batching = batching
        # Reports per batch request; halved when the centre refuses a batch as a whole
        # (e.g. larger than its devices.submit_burst) so the next ones fit.
        self._batch = BATCH

    def stop(self) -> None:
        self._stop.set()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Deliver until stopped, or until ``until()`` holds with nothing left to send."""
        self._client = self._link.client()
        try:
            while not self._stop.is_set():
                done = until is not None and until()
                wait = self.step()
                if done and self._outbox.pending() == 0:
                    self._beat(force=True)
                    return
                if wait > 0:
                    self._stop.wait(wait)
        finally:
            self._client.close()

    def step(self) -> float:
        """One round: a heartbeat when due, then the due reports. Returns how long to
        wait before the next round (0: more is due now)."""
        if not self._beat():
            # Counted as a retry: while the centre is away, the heartbeat is what tries.
            self._outbox.bump("retries")
            return self._fail("centre unreachable")
        due = self._outbox.due(self._clock(), limit=BATCH)
        if not due:
            return 0.2
        # Reports without a crop to ship go together (POST /v1/sightings/batch: one
        # request, one transaction at the centre); a report with its crop goes alone.
        plain = [q for q in due if not self._ships_crop(q)][:self._batch]
        if self._batching and len(plain) > 1:
            wait = self._send_batch(plain)
            if wait > 0:
                return wait
            # Plain reports beyond this batch wait for the next round's batch.
            due = [q for q in due if self._ships_crop(q)]
        for queued in due:
            if self._stop.is_set():
                return 0.0
            wait = self._send(queued)
            if wait > 0:
                return wait
        return 0.0

    def _ships_crop(self, queued: Queued) -> bool:
        return queued.report.crop is not None and self._policy.get(queued.report.camera, True)

    def _send_batch(self, batch: list[Queued]) -> float:
        assert self._client is not None
        body = {"reports": [_fields(q.report) | {"track_id": q.report.track_id,
                                                  "frames": q.report.frames,
                                                  "quality": q.report.quality}
                            for q in batch]}
        for q in batch:
            if q.report.crop is not None:  # the centre does not want this camera's crops
                self._outbox.strip_crop(q.id)
        try:
            answer = self._client.post("/v1/sightings/batch", json=body)
        except (httpx.HTTPError, OSError) as exc:
            return self._retry_all(batch, f"{type(exc).__name__}: {exc}"[:200])
        code = answer.status_code
        if code in (404, 405):  # a centre without batches: one by one from now on
            self._batching = False
            return 0.0
        if code >= 500 or code in RETRYABLE:
            return self._retry_all(batch, f"HTTP {code}", _retry_after(answer))
        if code != 200:  # the batch as a whole was refused: each is judged alone
            self._batch = max(2, len(batch) // 2)
            for queued in batch:
                wait = self._send(queued)
                if wait > 0:
                    return wait
            return 0.0
        items = answer.json()
        for queued, item in zip(batch, items, strict=True):
            status = int(item["status"])
            if status in (200, 201):
                self._delivered(queued, item.get("result") or {})
            elif status >= 500 or status in RETRYABLE:
                return self._retry(queued, f"HTTP {status}: {item.get('detail')}")
            else:
                self._refused(queued, f"HTTP {status}: {item.get('detail')}")
        self._ok()
        return 0.0

    def _retry_all(self, batch: list[Queued], reason: str, after: float | None = None
                   ) -> float:
        delay = self._fail(reason, after)
        for queued in batch:
            self._outbox.retry_later(queued.id, self._clock() + delay, reason)
        return delay

    def _fail(self, reason: str, retry_after: float | None = None) -> float:
        self._failures += 1
        delay = self._backoff.delay(self._failures, self._rng)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self._outbox.set_meta("last_error", reason)
        logger.info("centre not ready (%s); next try in %.1f s", reason, delay)
        return max(delay, 0.05)

    def _ok(self) -> None:
        self._failures = 0
        self._outbox.set_meta("last_contact", self._clock())

    def _beat(self, force: bool = False) -> bool:
        now = self._clock()
        if not force and self._last_beat and now - self._last_beat < self._heartbeat_s:
            return True
        status = self._outbox.status()
        counters = status.counters
        body = {"name": self._node.name, "version": self._node.version,
                "pack": self._node.pack, "cameras": list(self._node.cameras),
                "location": self._node.location, "backlog": status.backlog,
                "backlog_bytes": status.backlog_bytes,
                "oldest_pending": status.oldest_pending.isoformat()
                if status.oldest_pending else None,
                "dropped_crops": counters["dropped_crops"],
                "dropped_reports": counters["dropped_reports"],
                "sent_at": datetime.fromtimestamp(now, UTC).isoformat()}
        assert self._client is not None
        try:
            answer = self._client.post("/v1/edge/heartbeat", json=body)
        except (httpx.HTTPError, OSError) as exc:
            self._outbox.set_meta("last_error", f"heartbeat: {type(exc).__name__}")
            return False
        if answer.status_code >= 500 or answer.status_code in RETRYABLE:
            self._outbox.set_meta("last_error", f"heartbeat: HTTP {answer.status_code}")
            return False
        self._last_beat = now
        if answer.status_code != 200:
            # A heartbeat the centre refuses (a key not bound to a camera here) must not
            # hold the reports back: each is judged on its own.
            logger.warning("centre refused the heartbeat: %s", _problem(answer))
            self._outbox.set_meta("last_error", f"heartbeat refused: {_problem(answer)}")
            return True
        self._ok()
        data = answer.json()
        cameras = data.get("cameras", {}) if isinstance(data, dict) else {}
        self._policy = {str(k): bool(v.get("crops", True)) for k, v in cameras.items()
                        if isinstance(v, dict)}
        self._outbox.set_meta("crop_policy", self._policy)
        self._outbox.set_meta("clock_offset_s", data.get("clock_offset_s"))
        if not data.get("clock_ok", True):
            logger.warning("this node's clock is %.1f s off the centre's: reports dated "
                           "beyond the allowed skew are refused; check NTP",
                           float(data.get("clock_offset_s", 0.0)))
        return True

    def _send(self, queued: Queued) -> float:
        report = queued.report
        data = _fields(report) | {"track_id": str(report.track_id),
                                  "frames": str(report.frames),
                                  "quality": json.dumps(report.quality)}
        crop = report.crop if self._policy.get(report.camera, True) else None
        if report.crop is not None and crop is None:
            self._outbox.strip_crop(queued.id)
        files = {"image": ("best-shot.jpg", crop, "image/jpeg")} if crop else None
        assert self._client is not None
        try:
            answer = self._client.post("/v1/sightings", data=data, files=files)
        except (httpx.HTTPError, OSError) as exc:
            return self._retry(queued, f"{type(exc).__name__}: {exc}"[:200])
        code = answer.status_code
        if code in (200, 201):
            self._delivered(queued, answer.json())
            self._ok()
            return 0.0
        if code >= 500 or code in RETRYABLE:
            after = _retry_after(answer)
            return self._retry(queued, f"HTTP {code}", after)
        self._refused(queued, f"HTTP {code}: {_problem(answer)}")
        self._ok()
        return 0.0

    def _delivered(self, queued: Queued, body: dict[str, object]) -> None:
        sighting, alert = body.get("sighting"), body.get("alert")
        self._outbox.delivered(queued.id, sighting if isinstance(sighting, int) else None,
                               alert if isinstance(alert, int) else None,
                               bool(body.get("replayed")))

    def _refused(self, queued: Queued, reason: str) -> None:
        logger.warning("centre refused report %s/%d: %s", queued.report.camera,
                       queued.report.track_id, reason)
        self._outbox.refused(queued.id, reason)

    def _retry(self, queued: Queued, reason: str, after: float | None = None) -> float:
        delay = self._fail(reason, after)
        self._outbox.retry_later(queued.id, self._clock() + delay, reason)
        return delay


def _fields(report: Report) -> dict[str, str]:
    """A report's fields as both intake routes take them."""
    return {"camera": report.camera, "first_seen": report.first_seen.isoformat(),
            "last_seen": report.last_seen.isoformat(), "space": report.space,
            "template": base64.b64encode(report.vector).decode("ascii")}


def _retry_after(answer: httpx.Response) -> float | None:
    try:
        return float(answer.headers.get("retry-after", ""))
    except ValueError:
        return None


def _problem(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]
