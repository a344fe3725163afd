"""What the video concepts hold about a subject, as ``SubjectRecords`` sources for
export and erasure: sightings that matched them, alerts about them, attendance, and the
events and webhook deliveries made of those alerts.

Erasure runs inside the caller's transaction (the subject's own deletion and its
``subject.erase`` entry commit with it); files to remove are returned and removed after
the commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from frvs.alerts.tables import AlertReviewRow, AlertRow
from frvs.attendance.tables import AttendanceEventRow
from frvs.core.caller import subject_ref
from frvs.oversight.models import Erased
from frvs.storage.events import EventRow
from frvs.storage.store import Store
from frvs.storage.webhooks import WebhookDeliveryRow
from frvs.video.tables import SightingRow


class SightingRecords:
    """Sightings whose decision or best candidate named the subject. Erasure drops the
    match references (the sighting of an unknown face stays until its own retention)."""

    kind = "sightings"

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def _naming(gallery: str, external_id: str) -> Any:
        return (SightingRow.gallery == gallery) & or_(
            SightingRow.subject == external_id, SightingRow.best_subject == external_id)

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            rows = uow.session.scalars(select(SightingRow).where(
                self._naming(gallery, external_id)).order_by(SightingRow.id))
            return [{"id": r.id, "camera": r.camera, "track": r.track_id,
                     "first_seen": r.first_seen.isoformat(),
                     "last_seen": r.last_seen.isoformat(), "subject": r.subject,
                     "score": r.score, "best_subject": r.best_subject,
                     "best_score": r.best_score, "crop": r.crop_path,
                     "expires_at": r.expires_at.isoformat()} for r in rows]

    def erase(self, session: Session, gallery: str, external_id: str) -> Erased:
        matched = session.execute(
            update(SightingRow).where(SightingRow.gallery == gallery,
                                      SightingRow.subject == external_id)
            .values(subject=None, score=None)).rowcount  # type: ignore[attr-defined]
        best = session.execute(
            update(SightingRow).where(SightingRow.gallery == gallery,
                                      SightingRow.best_subject == external_id)
            .values(best_subject=None, best_score=None)).rowcount  # type: ignore[attr-defined]
        session.execute(
            update(SightingRow).where(SightingRow.gallery == gallery,
                                      SightingRow.subject.is_(None),
                                      SightingRow.best_subject.is_(None))
            .values(gallery=None))
        return Erased(int(max(matched, best)))


class AlertRecords:
    """Alerts about the subject, with their reviews; erasure deletes them and their
    evidence crops (the audit trail keeps that they were raised and reviewed)."""

    kind = "alerts"

    def __init__(self, store: Store) -> None:
        self._store = store

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            rows = list(uow.session.scalars(select(AlertRow).where(
                AlertRow.gallery == gallery, AlertRow.subject == external_id)
                .order_by(AlertRow.id)))
            reviews: dict[int, list[dict[str, Any]]] = {r.id: [] for r in rows}
            for review in uow.session.scalars(select(AlertReviewRow).where(
                    AlertReviewRow.alert_id.in_(list(reviews)))):
                reviews[review.alert_id].append({"reviewer": review.reviewer,
                                                 "verdict": review.verdict,
                                                 "note": review.note,
                                                 "at": review.at.isoformat()})
            return [{"id": r.id, "camera": r.camera, "at": r.at.isoformat(), "score": r.score,
                     "threshold": r.threshold, "status": r.status, "crop": r.crop_path,
                     "reviews": reviews[r.id]} for r in rows]

    def erase(self, session: Session, gallery: str, external_id: str) -> Erased:
        where = (AlertRow.gallery == gallery) & (AlertRow.subject == external_id)
        rows = list(session.execute(select(AlertRow.id, AlertRow.crop_path).where(where)))
        ids = [r[0] for r in rows]
        if ids:
            session.execute(delete(AlertReviewRow).where(AlertReviewRow.alert_id.in_(ids)))
            session.execute(delete(AlertRow).where(AlertRow.id.in_(ids)))
        return Erased(len(rows), tuple(r[1] for r in rows if r[1]))


class AttendanceRecords:
    kind = "attendance"

    def __init__(self, store: Store) -> None:
        self._store = store

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            rows = uow.session.scalars(select(AttendanceEventRow).where(
                AttendanceEventRow.gallery == gallery,
                AttendanceEventRow.subject == external_id).order_by(AttendanceEventRow.at))
            return [{"camera": r.camera, "direction": r.direction, "at": r.at.isoformat(),
                     "score": r.score} for r in rows]

    def erase(self, session: Session, gallery: str, external_id: str) -> Erased:
        removed = session.execute(delete(AttendanceEventRow).where(
            AttendanceEventRow.gallery == gallery,
            AttendanceEventRow.subject == external_id)).rowcount  # type: ignore[attr-defined]
        return Erased(int(removed))


class EventRecords:
    """Events of the live streams' log about the subject (alerts raised and decided) and
    the webhook deliveries made of them; erasure deletes both (a client resuming past
    them simply does not get them)."""

    kind = "events"

    def __init__(self, store: Store) -> None:
        self._store = store

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            rows = uow.session.scalars(select(EventRow).where(
                EventRow.subject_ref == subject_ref(gallery, external_id))
                .order_by(EventRow.id))
            return [{"id": r.id, "kind": r.kind, "at": r.at.isoformat(), "data": r.data}
                    for r in rows]

    def erase(self, session: Session, gallery: str, external_id: str) -> Erased:
        ids = list(session.scalars(select(EventRow.id).where(
            EventRow.subject_ref == subject_ref(gallery, external_id))))
        if ids:
            session.execute(delete(WebhookDeliveryRow).where(
                WebhookDeliveryRow.event_id.in_(ids)))
            session.execute(delete(EventRow).where(EventRow.id.in_(ids)))
        return Erased(len(ids), ())
