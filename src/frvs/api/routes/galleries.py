"""/v1/galleries: create, list, show and delete galleries (operator; readers may list)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import GalleryReader, Operator
from frvs.api.deps import AppDep
from frvs.api.pagination import CursorQuery, LimitQuery, Page, page_by_key
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.galleries.service import GalleryOverview

router = APIRouter(prefix="/v1/galleries", tags=["galleries"])

GalleryName = Annotated[str, Path(description="Gallery name.", max_length=100,
                                  examples=["staff"])]


class GallerySettings(BaseModel):
    """What a gallery may change after creation (``GALLERY_UPDATABLE``)."""

    purpose: str | None = Field(None, max_length=2000)
    legal_basis: str | None = Field(None, max_length=2000)
    retention_days: int | None = Field(None, ge=1, le=36500)
    threshold: float | None = Field(None, ge=-1, le=1)
    fmr_target: float | None = Field(None, gt=0, lt=1)
    keep_crops: bool = False


class GalleryCreate(GallerySettings):
    """A new gallery. A watch list needs a purpose and a legal basis."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "watch-2025", "kind": "watch_list", "purpose": "find missing persons",
        "legal_basis": "court order 2025/17", "retention_days": 30}]})

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: GalleryKind = GalleryKind.GENERAL
    pack: str | None = Field(None, max_length=100)

    def spec(self) -> GallerySpec:
        return GallerySpec(self.name, self.kind, self.purpose, self.legal_basis,
                           self.retention_days, self.threshold, self.fmr_target,
                           self.keep_crops, self.pack)


class GalleryPublic(BaseModel):
    name: str = Field(examples=["staff"])
    kind: GalleryKind
    purpose: str | None
    legal_basis: str | None
    retention_days: int | None
    threshold: float | None
    fmr_target: float | None
    keep_crops: bool
    pack: str = Field(examples=["yunet_sface"])
    created_at: datetime
    subjects: int = Field(examples=[12])
    templates: int = Field(examples=[30])
    decision_threshold: float = Field(examples=[0.363])


def public(o: GalleryOverview) -> GalleryPublic:
    return GalleryPublic.model_validate(o.as_dict())


@router.get("", operation_id="list_galleries", response_model=Page[GalleryPublic])
async def list_galleries(app: AppDep, _: GalleryReader, cursor: CursorQuery = None,
                         limit: LimitQuery = 100) -> Page[GalleryPublic]:
    """Galleries by name, with their counts and decision thresholds."""
    overviews = await run_in_threadpool(app.galleries.all)
    chunk, next_cursor = page_by_key(overviews, lambda o: o.gallery.name, cursor, limit)
    return Page[GalleryPublic](items=[public(o) for o in chunk], next_cursor=next_cursor)


@router.post("", operation_id="create_gallery", response_model=GalleryPublic,
             status_code=status.HTTP_201_CREATED)
async def create_gallery(app: AppDep, who: Operator, body: GalleryCreate) -> GalleryPublic:
    """Create a gallery (audited)."""
    spec = body.spec()
    await run_in_threadpool(app.galleries.create, who.context, spec)
    overview, _ = await run_in_threadpool(app.galleries.show, spec.name)
    return public(overview)


@router.get("/{name}", operation_id="get_gallery", response_model=GalleryPublic)
async def get_gallery(app: AppDep, _: GalleryReader, name: GalleryName) -> GalleryPublic:
    """One gallery with its counts."""
    overview, _subjects = await run_in_threadpool(app.galleries.show, name)
    return public(overview)


class GalleryUpdate(GallerySettings):
    """The settings to change; a field left out keeps its value, ``null`` clears it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"retention_days": 14, "threshold": 0.55}]})


@router.patch("/{name}", operation_id="update_gallery", response_model=GalleryPublic)
async def update_gallery(app: AppDep, who: Operator, name: GalleryName,
                         body: GalleryUpdate) -> GalleryPublic:
    """Change purpose, legal basis, retention (subjects' expiry is re-dated), threshold,
    FMR target or crop policy (audited, with the previous values)."""
    changes = body.model_dump(exclude_unset=True)
    overview = await run_in_threadpool(app.galleries.update, who.context, name, changes)
    return public(overview)


@router.delete("/{name}", operation_id="delete_gallery", response_model=GalleryPublic)
async def delete_gallery(app: AppDep, who: Operator, name: GalleryName) -> GalleryPublic:
    """Delete a gallery with its subjects, templates, crops and index (audited)."""
    overview = await run_in_threadpool(app.galleries.delete, who.context, name)
    return public(overview)


class CalibrationRequest(BaseModel):
    """Measure the gallery's 1:N threshold for a target FPIR on its own subjects."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"fpir": 0.01, "apply": True}]})

    fpir: float = Field(gt=0, lt=1, description="Target false positive identification rate: "
                        "the share of searches for someone not enrolled that may return a "
                        "match.")
    apply: bool = Field(False, description="Make the measured threshold the gallery's.")


class FpirThreshold(BaseModel):
    fpir: float
    threshold: float | None = Field(description="null when the gallery has too few templates "
                                    "to show this rate")


class CalibrationPublic(BaseModel):
    gallery: str
    subjects: int
    probes: int = Field(description="Templates searched against the rest of the gallery.")
    mated_probes: int = Field(description="Templates whose subject has other templates.")
    target_fpir: float
    threshold: float
    fnir_at_threshold: float | None = Field(description="Share of mated searches not "
                                            "returning their subject first at the threshold.")
    current_threshold: float
    current_fpir: float
    current_fnir: float | None
    thresholds_by_fpir: list[FpirThreshold]
    applied: bool
    assumes: str


@router.post("/{name}/calibrate", operation_id="calibrate_gallery",
             response_model=CalibrationPublic)
async def calibrate_gallery(app: AppDep, who: Operator, name: GalleryName,
                            body: CalibrationRequest) -> CalibrationPublic:
    """Each template searched against the rest of the gallery: the threshold that keeps
    searches for people not enrolled under the target FPIR, and its FNIR (audited)."""
    result = await run_in_threadpool(app.galleries.calibrate, who.context, name, body.fpir,
                                     body.apply)
    return CalibrationPublic.model_validate(result.as_dict())
