"""What the video concepts hold about a subject, as ``SubjectRecords`` sources for
export and erasure: sightings that matched them, alerts about them, attendance, and the
events and webhook deliveries made of those alerts.

Erasure runs inside the caller's transaction (the subject's own deletion and its
``subject.erase`` entry commit with it); files to remove are returned and removed after
the commit."""

from __future__ import annotations

from typing import Any

from frvs.alerts.repository import AlertRepository
from frvs.attendance.repository import AttendanceRepository
from frvs.core.caller import subject_ref
from frvs.oversight.models import Erased
from frvs.storage.events import EventRepository
from frvs.storage.store import Store, UnitOfWork
from frvs.video.repository import SightingRepository


class SightingRecords:
    """Sightings whose decision or best candidate named the subject. Erasure drops the
    match references (the sighting of an unknown face stays until its own retention)."""

    kind = "sightings"

    def __init__(self, store: Store) -> None:
        self._store = store

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            found = uow.repo(SightingRepository).about(gallery, external_id)
        return [{"id": s.id, "camera": s.camera, "track": s.track_id,
                 "first_seen": s.first_seen.isoformat(),
                 "last_seen": s.last_seen.isoformat(), "subject": s.subject,
                 "score": s.score, "best_subject": s.best_subject,
                 "best_score": s.best_score, "crop": s.crop_path,
                 "expires_at": s.expires_at.isoformat()} for s in found]

    def erase(self, uow: UnitOfWork, gallery: str, external_id: str) -> Erased:
        return Erased(uow.repo(SightingRepository).forget_subject(gallery, external_id))


class AlertRecords:
    """Alerts about the subject, with their reviews; erasure deletes them and their
    evidence crops (the audit trail keeps that they were raised and reviewed)."""

    kind = "alerts"

    def __init__(self, store: Store) -> None:
        self._store = store

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            found = uow.repo(AlertRepository).about(gallery, external_id)
        return [{"id": a.id, "camera": a.camera, "at": a.at.isoformat(), "score": a.score,
                 "threshold": a.threshold, "status": a.status.value, "crop": a.crop_path,
                 "reviews": [{"reviewer": r.reviewer, "verdict": r.verdict.value,
                              "note": r.note, "at": r.at.isoformat()} for r in a.reviews]}
                for a in found]

    def erase(self, uow: UnitOfWork, gallery: str, external_id: str) -> Erased:
        count, crops = uow.repo(AlertRepository).delete_about(gallery, external_id)
        return Erased(count, crops)


class AttendanceRecords:
    kind = "attendance"

    def __init__(self, store: Store) -> None:
        self._store = store

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            found = uow.repo(AttendanceRepository).about(gallery, external_id)
        return [{"camera": e.camera, "direction": e.direction.value, "at": e.at.isoformat(),
                 "score": e.score} for e in found]

    def erase(self, uow: UnitOfWork, gallery: str, external_id: str) -> Erased:
        return Erased(uow.repo(AttendanceRepository).delete_about(gallery, external_id))


class EventRecords:
    """Events of the live streams' log about the subject (alerts raised and decided) and
    the webhook deliveries made of them; erasure deletes both (a client resuming past
    them simply does not get them)."""

    kind = "events"

    def __init__(self, store: Store) -> None:
        self._store = store

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        with self._store.unit() as uow:
            found = uow.repo(EventRepository).about(subject_ref(gallery, external_id))
        return [{"id": e.id, "kind": e.kind, "at": e.at.isoformat(), "data": e.data}
                for e in found]

    def erase(self, uow: UnitOfWork, gallery: str, external_id: str) -> Erased:
        return Erased(uow.repo(EventRepository).delete_about(subject_ref(gallery, external_id)),
                      ())
