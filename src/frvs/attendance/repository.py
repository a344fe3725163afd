"""The attendance repository: the only code that turns attendance event rows into
records and back (reached as ``uow.repo(AttendanceRepository)``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from frvs.attendance.models import AttendanceEvent
from frvs.attendance.tables import AttendanceEventRow
from frvs.core.errors import NotFoundError
from frvs.storage.repositories import gallery_key
from frvs.storage.schema import GalleryRow
from frvs.video.models import CameraRole


def _event(row: AttendanceEventRow, gallery: str) -> AttendanceEvent:
    return AttendanceEvent(gallery, row.subject, row.camera, CameraRole(row.direction),
                           row.at, row.score)


def _named() -> Select[AttendanceEventRow, str]:
    return select(AttendanceEventRow, GalleryRow.name).join(
        GalleryRow, GalleryRow.id == AttendanceEventRow.gallery_id)


class AttendanceRepository:
    """Entry and exit events of subjects of attendance galleries."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, event: AttendanceEvent) -> None:
        gallery_id = self._s.scalar(select(GalleryRow.id).where(
            GalleryRow.name == event.gallery))
        if gallery_id is None:
            raise NotFoundError(f"no gallery named {event.gallery!r}")
        self._s.add(AttendanceEventRow(
            gallery_id=gallery_id, subject=event.subject, camera=event.camera,
            direction=event.direction.value, at=event.at, score=event.score))

    def between(self, start: datetime, end: datetime,
                gallery: str | None = None) -> list[AttendanceEvent]:
        """Events in [start, end), of one gallery when given, in time order."""
        stmt = _named().where(
            AttendanceEventRow.at >= start, AttendanceEventRow.at < end,
        ).order_by(AttendanceEventRow.at)
        if gallery is not None:
            stmt = stmt.where(GalleryRow.name == gallery)
        return [_event(*r) for r in self._s.execute(stmt)]

    def about(self, gallery: str, subject: str) -> list[AttendanceEvent]:
        """One subject's events, in time order."""
        return [_event(*r) for r in self._s.execute(_named().where(
            GalleryRow.name == gallery, AttendanceEventRow.subject == subject)
            .order_by(AttendanceEventRow.at))]

    def delete_about(self, gallery: str, subject: str) -> int:
        """Delete one subject's events: how many."""
        result = self._s.execute(delete(AttendanceEventRow).where(
            AttendanceEventRow.gallery_id == gallery_key(gallery),
            AttendanceEventRow.subject == subject))
        return int(getattr(result, "rowcount", 0) or 0)
