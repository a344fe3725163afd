"""Sightings (investigator search), alerts (reviewer: list, show, review with a note),
attendance reports (operator) and webhooks (admin)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frvs.alerts.models import AlertRule, AlertStatus, Verdict
from frvs.api.auth import Admin, Device, Investigator, Operator, Reviewer, ReviewerOnly
from frvs.api.deps import AppDep, Refusal, analyse_uploads, audited_refusals
from frvs.api.limits import SearchRate, rate_limits
from frvs.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, encode_cursor
from frvs.api.problems import STATUS_FOR
from frvs.core.caller import record_refusal
from frvs.core.errors import FrvsError, InvalidInputError
from frvs.core.times import check_day, check_time
from frvs.oversight.edge import EdgeSighting
from frvs.oversight.sightings import SightingQuery
from frvs.video.edge_report import NodeTemplate
from frvs.video.sources import describe

router = APIRouter(prefix="/v1", tags=["video"])


class SightingPublic(BaseModel):
    id: int
    camera: str
    track: int
    first_seen: datetime
    last_seen: datetime
    frames: int
    quality: float
    gallery: str | None
    subject: str | None
    score: float | None
    best_subject: str | None
    best_score: float | None
    crop: str | None
    expires_at: datetime


class SightingHitPublic(BaseModel):
    sighting: SightingPublic
    score: float


class ReviewPublic(BaseModel):
    reviewer: str
    holder: str | None = Field(description="The person who reviewed (the key's holder); "
                               "what the two-person rule counts.")
    verdict: Verdict
    note: str | None
    at: datetime


class AlertPublic(BaseModel):
    id: int
    camera: str
    track: int
    gallery: str
    subject: str
    score: float
    threshold: float
    attempts: int
    at: datetime
    frame_time: float
    quality: float
    crop: str | None
    status: AlertStatus
    two_person: bool
    reviews: list[ReviewPublic]


class AlertReview(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"verdict": "confirm", "note": "same person, clear frontal shot"}]})

    verdict: Verdict
    note: str | None = Field(None, max_length=2000)


class PresencePublic(BaseModel):
    subject: str
    name: str | None = Field(None, description="The display name the subject was enrolled "
                             "under.")
    first_in: datetime | None
    last_out: datetime | None
    present_seconds: float
    entries: int
    exits: int


class AttendancePublic(BaseModel):
    day: date
    gallery: str | None
    lines: list[PresencePublic]


class WebhookPublic(BaseModel):
    url: str
    attempts: int
    delivered: int
    failed: int
    retries: int
    dropped: int
    last_error: str | None
    name: str | None = Field(None, description="Managed webhooks (source 'store') only.")
    source: str = Field("config", description="config (video.webhooks: delivered by this "
                        "process) or store (added over the API or CLI: delivered from the "
                        "store's queue by any replica).")
    pending: int = Field(0, description="Store webhooks: deliveries queued or retrying.")


def _aware(value: datetime | None, name: str = "time") -> datetime | None:
    return None if value is None else check_time(value, name)


def _int_cursor(cursor: str | None) -> int | None:
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, int):
        raise InvalidInputError("invalid cursor; pass next_cursor from a previous page")
    return after


@router.get("/sightings", operation_id="list_sightings", response_model=Page[SightingPublic],
            dependencies=[SearchRate])
async def list_sightings(
    *, app: AppDep, who: Investigator, cursor: CursorQuery = None, limit: LimitQuery = 100,
    camera: Annotated[str | None, Query(max_length=100)] = None,
    gallery: Annotated[str | None, Query(max_length=100)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None, until: datetime | None = None,
) -> Page[SightingPublic]:
    """Sightings newest first by camera, time and matched subject (a sighting search:
    X-Case-Reference and X-Purpose required, audited)."""
    async with audited_refusals(app, who.context, "sightings.search",
                                {"camera": camera, "gallery": gallery, "subject": subject}):
        query = SightingQuery(camera, _aware(since, "since"), _aware(until, "until"), gallery,
                              subject, _int_cursor(cursor), limit)
    hits = await run_in_threadpool(app.oversight.sightings.search, who.context, query)
    next_cursor = encode_cursor(hits[-1].id) if len(hits) == limit else None
    return Page[SightingPublic](items=[SightingPublic.model_validate(h.as_dict()) for h in hits],
                                next_cursor=next_cursor)


@router.post("/sightings/search", operation_id="search_sightings_by_photo",
             response_model=list[SightingHitPublic], dependencies=[SearchRate])
async def search_sightings(
    *, app: AppDep, who: Investigator,
    image: Annotated[UploadFile, File(description="Probe photo; its largest face is used.")],
    camera: Annotated[str | None, Form(max_length=100)] = None,
    threshold: Annotated[float | None, Form(ge=-1, le=1)] = None,
    limit: Annotated[int, Form(ge=1, le=500)] = 50,
    case_reference: Annotated[str | None, Form(max_length=200)] = None,
    purpose: Annotated[str | None, Form(max_length=500)] = None,
) -> list[SightingHitPublic]:
    """Sightings whose best shot resembles the probe (audited with case and purpose)."""
    who = who.with_case(case_reference, purpose)
    refusal = Refusal(who.context, "sightings.search", {"camera": camera})
    async with audited_refusals(app, refusal.caller, refusal.action, refusal.inputs):
        who.context.require_case("sighting search")
    hits = await analyse_uploads(app, [image], lambda probe: app.oversight.sightings.by_probe(
        who.context, probe[0].pixels, hashlib.sha256(probe[0].data).hexdigest(),
        SightingQuery(camera=camera, limit=limit), threshold), refusal)
    return [SightingHitPublic(sighting=SightingPublic.model_validate(h.sighting.as_dict()),
                              score=round(h.score, 6)) for h in hits]


@router.get("/alerts", operation_id="list_alerts", response_model=Page[AlertPublic])
async def list_alerts(
    *, app: AppDep, who: Reviewer, cursor: CursorQuery = None, limit: LimitQuery = 100,
    status: AlertStatus | None = None,
    camera: Annotated[str | None, Query(max_length=100)] = None,
    since: datetime | None = None,
) -> Page[AlertPublic]:
    """Alerts newest first, by status, camera and time."""
    after = decode_cursor(cursor)
    before = None
    if after is not None:
        stamp, _sep, alert_id = str(after).rpartition("|")
        try:
            before = (datetime.fromisoformat(stamp), int(alert_id))
        except ValueError as exc:
            raise InvalidInputError("invalid cursor; pass next_cursor from a previous page"
                                    ) from exc
        _aware(before[0])
    alerts = await run_in_threadpool(app.video.alerts.list, status, camera,
                                     _aware(since, "since"), limit, before)
    next_cursor = (encode_cursor(f"{alerts[-1].at.isoformat()}|{alerts[-1].id}")
                   if len(alerts) == limit else None)
    person = who.context.actor.person
    return Page[AlertPublic](items=[AlertPublic.model_validate(a.seen_by(person).as_dict())
                                    for a in alerts], next_cursor=next_cursor)


@router.get("/alerts/{alert_id}", operation_id="get_alert", response_model=AlertPublic)
async def get_alert(app: AppDep, who: Reviewer,
                    alert_id: Annotated[int, Path(ge=1, le=2**62)]) -> AlertPublic:
    alert = await run_in_threadpool(app.video.alerts.get, alert_id)
    # Before it is decided, a reviewer sees only their own review (independent reviews).
    return AlertPublic.model_validate(alert.seen_by(who.context.actor.person).as_dict())


@router.post("/alerts/{alert_id}/review", operation_id="review_alert",
             response_model=AlertPublic)
async def review_alert(app: AppDep, who: ReviewerOnly, body: AlertReview,
                       alert_id: Annotated[int, Path(ge=1, le=2**62)]) -> AlertPublic:
    """Confirm or dismiss an alert with a note; a two-person alert needs two different
    reviewers to confirm (audited: who verified it)."""
    alert = await run_in_threadpool(app.video.alerts.review, who.context, alert_id,
                                    body.verdict, body.note)
    return AlertPublic.model_validate(alert.as_dict())


class AlertRulePublic(BaseModel):
    """A gallery's alert rule: the two-person rule (always on for watch lists) and the
    repeat window in which a second alert for the same person on the same camera is
    suppressed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"two_person": True, "suppress_seconds": 300}]})

    two_person: bool
    suppress_seconds: int = Field(ge=0, le=30 * 86_400)


