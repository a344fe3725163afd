"""Identity checks at a counter: ``POST /v1/checks`` and the verifier's own results.

Verifier keys (and admin) only. A verifier reads only their own checks (same key
holder); another's check answers 404, as if it did not exist. The browser console
sends the live frames as JPEG files in capture order with their capture times."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Verifier
from frvs.api.deps import AppDep, Refusal, analyse_uploads
from frvs.api.limits import rate_limit
from frvs.api.schemas import QualityPublic
from frvs.checks.models import LiveFrame, Move, parse_challenge
from frvs.core.caller import record_refusal
from frvs.core.errors import FrvsError, InvalidInputError

router = APIRouter(prefix="/v1", tags=["identity checks"])


class OperatingPointPublic(BaseModel):
    pack: str = Field(examples=["yunet_sface"])
    target_fmr: float = Field(examples=[0.001], description="The declared false match rate.")
    threshold: float = Field(examples=[0.363])
    calibrated: bool = Field(description="Whether the threshold was calibrated for "
                             "target_fmr on this deployment (else: the pack's default).")
    source: str | None = Field(None, description="Where the threshold comes from.")


class LivenessPublic(BaseModel):
    passed: bool
    reasons: list[str] = Field(description="Why liveness failed, one sentence each.")
    challenge: list[str] = Field(default_factory=list, examples=[["left", "right"]])
    moves_seen: list[str] = Field(default_factory=list)
    frames: int | None = None
    frames_with_face: int | None = None
    yaw_range_deg: list[float] | None = None
    pitch_range_deg: list[float] | None = None
    elapsed_s: float | None = None
    frame_agreement: float | None = Field(None, description="Weakest similarity linking "
                                          "the frames' faces.")


class DocumentFacePublic(BaseModel):
    faces_found: int
    box: list[float]
    chosen: str = Field(description="Which face was taken as the portrait, and why.")
    quality: QualityPublic


class CheckQualityPublic(BaseModel):
    document: DocumentFacePublic | None
    live: QualityPublic | None


class DigestsPublic(BaseModel):
    document_sha256: str
    capture_sha256: str


class KeptPublic(BaseModel):
    images: bool
    images_until: datetime | None
    stored: list[str]
    not_stored: list[str]


class CheckPublic(BaseModel):
    """A check as it was run (POST) or as its receipt states it (GET: without the
    per-frame details and qualities, which are not stored)."""

    id: str
    at: datetime
    verifier: str
    purpose: str
    passed: bool
    decision: str = Field(examples=["verified"])
    match: bool
    score: float
    threshold: float
    operating_point: OperatingPointPublic
    liveness: LivenessPublic
    quality: CheckQualityPublic | None = None
    challenge: list[str] | None = None
    frames: int | None = None
    digests: DigestsPublic
    kept: KeptPublic
    contact: str
    notes: list[str] = Field(default_factory=list)


class CheckListPublic(BaseModel):
    items: list[CheckPublic]
    next_cursor: str | None = None


class ChallengePublic(BaseModel):
    id: str
    moves: list[str] = Field(examples=[["right", "left"]])
    issued_at: datetime
    expires_at: datetime
    time_limit_s: float
    min_frames: int
    max_frames: int
    purpose: str

CheckRate = rate_limit("verify", "identity_check")


def _times(text: str | None, count: int, fps: float) -> list[float]:
    """Capture times in seconds from the first frame: ``times`` (comma-separated
    seconds) or, without it, ``1/fps`` apart."""
    if text is None or not text.strip():
        return [i / fps for i in range(count)]
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise InvalidInputError("times: comma-separated seconds, one per live frame") from exc
    if len(values) != count:
        raise InvalidInputError(f"times: {len(values)} values for {count} live frames")
    if not all(math.isfinite(v) and abs(v) <= 3600 for v in values):
        raise InvalidInputError("times: each within an hour of the first frame")
    return [v - values[0] for v in values]


@router.post("/checks", operation_id="run_identity_check", status_code=201,
             dependencies=[CheckRate], response_model=CheckPublic)
async def run_check(
    app: AppDep,
    who: Verifier,
    document: Annotated[UploadFile, File(description="The identity document: a scan or "
                                         "photo of the page with the portrait.")],
    live: Annotated[list[UploadFile], File(description="Live frames in capture order.")],
    *,
    challenge: Annotated[str | None, Form(max_length=100, description="The moves asked "
                                          "for, in the customer's own left/right, e.g. "
                                          "left,right (or challenge_id).")] = None,
    challenge_id: Annotated[str | None, Form(max_length=32, description="An issued "
                                             "challenge (POST /v1/checks/challenges).")
                            ] = None,
    times: Annotated[str | None, Form(max_length=4000, description="Capture time of each "
                                      "frame, seconds, comma-separated.")] = None,
    purpose: Annotated[str | None, Form(max_length=500)] = None,
) -> dict[str, Any]:
    """Run an identity check: match of the live face against the document's portrait at
    the declared FMR's threshold, and challenge-response liveness. Only the digests and
    the decision are stored unless the deployment keeps images."""
    policy = app.checks.policy
    # A counter's scanner or app may name files after the customer; errors quote file
    # names, and refusals go to the audit trail with their message. So the uploads are
    # named by their role and position only, before anything reads them.
    document.filename = "document"
    for i, upload in enumerate(live):
        upload.filename = f"live frame {i + 1}"
    inputs = {"purpose": purpose, "challenge": challenge, "challenge_id": challenge_id,
              "frames": len(live)}
    try:
        if challenge_id is None and policy.require_issued_challenge:
            raise InvalidInputError("this installation checks only issued challenges: ask "
                                    "for one (POST /v1/checks/challenges) and send its "
                                    "challenge_id")
        if challenge_id is None and not challenge:
            raise InvalidInputError("send the challenge (e.g. left,right) or challenge_id")
        moves: tuple[Move, ...] = parse_challenge(challenge) if challenge else ()
        if len(live) > policy.max_frames:
            raise InvalidInputError(f"too many frames: {len(live)}, at most "
                                    f"{policy.max_frames}")
        seconds = _times(times, len(live), 5.0)
    except FrvsError as exc:
        await run_in_threadpool(record_refusal, app.oversight.trail, who.context, "identity_check",
                                inputs, exc)
        raise
    refusal = Refusal(who.context, "identity_check", inputs)
    result = await analyse_uploads(
        app, [document, *live],
        lambda ups: app.checks.run(
            who.context, ups[0].pixels,
            [LiveFrame(u.pixels, t, u.name) for u, t in zip(ups[1:], seconds, strict=True)],
            moves, purpose=purpose, challenge_id=challenge_id), refusal)
    return result.as_dict()


@router.post("/checks/challenges", operation_id="issue_identity_challenge",
             status_code=201, response_model=ChallengePublic)
async def issue_challenge(app: AppDep, who: Verifier) -> dict[str, Any]:
    """A random challenge for the caller's next check, answerable once, by them, until
    ``expires_at`` (the console asks for one per check), with the capture's limits."""
    policy = app.checks.policy
    issued = await run_in_threadpool(app.checks.issue_challenge, who.context)
    return issued.as_dict() | {"time_limit_s": policy.time_limit_s,
                               "min_frames": policy.min_frames,
                               "max_frames": policy.max_frames, "purpose": policy.purpose}


@router.get("/checks", operation_id="list_identity_checks", response_model=CheckListPublic)
async def list_checks(app: AppDep, who: Verifier,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The caller's own identity checks, newest first (an admin's: everyone's)."""
    items = await run_in_threadpool(app.checks.mine, who.context, limit)
    return {"items": items, "next_cursor": None}


@router.get("/checks/{check_id}", operation_id="get_identity_check",
            response_model=CheckPublic)
async def get_check(app: AppDep, who: Verifier, check_id: str) -> dict[str, Any]:
    """One of the caller's own checks, as its receipt states it: what was checked, the
    result, what was kept and for how long, and who to ask."""
    return await run_in_threadpool(app.checks.get, who.context, check_id)
