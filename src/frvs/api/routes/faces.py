"""POST /v1/detect and /v1/verify.

Any person's key may call them (operator, investigator, reviewer, admin); auditor keys
read only the trail and device keys only submit sightings, so both get 403. Verify is
a biometric comparison and is audited (by the engine façade)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from frvs.api.auth import FaceUser
from frvs.api.deps import AppDep, Refusal, analyse_scaled_uploads
from frvs.api.limits import DetectRate, VerifyRate
from frvs.api.schemas import DetectPublic, VerifyPublic
from frvs.faces.models import Face
from frvs.models.quality import quality_shortfalls

router = APIRouter(prefix="/v1", tags=["faces"])


@router.post("/detect", operation_id="detect_faces", response_model=DetectPublic,
             dependencies=[DetectRate])
async def detect(app: AppDep, _: FaceUser, image: Annotated[UploadFile, File()],
                 pack: Annotated[str | None, Form()] = None) -> dict[str, object]:
    """Find the faces in an uploaded image, with landmarks, score and quality, and
    whether each meets the enrolment quality minimums (with the reasons it does not)."""
    faces = await analyse_scaled_uploads(app, [image],
                                         lambda images: app.engine.detect(images[0], pack))
    minimums = app.settings.quality.minimums()

    def checked(face: Face) -> dict[str, object]:
        shortfalls = quality_shortfalls(face.quality, minimums)
        return face.as_dict() | {"enrolment": {"usable": not shortfalls,
                                               "shortfalls": shortfalls}}

    return {"image": image.filename or "upload", "faces": [checked(f) for f in faces]}


@router.post("/verify", operation_id="verify_faces", response_model=VerifyPublic,
             dependencies=[VerifyRate])
async def verify(
    app: AppDep,
    who: FaceUser,
    image_a: Annotated[UploadFile, File()],
    image_b: Annotated[UploadFile, File()],
    pack: Annotated[str | None, Form()] = None,
) -> dict[str, object]:
    """1:1: compare the largest face of each image at the pack's default threshold."""
    names = (image_a.filename or "image_a", image_b.filename or "image_b")
    refusal = Refusal(who.context, "verify", {"images": list(names), "pack": pack})
    result = await analyse_scaled_uploads(
        app, [image_a, image_b],
        lambda images: app.engine.verify(who.context, (images[0], images[1]), names, pack),
        refusal)
    return result.as_dict()
