"""Edge nodes: heartbeats in (device keys), the node registry out (operators)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Device, Operator
from frvs.api.deps import AppDep, audited_refusals
from frvs.api.limits import rate_limits
from frvs.oversight.nodes import Heartbeat

router = APIRouter(prefix="/v1/edge", tags=["devices"])

Count = Annotated[int, Field(ge=0, le=2**62)]


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="The node's name.")
    version: str = Field(max_length=50, description="The node's FRVS version.")
    pack: str | None = Field(None, max_length=200, description="The model space its "
                             "templates are made in.")
    cameras: list[Annotated[str, Field(max_length=100)]] = Field(max_length=64)
    location: str | None = Field(None, max_length=500)
    backlog: Count = 0
    backlog_bytes: Count = 0
    oldest_pending: datetime | None = None
    dropped_crops: Count = Field(0, description="Crops the outbox dropped, since it began.")
    dropped_reports: Count = Field(0, description="Reports it dropped, since it began.")
    sent_at: datetime = Field(description="The node's clock when it sent this.")


class CameraPolicyPublic(BaseModel):
    crops: bool = Field(description="Ship best-shot crops for this camera.")


class HeartbeatOut(BaseModel):
    now: datetime
    clock_offset_s: float = Field(description="The node's clock minus the centre's.")
    clock_ok: bool = Field(description="Within devices.clock_skew_s; reports dated beyond "
                           "it are refused.")
    cameras: dict[str, CameraPolicyPublic]


class NodePublic(BaseModel):
    key_id: str
    name: str
    cameras: list[str]
    version: str | None
    pack: str | None
    location: str | None
    first_contact: datetime
    last_heartbeat: datetime | None
    status: str = Field(description="online, or offline when no heartbeat came for "
                        "the offline limit.")
    lagging: bool = Field(description="Its oldest undelivered report was older than the "
                          "lagging limit when it last called in: its backlog is not "
                          "draining.")
    backlog: int
    backlog_bytes: int
    oldest_pending: datetime | None
    clock_offset_s: float | None
    clock_ok: bool
    dropped_crops: int
    dropped_reports: int
    reports: int = Field(description="Reports the centre has accepted from it.")


@router.post("/heartbeat", operation_id="edge_heartbeat", response_model=HeartbeatOut)
async def heartbeat(app: AppDep, who: Device, request: Request,
                    body: HeartbeatIn) -> HeartbeatOut:
    """A node calls in: its software, cameras, backlog, drops and clock (device keys).
    Its first heartbeat and any new drops are audited. Each heartbeat costs one of the
    key's submissions (``devices.submit_rate_per_minute``; 429 beyond it): a node calls
    in every few seconds, a stolen key must not write audit entries as fast as it can."""
    async with audited_refusals(app, who.context, "edge.heartbeat",
                                {"node": body.name[:200], "cameras": body.cameras}):
        await run_in_threadpool(rate_limits(request).check, "submit", who.key.key_id)
        beat = Heartbeat(body.name, body.version, body.pack, tuple(body.cameras),
                         body.location, body.backlog, body.backlog_bytes,
                         body.oldest_pending, body.dropped_crops, body.dropped_reports,
                         body.sent_at)
    answer = await run_in_threadpool(app.edge.nodes.heartbeat, who.context, beat)
    return HeartbeatOut.model_validate(answer.as_dict())


@router.get("/nodes", operation_id="list_edge_nodes", response_model=list[NodePublic])
async def nodes(app: AppDep, _: Operator) -> list[NodePublic]:
    """Every edge node that has called in, with its status, backlog and clock offset."""
    found = await run_in_threadpool(app.edge.nodes.nodes)
    return [NodePublic.model_validate(n.as_dict()) for n in found]
