"""/v1/audit (auditor, admin): read and verify the audit trail. There is deliberately no
route that changes or deletes an entry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Auditor
from frvs.api.deps import AppDep
from frvs.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, encode_cursor
from frvs.core.errors import InvalidInputError
from frvs.oversight.anchors import Anchor
from frvs.oversight.audit import AuditQuery

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class ActorPublic(BaseModel):
    kind: str = Field(description="key, cli or system", examples=["key"])
    name: str
    key_id: str | None
    role: str | None
    holder: str | None = Field(None, description="The person holding the key (in the hash "
                               "when present).")


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    actor: ActorPublic
    actor_label: str = Field(examples=["key:k_3f9a0c1d2e4b"])
    action: str = Field(examples=["identify"])
    case_reference: str | None
    purpose: str | None
    subjects: list[str] = Field(description="Subjects named, as gallery/subject id.")
    inputs: dict[str, Any] = Field(description="Summary: hashes, ids, counts; never images.")
    result: dict[str, Any]
    outcome: str = Field(description="ok, refused (a domain error) or failed")
    prev_hash: str
    hash: str


class AuditProblemPublic(BaseModel):
    kind: str = Field(description="changed, removed, reordered or index (a subject index row "
                      "that disagrees with its entry)")
    seq: int
    detail: str


class AuditVerificationPublic(BaseModel):
    ok: bool
    entries: int
    first_seq: int
    head_seq: int
    head_hash: str
    anchors: int = Field(description="Anchors checked.")
    problems: list[AuditProblemPublic]
    problems_omitted: int = Field(description="Problems found beyond those listed.")


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInputError(f"{name} needs a time zone (UTC: a trailing Z)")
    return value


@router.get("", operation_id="list_audit_entries", response_model=Page[AuditEntryPublic])
async def list_entries(*,
    app: AppDep, _: Auditor, cursor: CursorQuery = None, limit: LimitQuery = 100,
    action: Annotated[str | None, Query(max_length=50, examples=["identify"])] = None,
    key_id: Annotated[str | None, Query(max_length=32)] = None,
    subject: Annotated[str | None, Query(max_length=320, description="gallery/subject id")
                       ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEntryPublic]:
    """Entries newest first, filtered by action, key, subject named or time."""
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, int):
        raise InvalidInputError("invalid cursor; pass next_cursor from a previous page")
    query = AuditQuery(after, limit, action, key_id, subject, _aware(since, "since"),
                       _aware(until, "until"))
    entries = await run_in_threadpool(app.oversight.trail.page, query)
    next_cursor = encode_cursor(entries[-1].seq) if len(entries) == limit else None
    return Page[AuditEntryPublic](items=[AuditEntryPublic.model_validate(e.as_dict())
                                         for e in entries], next_cursor=next_cursor)


@router.get("/verify", operation_id="verify_audit_trail", response_model=AuditVerificationPublic)
async def verify_trail(
    app: AppDep, _: Auditor,
    anchor: Annotated[list[str] | None, Query(
        max_length=100, description="SEQ:HASH of an earlier head kept outside the database "
        "(repeatable), as written by 'frvs audit checkpoint'.",
        examples=[["42:" + "0" * 64]])] = None,
) -> AuditVerificationPublic:
    """Walk the hash chain, check its base, the subject index and the anchors given; report
    every changed, removed or reordered entry, index row or anchor no longer held."""
    anchors = [Anchor.parse(a, f"anchor {i}") for i, a in enumerate(anchor or (), start=1)]
    report = await run_in_threadpool(app.oversight.trail.verify, anchors)
    return AuditVerificationPublic.model_validate(report.as_dict())
