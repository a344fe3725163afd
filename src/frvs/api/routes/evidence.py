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

import cv2
from fastapi import APIRouter, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Operator, Reviewer, Watcher
from frvs.api.deps import AppDep
from frvs.api.routes.cameras import CameraName, CameraStatusPublic
from frvs.api.routes.galleries import GalleryName
from frvs.api.routes.subjects import SubjectId
from frvs.app import Application
from frvs.core.caller import AuditDraft, record_refusal
from frvs.core.errors import NotFoundError
from frvs.imaging.encode import encode_jpeg
from frvs.video.source_policy import SourceOrigin, SourceRefusedError

router = APIRouter(prefix="/v1", tags=["evidence"])

JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "A JPEG picture."}}
THUMBNAIL_WIDTH = 480


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

    def photo() -> bytes:
        try:
            alert = app.video.alerts.get(alert_id)
        except NotFoundError as exc:
            record_refusal(app.store, who.context, "subject.photo", {"alert_id": alert_id}, exc)
            raise
        return app.galleries.photo(who.context, alert.gallery, alert.subject,
                                   context={"alert_id": alert_id})

    return Response(await run_in_threadpool(photo), media_type="image/jpeg")


@router.get("/galleries/{name}/subjects/{subject}/photo", operation_id="get_subject_photo",
            response_class=Response, responses=JPEG)
async def subject_photo(app: AppDep, who: Operator, name: GalleryName,
                        subject: SubjectId) -> Response:
    """The aligned face crop of the subject's first kept enrolment photo (operators; a
    reviewer sees it through ``/v1/alerts/{id}/subject-photo``; each download audited)."""
    return Response(await run_in_threadpool(app.galleries.photo, who.context, name, subject),
                    media_type="image/jpeg")


def _thumbnail(app: Application, camera: str) -> bytes:
    frame = app.video.supervisor.camera(camera).latest
    if frame is None:
        raise NotFoundError(f"camera {camera!r} has not analysed a frame yet")
    height, width = frame.image.shape[:2]
    if width <= THUMBNAIL_WIDTH:
        return encode_jpeg(frame.image)
    size = (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / width)))
    return encode_jpeg(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))


@router.get("/cameras/{name}/frame", operation_id="get_camera_frame",
            response_class=Response, responses=JPEG)
async def camera_frame(app: AppDep, _: Watcher, name: CameraName) -> Response:
    """The camera's latest analysed frame, at most 480 pixels wide."""
    return Response(await run_in_threadpool(_thumbnail, app, name), media_type="image/jpeg")


@router.post("/cameras/{name}/start", operation_id="start_camera",
             response_model=CameraStatusPublic)
async def start_camera(app: AppDep, who: Operator, name: CameraName) -> CameraStatusPublic:
    """Start a registered camera in this process now (again, once a finite source has
    ended); 409 while it runs, 400 when the source policy refuses its source (audited as
    refused). Audited as camera.run_requested with the operator's key (the run itself is
    recorded as camera.start when it begins)."""

    def start() -> CameraStatusPublic:
        spec = app.video.cameras.get(name)
        try:  # checked again when opened; refused here, the operator hears why at once
            app.video.sources.check(spec.source_url, SourceOrigin.SERVICE)
        except SourceRefusedError as exc:
            record_refusal(app.store, who.context, "camera.run_requested",
                           {"camera": spec.name, "galleries": list(spec.galleries)}, exc)
            raise
        # Leased to this replica first: a camera never runs on two replicas at once.
        app.video.leases.run_here(spec, app.video.runtime())
        app.oversight.trail.append(who.context, AuditDraft(
            "camera.run_requested", {"camera": spec.name, "galleries": list(spec.galleries)}, {}))
        status = app.video.supervisor.camera(name).status()
        return CameraStatusPublic.model_validate(status.as_dict())

    return await run_in_threadpool(start)
