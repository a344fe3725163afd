"""The attendance repository: the only code that turns attendance event rows into
records and back (reached as ``uow.repo(AttendanceRepository)``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from frvs.attendance.models import AttendanceEvent
from frvs.attendance.tables import AttendanceEventRow
from frvs.video.models import CameraRole


def _event(row: AttendanceEventRow) -> AttendanceEvent:
    return AttendanceEvent(row.gallery, row.subject, row.camera, CameraRole(row.direction),
                           row.at, row.score)


class AttendanceRepository:
    """Entry and exit events of subjects of attendance galleries."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, event: AttendanceEvent) -> None:
        self._s.add(AttendanceEventRow(
            gallery=event.gallery, subject=event.subject, camera=event.camera,
            direction=event.direction.value, at=event.at, score=event.score))

    def between(self, start: datetime, end: datetime,
                gallery: str | None = None) -> list[AttendanceEvent]:
        """Events in [start, end), of one gallery when given, in time order."""
        stmt = select(AttendanceEventRow).where(
            AttendanceEventRow.at >= start, AttendanceEventRow.at < end,
        ).order_by(AttendanceEventRow.at)
        if gallery is not None:
            stmt = stmt.where(AttendanceEventRow.gallery == gallery)
        return [_event(r) for r in self._s.scalars(stmt)]

    def about(self, gallery: str, subject: str) -> list[AttendanceEvent]:
        """One subject's events, in time order."""
        return [_event(r) for r in self._s.scalars(select(AttendanceEventRow).where(
            AttendanceEventRow.gallery == gallery, AttendanceEventRow.subject == subject)
            .order_by(AttendanceEventRow.at))]

    def delete_about(self, gallery: str, subject: str) -> int:
        """Delete one subject's events: how many."""
        result = self._s.execute(delete(AttendanceEventRow).where(
            AttendanceEventRow.gallery == gallery, AttendanceEventRow.subject == subject))
        return int(getattr(result, "rowcount", 0) or 0)
