"""/v1/stats (auditor, admin): counts per period for transparency reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Auditor
from frvs.api.deps import AppDep
from frvs.core.times import check_time
from frvs.oversight.stats import Period

router = APIRouter(prefix="/v1", tags=["stats"])


class StatsBucketPublic(BaseModel):
    start: datetime
    end: datetime
    searches: int
    searches_by_purpose: dict[str, int] = Field(examples=[{"missing person": 3}])
    verifications: int
    enrolments: int = Field(description="Images enrolled.")
    deletions: int = Field(description="Subjects deleted, erased or purged.")
    exports: int
    alerts_raised: int
    alerts_confirmed: int
    alerts_dismissed: int
    identity_checks: int = Field(0, description="Identity checks run (refusals not "
                                 "counted).")
    identity_checks_verified: int = Field(0, description="Of those, verified: the face "
                                          "matched the document and liveness passed.")
    identity_checks_liveness_failed: int = Field(0, description="Of those, failed "
                                                 "liveness (a photo held up, a challenge "
                                                 "not followed, ...).")
    dismissed_share: float | None = Field(description="Dismissed / reviewed alerts: the "
                                          "observed false-alert rate.")


class StatsPublic(BaseModel):
    period: Period
    since: datetime
    until: datetime
    buckets: list[StatsBucketPublic]


@router.get("/stats", operation_id="get_stats", response_model=StatsPublic)
async def get_stats(app: AppDep, _: Auditor, period: Period = Period.DAY,
                    since: datetime | None = None, until: datetime | None = None
                    ) -> StatsPublic:
    """Searches by purpose, verifications, enrolments, deletions, exports and alerts
    (raised, confirmed, dismissed, share dismissed) per day, week or month; default:
    the last 30 days."""
    end = check_time(until, "until") if until is not None else datetime.now(UTC)
    start = check_time(since, "since") if since is not None else end - timedelta(days=30)
    buckets = await run_in_threadpool(app.oversight.stats.compute, start, end, period)
    return StatsPublic(period=period, since=start, until=end,
                       buckets=[StatsBucketPublic.model_validate(b.as_dict()) for b in buckets])
