"""GET /v1/events: live alerts and camera status as Server-Sent Events.

Each alert notice is one ``event: alert.raised`` / ``alert.reviewed`` message; camera
status comes every ``status_every`` seconds as ``event: camera.status``, and with it,
once any edge node has called in, ``event: edge.nodes`` (each node's status: online or
offline, lagging when its oldest undelivered report is old, its clock offset); a comment
line keeps idle connections open. The stream ends after ``max_seconds`` (clients
reconnect, as EventSource does by itself), so no request lives forever.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Watcher
from frvs.api.deps import AppDep
from frvs.app import Application

router = APIRouter(prefix="/v1", tags=["events"])

_POLL_S = 0.25


def _message(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def _stream(app: Application, request: Request, person: str | None, max_seconds: float,
                  status_every: float) -> AsyncIterator[str]:
    subscription = app.video.bus.subscribe()
    deadline = time.monotonic() + max_seconds
    next_status = time.monotonic()
    try:
        yield ": connected\n\n"
        while time.monotonic() < deadline and not await request.is_disconnected():
            notice = subscription.get(0)
            if notice is not None:
                # Independent reviews: an undecided alert shows only the viewer's own review.
                yield _message(f"alert.{notice.kind}", notice.alert.seen_by(person).as_dict())
                continue
            if time.monotonic() >= next_status:
                yield _message("camera.status",
                               [s.as_dict() for s in app.video.supervisor.status()])
                # Edge nodes: offline (no heartbeat), lagging (an old backlog), clock off.
                nodes = await run_in_threadpool(app.edge.nodes.nodes)
                if nodes:
                    yield _message("edge.nodes", [n.as_dict() for n in nodes])
                next_status = time.monotonic() + status_every
            await asyncio.sleep(_POLL_S)
    finally:
        subscription.close()


@router.get("/events", operation_id="stream_events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "alert.raised, alert.reviewed, camera.status, "
                                            "edge.nodes"}})
async def events(
    app: AppDep, request: Request, who: Watcher,
    max_seconds: Annotated[float, Query(ge=1, le=3600)] = 300,
    status_every: Annotated[float, Query(ge=1, le=300)] = 5,
) -> StreamingResponse:
    """Live alerts and camera status (reviewers and operators)."""
    return StreamingResponse(_stream(app, request, who.context.actor.person, max_seconds,
                                     status_every),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
