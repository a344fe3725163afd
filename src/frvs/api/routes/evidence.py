"""Pictures a reviewer or operator must see, and running a registered camera now.

Added for the web console (issue 7), which uses only the public API and needed:
the best shot an alert was raised on and the enrolled photo it matched (the evidence
a reviewer compares side by side), a camera's latest analysed frame (its thumbnail),
and starting a registered camera without restarting the service (audited with the
operator's key; the source is the one registered through ``POST /v1/cameras``).

Pictures are served only to the roles that already see the records they belong to,
as ``image/jpeg`` with the service's no-store and no-sniff headers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Operator, Reviewer, Watcher
from frvs.api.deps import AppDep
from frvs.api.routes.cameras import CameraName, CameraStatusPublic
from frvs.api.routes.galleries import GalleryName
from frvs.api.routes.subjects import SubjectId

router = APIRouter(prefix="/v1", tags=["evidence"])

JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "A JPEG picture."}}


@router.get("/alerts/{alert_id}/crop", operation_id="get_alert_crop",
            response_class=Response, responses=JPEG)
async def alert_crop(app: AppDep, who: Reviewer,
                     alert_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    """The best shot of the track the alert was raised on (the reviewer's evidence;
    each download audited)."""
    data = await run_in_threadpool(app.video.alerts.evidence, who.context, alert_id)
    return Response(data, media_type="image/jpeg")


@router.get("/alerts/{alert_id}/subject-photo", operation_id="get_alert_subject_photo",
            response_class=Response, responses=JPEG)
async def alert_subject_photo(app: AppDep, who: Reviewer,
                              alert_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    """The enrolled photo of the subject the alert matched: how a reviewer sees an
    enrolment photo, only in an alert's context (each download audited as
    ``subject.photo`` with the alert's id)."""
    data = await run_in_threadpool(app.video.alert_subject_photo, who.context, alert_id)
    return Response(data, media_type="image/jpeg")


@router.get("/galleries/{name}/subjects/{subject}/photo", operation_id="get_subject_photo",
            response_class=Response, responses=JPEG)
async def subject_photo(app: AppDep, who: Operator, name: GalleryName,
                        subject: SubjectId) -> Response:
    """The aligned face crop of the subject's first kept enrolment photo (operators; a
    reviewer sees it through ``/v1/alerts/{id}/subject-photo``; each download audited)."""
    return Response(await run_in_threadpool(app.galleries.photo, who.context, name, subject),
                    media_type="image/jpeg")


@router.get("/cameras/{name}/frame", operation_id="get_camera_frame",
            response_class=Response, responses=JPEG)
async def camera_frame(app: AppDep, _: Watcher, name: CameraName) -> Response:
    """The camera's latest analysed frame, at most 480 pixels wide."""
    return Response(await run_in_threadpool(app.video.latest_frame, name),
                    media_type="image/jpeg")


@router.post("/cameras/{name}/start", operation_id="start_camera",
             response_model=CameraStatusPublic)
async def start_camera(app: AppDep, who: Operator, name: CameraName) -> CameraStatusPublic:
    """Start a registered camera in this process now (again, once a finite source has
    ended); 409 while it runs, 400 when the source policy refuses its source (audited as
    refused). Audited as camera.run_requested with the operator's key (the run itself is
    recorded as camera.start when it begins)."""
    status = await run_in_threadpool(app.video.start_camera, who.context, name)
    return CameraStatusPublic.model_validate(status.as_dict())
