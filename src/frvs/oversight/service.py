"""The oversight services of one application."""

from __future__ import annotations

from dataclasses import dataclass

from frvs.oversight.audit import AuditTrail
from frvs.oversight.export import SubjectRights
from frvs.oversight.keys import KeyService
from frvs.oversight.sightings import SightingSearch
from frvs.oversight.stats import StatsService
from frvs.storage.store import Store


@dataclass(frozen=True, slots=True)
class Oversight:
    """Audit trail, keys, subject export/erasure and statistics."""

    trail: AuditTrail
    keys: KeyService
    rights: SubjectRights
    stats: StatsService
    sightings: SightingSearch

    def attach_video(self, store: Store) -> None:
        """Export and erase video records of subjects (alerts audit themselves)."""
        from frvs.oversight.records import (
            AlertRecords,
            AttendanceRecords,
            EventRecords,
            SightingRecords,
        )

        for source in (SightingRecords(store), AlertRecords(store), AttendanceRecords(store),
                       EventRecords(store)):
            self.rights.add_source(source)
