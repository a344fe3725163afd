"""Statistics for oversight and transparency reports, counted from the audit trail.

Per period: searches (identify, cross-match, sighting search) by declared purpose,
verifications, enrolments (images enrolled), deletions (subjects deleted, erased or
purged), exports, and alerts raised, confirmed and dismissed; the share dismissed is
the observed false-alert rate. Counting from the trail means the figures cover CLI and
API alike and cannot disagree with the record auditors check.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from frvs.core.errors import InvalidInputError
from frvs.oversight.audit import AuditTrail
from frvs.oversight.models import AuditEntry

SEARCH_ACTIONS = frozenset({"identify", "crossmatch", "sightings.search", "sightings.list"})
DELETE_ACTIONS = frozenset({"subject.delete", "subject.erase", "purge", "gallery.delete"})
MAX_BUCKETS = 1000


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_start(at: datetime, period: Period) -> datetime:
    """The UTC start of the day, ISO week (Monday) or month holding ``at``."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_start(start: datetime, period: Period) -> datetime:
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(slots=True)
class StatsBucket:
    """The counts of one period."""

    start: datetime
    end: datetime
    searches: Counter[str] = field(default_factory=Counter)
    verifications: int = 0
    enrolments: int = 0
    deletions: int = 0
    exports: int = 0
    alerts_raised: int = 0
    alerts_confirmed: int = 0
    alerts_dismissed: int = 0
    identity_checks: int = 0
    identity_checks_verified: int = 0
    identity_checks_liveness_failed: int = 0

    @property
    def dismissed_share(self) -> float | None:
        """Dismissed / reviewed alerts: the observed false-alert rate (None: none reviewed)."""
        reviewed = self.alerts_confirmed + self.alerts_dismissed
        return None if reviewed == 0 else self.alerts_dismissed / reviewed

    def add(self, entry: AuditEntry) -> None:
        if entry.outcome != "ok":
            return
        action, result = entry.action, entry.result
        if action in SEARCH_ACTIONS:
            self.searches[entry.purpose or "(none given)"] += 1
        elif action == "verify":
            self.verifications += 1
        elif action == "identity_check":
            self.identity_checks += 1
            self.identity_checks_verified += result.get("decision") == "verified"
            self.identity_checks_liveness_failed += result.get("liveness_passed") is False
        elif action == "enrol":
            # One entry per image now (with its template id); older batch entries counted
            # their images in "enrolled".
            if "template_id" in result:
                self.enrolments += 1
            else:
                self.enrolments += int(result.get("enrolled", 0))
        elif action in DELETE_ACTIONS:
            self.deletions += int(result.get("subjects", 1))
        elif action == "subject.export":
            self.exports += 1
        elif action == "alert.raise":
            self.alerts_raised += 1
        elif action == "alert.review":
            decision = str(result.get("decision", ""))
            self.alerts_confirmed += decision == "confirmed"
            self.alerts_dismissed += decision == "dismissed"

    def as_dict(self) -> dict[str, object]:
        share = self.dismissed_share
        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "searches": sum(self.searches.values()),
            "searches_by_purpose": dict(sorted(self.searches.items())),
            "verifications": self.verifications, "enrolments": self.enrolments,
            "deletions": self.deletions, "exports": self.exports,
            "alerts_raised": self.alerts_raised, "alerts_confirmed": self.alerts_confirmed,
            "alerts_dismissed": self.alerts_dismissed,
            "dismissed_share": None if share is None else round(share, 4),
            "identity_checks": self.identity_checks,
            "identity_checks_verified": self.identity_checks_verified,
            "identity_checks_liveness_failed": self.identity_checks_liveness_failed,
        }


class StatsService:
    """Counts per period between two instants, from the audit trail."""

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    def compute(self, since: datetime, until: datetime, period: Period) -> list[StatsBucket]:
        if since.tzinfo is None or until.tzinfo is None:
            raise InvalidInputError("since and until need a time zone (UTC: a trailing Z)")
        if until <= since:
            raise InvalidInputError("until must be after since")
        buckets: dict[datetime, StatsBucket] = {}
        start = period_start(since, period)
        while start < until:
            if len(buckets) >= MAX_BUCKETS:
                raise InvalidInputError(f"at most {MAX_BUCKETS} periods per request; "
                                        "choose a longer period or a shorter range")
            buckets[start] = StatsBucket(start, next_start(start, period))
            start = buckets[start].end
        for entry in self._trail.between(since, until):
            buckets[period_start(entry.at, period)].add(entry)
        return list(buckets.values())
