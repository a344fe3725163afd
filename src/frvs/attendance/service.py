"""Attendance events and the daily report.

Time present pairs each entry with the next exit; an entry with no exit after it adds
nothing (the person may still be in), so a forgotten exit never inflates presence.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from frvs.attendance.models import AttendanceEvent
from frvs.attendance.repository import AttendanceRepository
from frvs.core.errors import NotFoundError
from frvs.storage.store import Store, UnitOfWork
from frvs.video.models import CameraRole, TrackDecision

__all__ = ["ATTENDANCE", "AttendanceEvent", "AttendanceService", "PresenceLine", "presence",
           "report_csv"]

ATTENDANCE = "attendance"


@dataclass(frozen=True, slots=True)
class PresenceLine:
    """One subject's day."""

    subject: str
    first_in: datetime | None
    last_out: datetime | None
    present_seconds: float
    entries: int
    exits: int
    name: str | None = None
    """The subject's display name as enrolled (None when none was given)."""

    def as_dict(self) -> dict[str, object]:
        return {"subject": self.subject, "name": self.name,
                "first_in": self.first_in.isoformat() if self.first_in else None,
                "last_out": self.last_out.isoformat() if self.last_out else None,
                "present_seconds": round(self.present_seconds, 1),
                "entries": self.entries, "exits": self.exits}


def presence(subject: str, events: Sequence[AttendanceEvent]) -> PresenceLine:
    """Fold one subject's events (any order) into first in, last out and time present."""
    ordered = sorted(events, key=lambda e: e.at)
    entries = [e.at for e in ordered if e.direction is CameraRole.ENTRY]
    exits = [e.at for e in ordered if e.direction is CameraRole.EXIT]
    present = 0.0
    inside_since: datetime | None = None
    for event in ordered:
        if event.direction is CameraRole.ENTRY and inside_since is None:
            inside_since = event.at
        elif event.direction is CameraRole.EXIT and inside_since is not None:
            present += (event.at - inside_since).total_seconds()
            inside_since = None
    return PresenceLine(subject, entries[0] if entries else None,
                        exits[-1] if exits else None, present, len(entries), len(exits))


class AttendanceService:
    """Records attendance events and reports them per day."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, decision: TrackDecision, role: CameraRole) -> AttendanceEvent | None:
        """An event for a track identified in an attendance gallery by an entry or exit
        camera; None otherwise."""
        if decision.gallery_kind != ATTENDANCE or role is CameraRole.GENERAL:
            return None
        with self._store.unit(write=True) as uow:
            return self.record_in(uow, decision, role)

    @staticmethod
    def record_in(uow: UnitOfWork, decision: TrackDecision,
                  role: CameraRole) -> AttendanceEvent | None:
        """``record`` inside ``uow``'s transaction (edge intake: with its idempotency key)."""
        if decision.gallery_kind != ATTENDANCE or role is CameraRole.GENERAL:
            return None
        if uow.galleries.find(decision.gallery) is None:
            return None  # deleted since the track was matched, with its events
        event = AttendanceEvent(decision.gallery, decision.subject, decision.camera, role,
                                decision.best_shot.captured_at, decision.score)
        uow.repo(AttendanceRepository).add(event)
        return event

    def events(self, day: date, gallery: str | None = None,
               zone: tzinfo = UTC) -> list[AttendanceEvent]:
        start = datetime.combine(day, time(0), zone)
        with self._store.unit() as uow:
            return uow.repo(AttendanceRepository).between(start, start + timedelta(days=1),
                                                          gallery)

    def report(self, day: date, gallery: str | None = None,
               zone: tzinfo = UTC) -> list[PresenceLine]:
        """Each subject's day, with the display name they were enrolled under; a
        gallery that does not exist is ``NotFoundError`` (not an empty report)."""
        if gallery is not None:
            with self._store.unit() as uow:
                if uow.galleries.find(gallery) is None:
                    raise NotFoundError(f"gallery {gallery!r} not found")
        by_subject: dict[str, list[AttendanceEvent]] = {}
        for event in self.events(day, gallery, zone):
            by_subject.setdefault(event.subject, []).append(event)
        names = self._names({(e.gallery, e.subject) for ev in by_subject.values() for e in ev})
        return [replace(presence(s, ev), name=names.get(s)) for s, ev in sorted(by_subject.items())]

    def _names(self, keys: set[tuple[str, str]]) -> dict[str, str]:
        """Display names by subject id, of the (gallery, subject) pairs given."""
        if not keys:
            return {}
        with self._store.unit() as uow:
            named = uow.subjects.display_names(keys)
        return {subject: name for (_, subject), name in named.items()}


def report_csv(lines: Sequence[PresenceLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["subject", "name", "first_in", "last_out", "present_seconds", "entries",
                     "exits"])
    for line in lines:
        d = line.as_dict()
        writer.writerow([d["subject"], d["name"] or "", d["first_in"] or "", d["last_out"] or "",
                         d["present_seconds"], d["entries"], d["exits"]])
    return out.getvalue()
