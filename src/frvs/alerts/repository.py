"""The alerts' repository: the only code that turns alert, review and rule rows into
records and back (reached as ``uow.repo(AlertRepository)``, inside the caller's
transaction). Rows refer to their gallery by key; records, and callers, by its name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, delete, or_, select
from sqlalchemy.orm import Session

from frvs.alerts.models import Alert, AlertRule, AlertStatus, Review, Verdict
from frvs.alerts.tables import AlertReviewRow, AlertRow, AlertRuleRow
from frvs.core.errors import NotFoundError
from frvs.storage.repositories import gallery_key
from frvs.storage.schema import GalleryRow


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


def _alert(row: AlertRow, gallery: str, reviews: Iterable[AlertReviewRow] = ()) -> Alert:
    return Alert(
        id=row.id, camera=row.camera, track_id=row.track_id, gallery=gallery,
        subject=row.subject, score=row.score, threshold=row.threshold, attempts=row.attempts,
        at=row.at, frame_time=row.frame_time, quality=row.quality, crop_path=row.crop_path,
        status=AlertStatus(row.status), two_person=row.two_person,
        reviews=tuple(_review(r) for r in reviews),
    )


class AlertRepository:
    """Alerts with their reviews, and the per-gallery alert rules."""

    def __init__(self, session: Session) -> None:
        self._s = session

    @staticmethod
    def _named() -> Select[AlertRow, str]:
        return select(AlertRow, GalleryRow.name).join(GalleryRow,
                                                      GalleryRow.id == AlertRow.gallery_id)

    def _gallery_id(self, name: str) -> int:
        found = self._s.scalar(select(GalleryRow.id).where(GalleryRow.name == name))
        if found is None:
            raise NotFoundError(f"no gallery named {name!r}")
        return int(found)

    def rule(self, gallery: str) -> AlertRule | None:
        """The gallery's own rule (None: it has none, the defaults apply)."""
        row = self._s.scalar(select(AlertRuleRow).where(
            AlertRuleRow.gallery_id == gallery_key(gallery)))
        return None if row is None else AlertRule(gallery, row.two_person,
                                                  row.suppress_seconds)

    def set_rule(self, rule: AlertRule) -> None:
        self._s.merge(AlertRuleRow(gallery_id=self._gallery_id(rule.gallery),
                                   two_person=rule.two_person,
                                   suppress_seconds=rule.suppress_seconds))

    def raised_between(self, gallery: str, subject: str, camera: str, since: datetime,
                       until: datetime) -> bool:
        """Whether an alert for ``subject`` on ``camera`` was raised in [since, until]."""
        return self._s.scalar(select(AlertRow.id).where(
            AlertRow.gallery_id == gallery_key(gallery), AlertRow.subject == subject,
            AlertRow.camera == camera, AlertRow.at >= since,
            AlertRow.at <= until).limit(1)) is not None

    def add(self, new: NewAlert, now: datetime) -> Alert:
        """Store a new alert (status ``new``, not reviewed)."""
        row = AlertRow(
            camera=new.camera, track_id=new.track_id,
            gallery_id=self._gallery_id(new.gallery),
            subject=new.subject, score=new.score, threshold=new.threshold,
            attempts=new.attempts, at=new.at, frame_time=new.frame_time,
            quality=new.quality, crop_path=new.crop_path, status=AlertStatus.NEW.value,
            two_person=new.two_person, created_at=now, decided_at=None)
        self._s.add(row)
        self._s.flush()
        return _alert(row, new.gallery)

    def get(self, alert_id: int, *, lock: bool = False) -> Alert | None:
        """The alert with its reviews; ``lock`` holds its row until the transaction ends
        (``SELECT ... FOR UPDATE`` on PostgreSQL), so reviews are decided one at a time."""
        stmt = self._named().where(AlertRow.id == alert_id)
        found = self._s.execute(stmt.with_for_update(of=AlertRow) if lock else stmt).first()
        if found is None:
            return None
        row, gallery = found
        return _alert(row, gallery, self._reviews([alert_id])[alert_id])

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
        stmt = (self._named().order_by(AlertRow.at.desc(), AlertRow.id.desc())
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
        return self._with_reviews(stmt)

    def about(self, gallery: str, subject: str) -> list[Alert]:
        """Every alert about one subject, oldest first, with its reviews."""
        return self._with_reviews(self._named().where(
            GalleryRow.name == gallery, AlertRow.subject == subject).order_by(AlertRow.id))

    def _with_reviews(self, stmt: Select[AlertRow, str]) -> list[Alert]:
        rows = [(row, str(gallery)) for row, gallery in self._s.execute(stmt)]
        reviews = self._reviews([r.id for r, _ in rows])
        return [_alert(r, gallery, reviews[r.id]) for r, gallery in rows]

    def delete_about(self, gallery: str, subject: str) -> tuple[int, tuple[str, ...]]:
        """Delete every alert about one subject with its reviews: how many, and their
        evidence crops (for the caller to remove once the deletion commits)."""
        rows = list(self._s.execute(select(AlertRow.id, AlertRow.crop_path).where(
            AlertRow.gallery_id == gallery_key(gallery), AlertRow.subject == subject)))
        ids = [r[0] for r in rows]
        if ids:
            self._s.execute(delete(AlertReviewRow).where(AlertReviewRow.alert_id.in_(ids)))
            self._s.execute(delete(AlertRow).where(AlertRow.id.in_(ids)))
        return len(rows), tuple(r[1] for r in rows if r[1])

    def clear_evidence(self, gallery: str, before: datetime) -> list[str]:
        """Forget the evidence crops of the gallery's decided alerts raised at or before
        ``before``: the crops, for the caller to remove once this commits."""
        rows = list(self._s.scalars(select(AlertRow).where(
            AlertRow.gallery_id == gallery_key(gallery),
            AlertRow.status != AlertStatus.NEW.value, AlertRow.crop_path.is_not(None),
            AlertRow.at <= before)))
        files = [r.crop_path for r in rows if r.crop_path]
        for row in rows:
            row.crop_path = None
        return files

    def crop_paths(self) -> set[str]:
        """Every evidence crop an alert refers to."""
        return {c for c in self._s.scalars(select(AlertRow.crop_path).where(
            AlertRow.crop_path.is_not(None))) if c}

    def _reviews(self, alert_ids: Sequence[int]) -> dict[int, list[AlertReviewRow]]:
        """The reviews of ``alert_ids``, each alert's in the order they were made."""
        found: dict[int, list[AlertReviewRow]] = {i: [] for i in alert_ids}
        if alert_ids:
            for row in self._s.scalars(select(AlertReviewRow).where(
                    AlertReviewRow.alert_id.in_(list(alert_ids))).order_by(AlertReviewRow.id)):
                found[row.alert_id].append(row)
        return found
