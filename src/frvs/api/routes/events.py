"""GET /v1/events: live alerts and camera status as Server-Sent Events.

Alerts raised and decided (``alert.raised`` / ``alert.reviewed``) and cameras changing
replica (``camera.run``) come from the store's durable event log, the same on every
replica: each message carries its ``id:``, and a client that reconnects (to this
replica or another, after a failover) with ``Last-Event-ID`` gets every later event
once, in order. A client without one starts from now. Camera health comes every
``status_every`` seconds as ``event: camera.status`` (a snapshot, without an id), and
with it, once any edge node has called in, ``event: edge.nodes`` (each node online or
offline, lagging when its oldest undelivered report is old, its clock offset); a
comment line keeps idle connections open. The stream ends after ``max_seconds``
(clients reconnect, as EventSource does by itself, resuming from the last id), so no
request lives forever.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Watcher
from frvs.api.deps import AppDep
from frvs.app import Application
from frvs.core.errors import InvalidInputError

router = APIRouter(prefix="/v1", tags=["events"])

_POLL_S = 0.1
_RETRY_MS = 1000
_MAX_ID = 2 ** 63 - 1  # event ids are 64-bit


def _last_id(header: str | None, query: int | None) -> int | None:
    """Where a client resumes: ``Last-Event-ID`` (EventSource sends it by itself) or
    ``last_event_id`` (for clients that cannot set headers); None for a new client."""
    if query is not None:
        value = query
    elif header is None or not header.strip():
        return None
    else:
        try:
            value = max(0, int(header.strip()))
        except ValueError:
            raise InvalidInputError(
                "Last-Event-ID must be an event id (a whole number)") from None
    if value > _MAX_ID:
        raise InvalidInputError(f"Last-Event-ID must be an event id (at most {_MAX_ID})")
    return value


def _message(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def _logged(event_id: int, event: str, data: object) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def _stream(app: Application, request: Request, max_seconds: float,
                  status_every: float, last_id: int | None) -> AsyncIterator[str]:
    log = app.store.events
    feed = await run_in_threadpool(log.feed)
    head = await run_in_threadpool(log.head)
    # A new client gets what happens from now on; so does one whose id the log never
    # reached (a restored database, another deployment's id), which would otherwise
    # wait, silently, until the log grew past it.
    last_id = head if last_id is None else min(last_id, head)
    deadline = time.monotonic() + max_seconds
    next_status = time.monotonic()
    # Only decisions are logged (an undecided review is never announced), so what the
    # log holds of an alert shows no reviewer another's verdict before the decision.
    yield f": connected\nretry: {_RETRY_MS}\n\n"
    while time.monotonic() < deadline and not await request.is_disconnected():
        if feed.head > last_id:
            for event in await run_in_threadpool(log.after, last_id):
                yield _logged(event.id, event.kind, event.data)
                last_id = event.id
            continue
        if time.monotonic() >= next_status:
            statuses = await run_in_threadpool(app.video.leases.status)
            yield _message("camera.status", statuses)
            # Edge nodes: offline (no heartbeat), lagging (an old backlog), clock off.
            nodes = await run_in_threadpool(app.edge.nodes.nodes)
            if nodes:
                yield _message("edge.nodes", [n.as_dict() for n in nodes])
            next_status = time.monotonic() + status_every
        await asyncio.sleep(_POLL_S)


@router.get("/events", operation_id="stream_events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "alert.raised, alert.reviewed, camera.status, "
                                            "edge.nodes"}})
async def events(
    app: AppDep, request: Request, _: Watcher, *,
    max_seconds: Annotated[float, Query(ge=1, le=3600)] = 300,
    status_every: Annotated[float, Query(ge=1, le=300)] = 5,
    last_event_id: Annotated[int | None, Query(ge=0, le=_MAX_ID)] = None,
    last_event_header: Annotated[str | None, Header(alias="Last-Event-ID",
                                                    max_length=30)] = None,
) -> StreamingResponse:
    """Live alerts and camera status (reviewers and operators), resumable on any
    replica with ``Last-Event-ID``."""
    return StreamingResponse(_stream(app, request, max_seconds, status_every,
                                     _last_id(last_event_header, last_event_id)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
