"""1:N identify and N:M cross-match: investigator searches, each with a case reference
and a purpose (recorded in the audit trail) and under the per-key search rate limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Investigator
from frvs.api.deps import AppDep, audited_refusals, read_upload_bytes
from frvs.api.limits import SearchRate
from frvs.api.routes.galleries import GalleryName

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[SearchRate])

CaseField = Annotated[str | None, Form(
    max_length=200, description="Case reference (or the X-Case-Reference header); required.",
    examples=["CASE-2025-0117"])]
PurposeField = Annotated[str | None, Form(
    max_length=500, description="Purpose of the search (or the X-Purpose header); required.",
    examples=["identify a suspect from a CCTV still"])]


class CandidatePublic(BaseModel):
    subject: str = Field(examples=["emp-0042"])
    score: float = Field(examples=[0.61])


class FaceIdentificationPublic(BaseModel):
    box: list[float] = Field(description="x, y, width, height", examples=[[40, 32, 96, 110]])
    quality: float
    candidates: list[CandidatePublic]
    match: str | None = Field(description="The best candidate if it reaches the gallery's "
                              "threshold, else null.")


class IdentificationPublic(BaseModel):
    gallery: str
    pack: str
    threshold: float
    faces: list[FaceIdentificationPublic]


class CrossMatchRequest(BaseModel):
    """Two galleries (or one, for likely duplicates inside it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "gallery_a": "staff", "gallery_b": "visitors", "top": 10,
        "case_reference": "CASE-2025-0117", "purpose": "duplicate identities audit"}]})

    gallery_a: str = Field(max_length=100)
    gallery_b: str | None = Field(None, max_length=100)
    threshold: float | None = Field(None, ge=-1, le=1)
    top: int = Field(10, ge=1, le=1000)
    case_reference: str | None = Field(None, max_length=200)
    purpose: str | None = Field(None, max_length=500)


class CrossMatchPairPublic(BaseModel):
    a: str
    b: str
    score: float


class CrossMatchPublic(BaseModel):
    gallery_a: str
    gallery_b: str
    threshold: float
    pairs: list[CrossMatchPairPublic]


@router.post("/galleries/{name}/identify", operation_id="identify",
             response_model=IdentificationPublic)
async def identify(*,
    app: AppDep, who: Investigator, name: GalleryName,
    image: Annotated[UploadFile, File(description="Probe photo; every face is searched.")],
    top: Annotated[int, Form(ge=1, le=100)] = 5,
    case_reference: CaseField = None,
    purpose: PurposeField = None,
) -> IdentificationPublic:
    """1:N: search every face of the probe in the gallery (audited with the probe's hash,
    the gallery, the matches, the case and the purpose)."""
    who = who.with_case(case_reference, purpose)
    async with audited_refusals(app, who.context, "identify", {"gallery": name, "top": top}):
        data = await read_upload_bytes(image, app)
    result = await run_in_threadpool(app.galleries.identify, who.context, name, data, top,
                                     image.filename or "probe")
    return IdentificationPublic.model_validate(result.as_dict())


@router.post("/crossmatch", operation_id="crossmatch", response_model=CrossMatchPublic)
async def crossmatch(app: AppDep, who: Investigator, body: CrossMatchRequest
                     ) -> CrossMatchPublic:
    """N:M: subject pairs of two galleries scoring at least the threshold (audited)."""
    who = who.with_case(body.case_reference, body.purpose)
    result = await run_in_threadpool(app.galleries.crossmatch, who.context, body.gallery_a,
                                     body.gallery_b, body.threshold, body.top)
    return CrossMatchPublic.model_validate(result.as_dict())
