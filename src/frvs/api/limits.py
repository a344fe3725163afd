"""Hardening that sits in front of every route: request body size, request timeout,
security headers, and per-key token buckets for searches, detection, verification,
enrolment and device submissions."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frvs.api.auth import Principal, authenticate
from frvs.core.caller import record_refusal
from frvs.core.errors import RateLimitedError
from frvs.storage.rates import SharedBuckets

logger = logging.getLogger(__name__)

STREAM_PREFIXES = ("/v1/events",)
"""Long-lived Server-Sent Event streams: exempt from the request timeout."""

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class _BodyTooLargeError(Exception):
    pass


def _problem_message(status: int, code: str, detail: str) -> tuple[Message, Message]:
    body = json.dumps({"type": f"urn:frvs:error:{code}", "title": code.replace("_", " "),
                       "status": status, "detail": detail, "code": code}).encode()
    start: Message = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()), *_SECURITY_HEADERS]}
    return start, {"type": "http.response.body", "body": body}


def _secured(start: Message) -> Message:
    """The response start with the security headers, and no-store unless the route
    chose its own caching (an event stream says no-cache)."""
    headers = list(start.get("headers", []))
    if not any(name.lower() == b"cache-control" for name, _ in headers):
        headers.append((b"cache-control", b"no-store"))
    return {**start, "headers": [*headers, *_SECURITY_HEADERS]}


@dataclass
class _Exchange:
    """One request as the middleware sees it: the body bytes received so far and
    whether the response has started (or was replaced by a 413)."""

    receive: Receive
    send: Send
    max_body: int
    received: int = 0
    too_large: bool = False
    started: bool = False
    replaced: bool = False

    async def counted_receive(self) -> Message:
        message = await self.receive()
        self.received += len(message.get("body", b""))
        if self.received > self.max_body:
            self.too_large = True
            raise _BodyTooLargeError
        return message

    async def secured_send(self, message: Message) -> None:
        if self.too_large and not self.started:
            # The route answered after the body overflowed (the form parser turns any
            # error while reading the body into a 400): the answer is 413 instead.
            await self.reply_too_large()
            self.replaced = True
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            self.started = True
            message = _secured(message)
        await self.send(message)

    async def reply(self, status: int, code: str, detail: str) -> None:
        """Answer with a problem, unless a response has already started."""
        if self.started:
            return
        self.started = True
        start, body = _problem_message(status, code, detail)
        await self.send(start)
        await self.send(body)

    async def reply_too_large(self) -> None:
        await self.reply(413, "request_too_large",
                         f"the request body is larger than {self.max_body} bytes")


@dataclass
class HardeningMiddleware:
    """Pure ASGI (so streaming responses pass untouched): 413 for bodies over
    ``max_body`` before or while they are read (declared or chunked, whatever the route
    makes of the overflow), 503 for requests running longer than ``timeout_s`` (work
    already in a thread finishes there; the client is answered), and headers that stop
    browsers sniffing or caching biometric responses."""

    app: ASGIApp
    max_body: int
    timeout_s: float

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(receive, send, self.max_body)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await exchange.reply_too_large()
            return
        streaming = str(scope.get("path", "")).startswith(STREAM_PREFIXES)
        call = self.app(scope, exchange.counted_receive, exchange.secured_send)
        try:
            if streaming:
                await call
            else:
                await asyncio.wait_for(call, self.timeout_s)
        except _BodyTooLargeError:
            await exchange.reply_too_large()
        except TimeoutError:
            logger.warning("request %s %s timed out after %.0f s", scope.get("method"),
                           scope.get("path"), self.timeout_s)
            await exchange.reply(503, "request_timeout",
                                 f"the request took longer than {self.timeout_s:.0f} s")


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; one token per request."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float, cost: float = 1.0) -> float:
        """0 when ``cost`` tokens were taken, else the seconds until they are available."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Rate:
    """A sustained rate per key and the burst allowed on top of it."""

    per_minute: float
    burst: int


class RateLimits:
    """One token bucket per key and kind of request (search, detect, verify, enrol,
    submit). With ``shared`` (the store, when it is PostgreSQL: several replicas), the
    buckets live in the store and the limit holds across replicas; without it they
    live in this process (SQLite: one machine)."""

    def __init__(self, rates: Mapping[str, Rate], shared: SharedBuckets | None = None) -> None:
        self._rates = dict(rates)
        self._shared = shared
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether the buckets live in the store (checking may wait on it)."""
        return self._shared is not None

    def check(self, kind: str, key_id: str, cost: int = 1) -> None:
        """Take ``cost`` tokens of ``kind`` for ``key_id`` (a batch of reports costs one
        per report) or raise ``RateLimitedError`` (may wait on the store: call it from a
        worker thread)."""
        rate = self._rates[kind]
        if self._shared is not None:
            wait = self._shared.take(kind, key_id, rate.per_minute / 60.0, float(rate.burst),
                                     float(cost))
        else:
            with self._lock:
                bucket = self._buckets.setdefault(
                    (kind, key_id), TokenBucket(rate.per_minute / 60.0, float(rate.burst)))
                wait = bucket.take(time.monotonic(), float(cost))
        if wait > 0:
            raise RateLimitedError(f"{kind} rate limit reached for key {key_id}; retry in "
                                   f"{wait:.1f} s", retry_after=wait)


def rate_limits(request: Request) -> RateLimits:
    limits = request.app.state.rate_limits
    assert isinstance(limits, RateLimits)
    return limits


def _search_action(path: str) -> str:
    """The audit action of the search a rate-limited request would have been."""
    for action in ("identify", "crossmatch"):
        if path.rstrip("/").endswith(action):
            return action
    return "sightings.search"


def rate_limit(kind: str, action: str | Callable[[str], str]) -> Any:
    """A route dependency: take a token of ``kind`` from the caller's bucket, or 429
    with Retry-After. The refusal is audited as a refusal of ``action`` (a name, or one
    made from the request's path): a refused request is still one someone tried."""

    async def dependency(request: Request,
                         principal: Annotated[Principal, Depends(authenticate)]) -> None:
        limits = rate_limits(request)
        try:
            if limits.shared:
                await run_in_threadpool(limits.check, kind, principal.key.key_id)
            else:
                # A bucket in this process: a lock and a few sums, no need for a thread.
                limits.check(kind, principal.key.key_id)
        except RateLimitedError as exc:
            path = request.url.path
            trail = request.app.state.frvs.oversight.trail
            await run_in_threadpool(record_refusal, trail, principal.context,
                                    action if isinstance(action, str) else action(path),
                                    {"route": path}, exc)
            raise

    return Depends(dependency)


SearchRate = rate_limit("search", _search_action)
DetectRate = rate_limit("detect", "detect")
VerifyRate = rate_limit("verify", "verify")
EnrolRate = rate_limit("enrol", "enrol")