@router.get("/galleries/{gallery}/alert-rule", operation_id="get_alert_rule",
            response_model=AlertRulePublic, tags=["alerts"])
async def get_alert_rule(app: AppDep, _: Operator,
                         gallery: Annotated[str, Path(max_length=100)]) -> AlertRulePublic:
    """The gallery's alert rule (the defaults when none was set)."""
    await run_in_threadpool(app.galleries.get, gallery)  # 404 for an unknown gallery
    rule = await run_in_threadpool(app.video.alerts.rule, gallery)
    return AlertRulePublic(two_person=rule.two_person, suppress_seconds=rule.suppress_seconds)


@router.put("/galleries/{gallery}/alert-rule", operation_id="set_alert_rule",
            response_model=AlertRulePublic, tags=["alerts"])
async def set_alert_rule(app: AppDep, who: Operator, body: AlertRulePublic,
                         gallery: Annotated[str, Path(max_length=100)]) -> AlertRulePublic:
    """Set the gallery's alert rule (audited with the rule it replaces). A watch list
    keeps the two-person rule: turning it off is refused."""
    rule = await run_in_threadpool(app.video.alerts.set_rule, who.context,
                                   AlertRule(gallery, body.two_person, body.suppress_seconds))
    return AlertRulePublic(two_person=rule.two_person, suppress_seconds=rule.suppress_seconds)


