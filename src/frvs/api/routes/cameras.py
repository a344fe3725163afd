"""/v1/cameras (operator): register, list, show and remove cameras; their live status.

An enabled camera registered here starts at once in a running 'frvs serve' (which looks
for added, changed and removed cameras every ``video.camera_sync_s``), or when an operator
starts it (``POST /v1/cameras/{name}/start``). Its
source passes the source policy when it is set (400 ``source_refused`` otherwise) and
again when it is opened: streams over rtsp(s) or http(s) to public hosts (private ones
only with ``video.allow_private_sources``), local devices, files and folders only under
``video.media_roots`` and never FRVS's own data; so a key cannot make the service read
its files or probe the services around it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Operator, Watcher
from frvs.api.deps import AppDep
from frvs.api.pagination import CursorQuery, LimitQuery, Page, page_by_key
from frvs.video.models import CameraRole
from frvs.video.service import CameraSpec

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])

CameraName = Annotated[str, Path(max_length=100, examples=["entrance-1"])]


class CameraCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"name": "entrance-1", "source_url": "rtsp://cam-1.local/stream",
                      "galleries": ["staff"], "role": "entry", "sample_fps": 5}]})

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    source_url: str = Field(min_length=1, max_length=2000,
                            description="rtsp(s):// or http(s):// (public hosts unless "
                            "video.allow_private_sources), /dev/videoN, or a folder or file "
                            "under video.media_roots")
    galleries: list[str] = Field(default_factory=list, max_length=20)
    role: CameraRole = CameraRole.GENERAL
    location: str | None = Field(None, max_length=500)
    sample_fps: float | None = Field(5.0, gt=0, le=120)
    roi: tuple[float, float, float, float] | None = None
    retention_days: int = Field(7, ge=1, le=3650)
    keep_crops: bool = False
    enabled: bool = True


class CameraPublic(BaseModel):
    name: str
    source: str = Field(description="The source URL with any password hidden.")
    galleries: list[str]
    role: CameraRole
    location: str | None
    sample_fps: float | None
    roi: list[float] | None
    retention_days: int
    keep_crops: bool
    enabled: bool


class GapPublic(BaseModel):
    start: str
    end: str | None
    seconds: float | None
    reason: str


class CameraStatusPublic(BaseModel):
    camera: str
    health: str = Field(examples=["online"])
    input_fps: float
    processed_fps: float
    frames_read: int
    frames_processed: int
    dropped: int
    lag_seconds: float
    reconnects: int
    last_error: str | None
    gaps: list[GapPublic]
    replica: str | None = Field(None, description="The replica running the camera (its "
                                "name among several 'frvs serve' on one store).")


def _public(spec: CameraSpec) -> CameraPublic:
    return CameraPublic.model_validate(spec.as_dict())


@router.get("", operation_id="list_cameras", response_model=Page[CameraPublic])
async def list_cameras(app: AppDep, _: Operator, cursor: CursorQuery = None,
                       limit: LimitQuery = 100) -> Page[CameraPublic]:
    """Registered cameras by name."""
    cameras = await run_in_threadpool(app.video.cameras.all)
    chunk, next_cursor = page_by_key(cameras, lambda c: c.name, cursor, limit)
    return Page[CameraPublic](items=[_public(c) for c in chunk], next_cursor=next_cursor)


@router.post("", operation_id="create_camera", response_model=CameraPublic,
             status_code=status.HTTP_201_CREATED)
async def create_camera(app: AppDep, who: Operator, body: CameraCreate) -> CameraPublic:
    """Register a camera (its galleries must share one model pack)."""
    spec = CameraSpec(body.name, body.source_url, tuple(body.galleries), body.role,
                      body.location, body.sample_fps, body.roi, body.retention_days,
                      body.keep_crops, body.enabled)
    return _public(await run_in_threadpool(app.video.cameras.add, who.context, spec))


@router.get("/status", operation_id="camera_status", response_model=list[CameraStatusPublic])
async def camera_status(app: AppDep, _: Watcher) -> list[CameraStatusPublic]:
    """Health of the running cameras of every replica, each with the replica running
    it: this one's live, the others' as they last reported (every few seconds)."""
    return [CameraStatusPublic.model_validate(s)
            for s in await run_in_threadpool(app.video.leases.status)]


def status_only() -> APIRouter:
    """The camera status route alone: all a replica for cameras only serves."""
    only = APIRouter(prefix="/v1/cameras", tags=["cameras"])
    only.add_api_route("/status", camera_status, methods=["GET"], operation_id="camera_status",
                       response_model=list[CameraStatusPublic])
    return only


@router.get("/{name}", operation_id="get_camera", response_model=CameraPublic)
async def get_camera(app: AppDep, _: Operator, name: CameraName) -> CameraPublic:
    return _public(await run_in_threadpool(app.video.cameras.get, name))


class CameraUpdate(BaseModel):
    """The settings to change; a field left out keeps its value, ``null`` clears it. A
    running service restarts the camera with them at once."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"galleries": ["staff", "visitors"], "sample_fps": 2}]})

    source_url: str = Field("", min_length=1, max_length=2000)
    galleries: list[str] = Field(default_factory=list, max_length=20)
    role: CameraRole = CameraRole.GENERAL
    location: str | None = Field(None, max_length=500)
    sample_fps: float | None = Field(None, gt=0, le=120)
    roi: tuple[float, float, float, float] | None = None
    retention_days: int = Field(7, ge=1, le=3650)
    keep_crops: bool = False
    enabled: bool = True


@router.patch("/{name}", operation_id="update_camera", response_model=CameraPublic)
async def update_camera(app: AppDep, who: Operator, name: CameraName,
                        body: CameraUpdate) -> CameraPublic:
    """Change a camera's source, galleries (which must share one model pack), role,
    location, sampling, region of interest, retention, crop policy or enabled flag."""
    changes = body.model_dump(exclude_unset=True)
    if "galleries" in changes:
        changes["galleries"] = tuple(changes["galleries"])
    return _public(await run_in_threadpool(app.video.cameras.update, who.context, name,
                                           changes))


@router.delete("/{name}", operation_id="delete_camera", response_model=CameraPublic)
async def delete_camera(app: AppDep, who: Operator, name: CameraName) -> CameraPublic:
    """Remove a camera's registration (its stored sightings keep their own retention)."""
    return _public(await run_in_threadpool(app.video.cameras.remove, who.context, name))
