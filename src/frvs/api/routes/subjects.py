"""/v1/galleries/{name}/subjects: list, show, delete, enrol (multipart images), and the
data-subject rights: export everything held about a subject as a ZIP, erase everywhere."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Admin, Operator
from frvs.api.deps import AppDep, audited_refusals, read_upload_bytes
from frvs.api.limits import EnrolRate
from frvs.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, encode_cursor
from frvs.api.routes.galleries import GalleryName
from frvs.core.errors import InvalidInputError
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import Subject, SubjectSpec

router = APIRouter(prefix="/v1/galleries/{name}/subjects", tags=["subjects"])

SubjectId = Annotated[str, Path(description="The subject's id in the gallery.",
                                max_length=200, examples=["emp-0042"])]
MAX_IMAGES_PER_REQUEST = 20


class SubjectPublic(BaseModel):
    subject: str = Field(examples=["emp-0042"])
    name: str | None = Field(examples=["Ada Lovelace"])
    metadata: dict[str, str] = Field(examples=[{"department": "R&D"}])
    created_at: datetime
    expires_at: datetime | None
    templates: int = Field(examples=[2])


class EnrolImagePublic(BaseModel):
    image: str
    subject: str
    status: str = Field(description="enrolled, duplicate or refused", examples=["enrolled"])
    reason: str | None = None
    error: str | None = None


class EnrolPublic(BaseModel):
    gallery: str
    enrolled: int
    duplicates: int
    refused: int
    subjects: list[str]
    images: list[EnrolImagePublic]


class DeletedSubjectPublic(BaseModel):
    gallery: str
    subject: str
    templates: int
    crops: int


class ErasurePublic(DeletedSubjectPublic):
    records: dict[str, int] = Field(
        description="Records erased per kind besides templates (sightings' match references, "
        "alerts, attendance).", examples=[{"sightings": 3, "alerts": 1, "attendance": 0}])
    audit_entry: int = Field(description="Sequence number of the audit entry recording the "
                             "erasure; the audit trail keeps it.")


def _public(subject: Subject) -> SubjectPublic:
    return SubjectPublic.model_validate(subject.as_dict())


@router.get("", operation_id="list_subjects", response_model=Page[SubjectPublic])
async def list_subjects(app: AppDep, _: Operator, name: GalleryName,
                        cursor: CursorQuery = None, limit: LimitQuery = 100
                        ) -> Page[SubjectPublic]:
    """A gallery's subjects by id, with their template counts (operators: investigators
    learn subjects only from an audited search, reviewers from the alert they review)."""
    try:
        after = decode_cursor(cursor)
    except InvalidInputError:
        # An unknown gallery answers 404 before a malformed cursor's 400, as it did
        # when the whole gallery was read first.
        await run_in_threadpool(app.galleries.subjects, name, None, 1)
        raise
    # One more than the page: whether a next page exists, without counting them all.
    found = await run_in_threadpool(app.galleries.subjects, name,
                                    None if after is None else str(after), limit + 1)
    chunk = found[:limit]
    next_cursor = encode_cursor(chunk[-1].external_id) if len(found) > limit else None
    return Page[SubjectPublic](items=[_public(s) for s in chunk], next_cursor=next_cursor)


@router.get("/{subject}", operation_id="get_subject", response_model=SubjectPublic)
async def get_subject(app: AppDep, _: Operator, name: GalleryName,
                      subject: SubjectId) -> SubjectPublic:
    """One subject."""
    return _public(await run_in_threadpool(app.galleries.subject, name, subject))


@router.delete("/{subject}", operation_id="delete_subject", response_model=DeletedSubjectPublic)
async def delete_subject(app: AppDep, who: Operator, name: GalleryName,
                         subject: SubjectId) -> DeletedSubjectPublic:
    """Delete a subject with its templates, crops and index entries (audited)."""
    deleted = await run_in_threadpool(app.galleries.delete_subject, who.context, name,
                                      subject)
    return DeletedSubjectPublic.model_validate(deleted.as_dict())


def _metadata(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError("metadata must be a JSON object of strings") from exc
    if not isinstance(value, dict):
        raise InvalidInputError("metadata must be a JSON object of strings")
    return {str(k): str(v) for k, v in value.items()}


@router.post("/{subject}/templates", operation_id="enrol_subject", response_model=EnrolPublic,
             dependencies=[EnrolRate])
async def enrol(*,
    app: AppDep, who: Operator, name: GalleryName, subject: SubjectId,
    images: Annotated[list[UploadFile], File(description="Photos of the subject, one usable "
                                             "face each (JPEG, PNG, WebP, BMP, TIFF, GIF).")],
    display_name: Annotated[str | None, Form(max_length=200)] = None,
    metadata: Annotated[str | None, Form(
        description='JSON object, e.g. {"department": "R&D"}. Keys naming race, ethnicity, '
        "skin colour, religion, politics, health, sexual orientation or emotion are refused.",
        max_length=10_000)] = None,
) -> EnrolPublic:
    """Enrol uploaded images of one subject (created on first enrolment; audited). Each
    image is enrolled, skipped as a duplicate or refused with its reason."""
    if len(images) > MAX_IMAGES_PER_REQUEST:
        raise InvalidInputError(f"at most {MAX_IMAGES_PER_REQUEST} images per request")
    inputs = {"gallery": name, "subject": subject, "images": len(images)}
    async with audited_refusals(app, who.context, "enrol", inputs):
        meta = _metadata(metadata)
        SubjectSpec(subject, display_name, meta)  # a bad id or metadata key: refused now
        items = [EnrolItem(subject, await read_upload_bytes(u, app), display_name, meta,
                           u.filename or f"image-{i}") for i, u in enumerate(images)]
    report = await run_in_threadpool(app.galleries.enrol, who.context, name, items)
    return EnrolPublic.model_validate(report.as_dict())


@router.get("/{subject}/export", operation_id="export_subject",
            response_class=Response, responses={200: {
                "content": {"application/zip": {}},
                "description": "A ZIP: subject.json, templates.json, crops/, sightings.json, "
                "alerts.json, attendance.json, audit.json"}})
async def export_subject(app: AppDep, who: Admin, name: GalleryName,
                         subject: SubjectId) -> Response:
    """Everything FRVS holds about a subject, as a ZIP (right of access; audited)."""
    data = await run_in_threadpool(app.oversight.rights.export, who.context, name, subject)
    filename = f"frvs-subject-{name}-{subject}.zip".replace('"', "")
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.post("/{subject}/erase", operation_id="erase_subject", response_model=ErasurePublic)
async def erase_subject(app: AppDep, who: Operator, name: GalleryName,
                        subject: SubjectId) -> ErasurePublic:
    """Erase a subject everywhere: store, index, crops, sightings' match references,
    alerts and attendance (right to erasure). The audit entries stay."""
    report = await run_in_threadpool(app.oversight.rights.erase, who.context, name, subject)
    return ErasurePublic.model_validate(report.as_dict())