@router.get("/attendance", operation_id="attendance_report", response_model=AttendancePublic)
async def attendance(
    app: AppDep, _: Operator, day: date | None = None,
    gallery: Annotated[str | None, Query(max_length=100)] = None,
) -> AttendancePublic:
    """First in, last out and time present per subject for one day (UTC)."""
    when = check_day(day, "day") if day is not None else datetime.now(UTC).date()
    lines = await run_in_threadpool(app.video.attendance.report, when, gallery)
    return AttendancePublic(day=when, gallery=gallery,
                            lines=[PresencePublic.model_validate(x.as_dict()) for x in lines])


@router.get("/webhooks", operation_id="list_webhooks", response_model=list[WebhookPublic])
async def list_webhooks(app: AppDep, _: Admin) -> list[WebhookPublic]:
    """Webhook targets and their delivery counts: configured ones (video.webhooks, this
    process's counts) and managed ones (POST /v1/webhooks, counted in the store's
    queue); secrets are never shown."""
    configured = [WebhookPublic(url=describe(n.target.url), attempts=n.target.attempts,
                                delivered=n.stats.delivered, failed=n.stats.failed,
                                retries=n.stats.retries, dropped=n.stats.dropped,
                                last_error=n.stats.last_error) for n in app.video.webhooks]
    managed = [WebhookPublic(url=h.url, attempts=h.attempts, delivered=h.delivered,
                             failed=h.failed, retries=0, dropped=0, last_error=None,
                             name=h.name, source="store", pending=h.pending)
               for h in await run_in_threadpool(app.webhooks.list)]
    return configured + managed


class SubmittedSightingPublic(BaseModel):
    camera: str
    track: int
    subject: str | None = Field(description="The matched subject, when the best shot "
                                "passed a gallery's threshold (then an alert or attendance "
                                "event may follow).")
    gallery: str | None
    score: float | None
    sighting: int | None = Field(None, description="The stored sighting's id.")
    alert: int | None = Field(None, description="The alert raised for it, if any.")
    replayed: bool = Field(False, description="True when this report (node, camera, "
                           "track, first_seen) had been accepted before: the first answer "
                           "is returned (200) and nothing new is stored or audited.")


def _node_template(space: str | None, template: str | None,
                   quality: str | None) -> NodeTemplate | None:
    if template is None:
        return None
    if not space:
        raise InvalidInputError("a template needs its model space (field 'space')")
    try:
        vector = base64.b64decode(template, validate=True)
        measured = json.loads(quality) if quality else {}
    except (ValueError, binascii.Error) as exc:
        raise InvalidInputError("template must be base64 float32 values and quality a JSON "
                                "object of numbers") from exc
    if not isinstance(measured, dict) or not all(
            isinstance(v, int | float) for v in measured.values()):
        raise InvalidInputError("quality must be a JSON object of numbers")
    return NodeTemplate(space, vector, {str(k): float(v) for k, v in measured.items()})


@router.post("/sightings", operation_id="submit_sighting",
             response_model=SubmittedSightingPublic, status_code=201, tags=["devices"])
