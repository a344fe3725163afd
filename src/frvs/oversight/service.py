"""The oversight services of one application, and who "the local user" is."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from frvs.oversight.audit import AuditTrail
from frvs.oversight.export import SubjectRights
from frvs.oversight.keys import KeyService
from frvs.oversight.models import Actor, AuditContext
from frvs.oversight.sightings import SightingSearch
from frvs.oversight.stats import StatsService
from frvs.pipeline.services import VideoServices
from frvs.storage.store import Store


def local_context() -> AuditContext:
    """The person at the command line: their OS user, and the case reference and purpose
    they declared in ``FRVS_CASE_REFERENCE`` / ``FRVS_PURPOSE`` (recorded when set)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid:{os.getuid()}"
    return AuditContext(Actor("cli", user), os.environ.get("FRVS_CASE_REFERENCE") or None,
                        os.environ.get("FRVS_PURPOSE") or None)


SYSTEM = AuditContext(Actor("system", "frvs"))
"""FRVS acting on its own (retention purges, camera pipelines)."""


@dataclass(frozen=True, slots=True)
class Oversight:
    """Audit trail, keys, subject export/erasure and statistics."""

    trail: AuditTrail
    keys: KeyService
    rights: SubjectRights
    stats: StatsService
    sightings: SightingSearch
    local: AuditContext

    def attach_video(self, video: VideoServices, store: Store) -> None:
        """Audit alerts raised and reviewed, and export/erase video records of subjects."""
        from frvs.oversight.records import AlertRecords, AttendanceRecords, SightingRecords
        from frvs.oversight.video_audit import AlertAuditor

        video.alerts.add_notifier(AlertAuditor(self.trail, self.local))
        for source in (SightingRecords(store), AlertRecords(store), AttendanceRecords(store)):
            self.rights.add_source(source)
