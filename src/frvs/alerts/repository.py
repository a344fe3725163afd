"""The alerts' repository: the only code that turns alert, review and rule rows into
records and back (reached as ``uow.repo(AlertRepository)``, inside the caller's
transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from frvs.alerts.models import Alert, AlertRule, AlertStatus, Review, Verdict
from frvs.alerts.tables import AlertReviewRow, AlertRow, AlertRuleRow


@dataclass(frozen=True, slots=True)
class NewAlert:
    """What an alert is raised with (its id, status and reviews come from the store)."""

    camera: str
    track_id: int
    gallery: str
    subject: str
    score: float
    threshold: float
    attempts: int
    at: datetime
    frame_time: float
    quality: float
    crop_path: str | None
    two_person: bool


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a listing wants, newest first; ``before`` is the (time, id) of the
    last alert of a previous page."""

    status: AlertStatus | None = None
    camera: str | None = None
    since: datetime | None = None
    limit: int = 100
    before: tuple[datetime, int] | None = None


def _review(row: AlertReviewRow) -> Review:
    return Review(row.reviewer, Verdict(row.verdict), row.note, row.at, row.holder)


def _alert(row: AlertRow, reviews: Iterable[AlertReviewRow] = ()) -> Alert:
    return Alert(
        id=row.id, camera=row.camera, track_id=row.track_id, gallery=row.gallery,
        subject=row.subject, score=row.score, threshold=row.threshold, attempts=row.attempts,
        at=row.at, frame_time=row.frame_time, quality=row.quality, crop_path=row.crop_path,
        status=AlertStatus(row.status), two_person=row.two_person,
        reviews=tuple(_review(r) for r in reviews),
    )


class AlertRepository:
    """Alerts with their reviews, and the per-gallery alert rules."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def rule(self, gallery: str) -> AlertRule | None:
        """The gallery's own rule (None: it has none, the defaults apply)."""
        row = self._s.get(AlertRuleRow, gallery)
        return None if row is None else AlertRule(row.gallery, row.two_person,
                                                  row.suppress_seconds)

    def set_rule(self, rule: AlertRule) -> None:
        self._s.merge(AlertRuleRow(gallery=rule.gallery, two_person=rule.two_person,
                                   suppress_seconds=rule.suppress_seconds))

    def raised_between(self, gallery: str, subject: str, camera: str, since: datetime,
                       until: datetime) -> bool:
        """Whether an alert for ``subject`` on ``camera`` was raised in [since, until]."""
        return self._s.scalar(select(AlertRow.id).where(
            AlertRow.gallery == gallery, AlertRow.subject == subject,
            AlertRow.camera == camera, AlertRow.at >= since,
            AlertRow.at <= until).limit(1)) is not None

    def add(self, new: NewAlert, now: datetime) -> Alert:
        """Store a new alert (status ``new``, not reviewed)."""
        row = AlertRow(
            camera=new.camera, track_id=new.track_id, gallery=new.gallery,
            subject=new.subject, score=new.score, threshold=new.threshold,
            attempts=new.attempts, at=new.at, frame_time=new.frame_time,
            quality=new.quality, crop_path=new.crop_path, status=AlertStatus.NEW.value,
            two_person=new.two_person, created_at=now, decided_at=None)
        self._s.add(row)
        self._s.flush()
        return _alert(row)

    def get(self, alert_id: int, *, lock: bool = False) -> Alert | None:
        """The alert with its reviews; ``lock`` holds its row until the transaction ends
        (``SELECT ... FOR UPDATE`` on PostgreSQL), so reviews are decided one at a time."""
        stmt = select(AlertRow).where(AlertRow.id == alert_id)
        row = self._s.scalar(stmt.with_for_update() if lock else stmt)
        return None if row is None else _alert(row, self._reviews([alert_id])[alert_id])

    def add_review(self, alert_id: int, review: Review, key_id: str | None) -> None:
        self._s.add(AlertReviewRow(alert_id=alert_id, reviewer=review.reviewer[:200],
                                   holder=review.holder, key_id=key_id,
                                   verdict=review.verdict.value, note=review.note,
                                   at=review.at))

    def decide(self, alert_id: int, status: AlertStatus, at: datetime) -> None:
        """Move the alert to ``status`` (decided at ``at`` unless still ``new``)."""
        row = self._s.get(AlertRow, alert_id)
        if row is None:
            return
        row.status = status.value
        if status is not AlertStatus.NEW:
            row.decided_at = at

    def newest_first(self, query: AlertFilter) -> list[Alert]:
        stmt = (select(AlertRow).order_by(AlertRow.at.desc(), AlertRow.id.desc())
                .limit(query.limit))
        if query.before is not None:
            at, last = query.before
            stmt = stmt.where(or_(AlertRow.at < at, and_(AlertRow.at == at,
                                                         AlertRow.id < last)))
        if query.status is not None:
            stmt = stmt.where(AlertRow.status == query.status.value)
        if query.camera is not None:
            stmt = stmt.where(AlertRow.camera == query.camera)
        if query.since is not None:
            stmt = stmt.where(AlertRow.at >= query.since)
        rows = list(self._s.scalars(stmt))
        reviews = self._reviews([r.id for r in rows])
        return [_alert(r, reviews[r.id]) for r in rows]

    def about(self, gallery: str, subject: str) -> list[Alert]:
        """Every alert about one subject, oldest first, with its reviews."""
        rows = list(self._s.scalars(select(AlertRow).where(
            AlertRow.gallery == gallery, AlertRow.subject == subject).order_by(AlertRow.id)))
        reviews = self._reviews([r.id for r in rows])
        return [_alert(r, reviews[r.id]) for r in rows]

    def delete_about(self, gallery: str, subject: str) -> tuple[int, tuple[str, ...]]:
        """Delete every alert about one subject with its reviews: how many, and their
        evidence crops (for the caller to remove once the deletion commits)."""
        rows = list(self._s.execute(select(AlertRow.id, AlertRow.crop_path).where(
            AlertRow.gallery == gallery, AlertRow.subject == subject)))
        ids = [r[0] for r in rows]
        if ids:
            self._s.execute(delete(AlertReviewRow).where(AlertReviewRow.alert_id.in_(ids)))
            self._s.execute(delete(AlertRow).where(AlertRow.id.in_(ids)))
        return len(rows), tuple(r[1] for r in rows if r[1])

    def _reviews(self, alert_ids: Sequence[int]) -> dict[int, list[AlertReviewRow]]:
        """The reviews of ``alert_ids``, each alert's in the order they were made."""
        found: dict[int, list[AlertReviewRow]] = {i: [] for i in alert_ids}
        if alert_ids:
            for row in self._s.scalars(select(AlertReviewRow).where(
                    AlertReviewRow.alert_id.in_(list(alert_ids))).order_by(AlertReviewRow.id)):
                found[row.alert_id].append(row)
        return found