async def submit_sighting(
    *, app: AppDep, who: Device, request: Request, response: Response,
    camera: Annotated[str, Form(max_length=100, description="A registered camera.")],
    track_id: Annotated[int, Form(ge=0, le=2**31)],
    first_seen: Annotated[datetime, Form()],
    last_seen: Annotated[datetime, Form()],
    frames: Annotated[int, Form(ge=1, le=10**7)] = 1,
    space: Annotated[str | None, Form(max_length=200, description=(
        "The template's model space key (pack@version/dim/metric).")) ] = None,
    template: Annotated[str | None, Form(max_length=65_536, description=(
        "The best shot's template: base64 of little-endian float32 values."))] = None,
    quality: Annotated[str | None, Form(max_length=2000, description=(
        "The best shot's quality measurements, a JSON object of numbers."))] = None,
    image: Annotated[UploadFile | None, File(description="The track's best-shot crop "
                                             "(optional with a template).")] = None,
) -> SubmittedSightingPublic:
    """An edge node reports an ended track with its best shot's template and/or crop
    (device keys; audited). Exactly once per (device key, camera, track, first_seen): a
    report sent again returns the first answer with 200 and ``replayed``, and stores
    nothing new. A device key reports only for the cameras it is bound to (403), within
    ``devices.clock_skew_s`` of the server's clock and not before the camera was
    registered (400), at most ``devices.submit_rate_per_minute`` a minute (429). A
    template in another model space than the camera's galleries is embedded from the
    crop, and refused without one (409)."""
    refusal = Refusal(who.context, "sighting.submit", {"camera": camera, "track": track_id})
    async with audited_refusals(app, refusal.caller, refusal.action, refusal.inputs):
        await run_in_threadpool(rate_limits(request).check, "submit", who.key.key_id)
        report = EdgeSighting(camera, track_id, first_seen, last_seen, frames)
        node = _node_template(space, template, quality)
        if node is None and image is None:
            raise InvalidInputError("a report needs a template (space, template) or an image")
        # Binding and times first: a refused report costs no decoding.
        spec = await run_in_threadpool(app.edge.admit, who.context, report)
    if image is None:
        result = await run_in_threadpool(lambda: app.edge.submit(
            who.context, report, None, None, node, admitted=spec))
    else:
        result = await analyse_uploads(app, [image], lambda shot: app.edge.submit(
            who.context, report, shot[0].pixels, shot[0].data, node, admitted=spec), refusal)
    if result.replayed:
        response.status_code = 200
    return SubmittedSightingPublic.model_validate(result.as_dict())


class BatchReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: str = Field(max_length=100)
    track_id: int = Field(ge=0, le=2**31)
    first_seen: datetime
    last_seen: datetime
    frames: int = Field(1, ge=1, le=10**7)
    space: str = Field(max_length=200, description="The template's model space key.")
    template: str = Field(max_length=65_536, description="base64 of little-endian float32.")
    quality: dict[str, float] = Field(default_factory=dict, max_length=20)


class SightingBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reports: list[BatchReport] = Field(min_length=1, max_length=100)


class BatchItemPublic(BaseModel):
    status: int = Field(description="201 stored, 200 replayed (stored before), or the "
                        "status the report alone would have been refused with.")
    result: SubmittedSightingPublic | None = None
    error: str | None = Field(None, description="The refusal's code.")
    detail: str | None = None


@router.post("/sightings/batch", operation_id="submit_sighting_batch",
             response_model=list[BatchItemPublic], tags=["devices"])
async def submit_sighting_batch(
    *, app: AppDep, who: Device, request: Request, body: SightingBatch,
) -> list[BatchItemPublic]:
    """Up to 100 template-only reports (no crop) in one request and one transaction: how
    a node drains a backlog. Each is judged and stored exactly once as by POST
    /v1/sightings, and answered in order with its own status; each costs one submission
    of the device key's rate limit, so a batch larger than the burst is refused (400;
    a node then sends its reports one by one)."""
    limits = app.settings.devices
    async with audited_refusals(app, who.context, "sighting.submit",
                                {"batch": len(body.reports)}):
        # Charged in full: a batch must not inject more than the same reports sent one
        # by one could (the limit bounds what one stolen key can inject).
        if len(body.reports) > limits.submit_burst:
            raise InvalidInputError(
                f"a batch may hold at most devices.submit_burst ({limits.submit_burst}) "
                f"reports; this one holds {len(body.reports)}")
        await run_in_threadpool(rate_limits(request).check, "submit", who.key.key_id,
                                len(body.reports))
    items: list[tuple[EdgeSighting, NodeTemplate] | InvalidInputError] = []
    for r in body.reports:
        try:
            node = _node_template(r.space, r.template, json.dumps(r.quality))
            assert node is not None  # a template is required by the model
            items.append((EdgeSighting(r.camera, r.track_id, r.first_seen, r.last_seen,
                                       r.frames), node))
        except InvalidInputError as exc:
            items.append(exc)
            await run_in_threadpool(record_refusal, app.oversight.trail, who.context,
                                    "sighting.submit",
                                    {"camera": r.camera, "track": r.track_id}, exc)
    valid = [i for i in items if not isinstance(i, InvalidInputError)]
    answers = iter(await run_in_threadpool(app.edge.submit_batch, who.context, valid))
    out = []
    for item in items:
        answer = item if isinstance(item, InvalidInputError) else next(answers)
        if isinstance(answer, FrvsError):
            status = next(s for cls, s in STATUS_FOR if isinstance(answer, cls))
            out.append(BatchItemPublic(status=status, error=answer.code,
                                       detail=answer.message))
        else:
            out.append(BatchItemPublic(
                status=200 if answer.replayed else 201,
                result=SubmittedSightingPublic.model_validate(answer.as_dict())))
    return out
