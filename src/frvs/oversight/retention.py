"""Retention: deleting what FRVS promises to keep only for a while.

One use case, ``Retention.run(caller)``: ``frvs purge`` runs it on demand as the person at
the command line, ``frvs serve`` on a schedule (``RetentionSchedule``) as the system
principal ``retention``. A run deletes

- subjects past their gallery's retention (``GalleryService.purge``: its own transaction
  and ``purge`` entry, naming the subjects);
- expired sightings, with their crops;
- the evidence (best-shot picture) of decided alerts older than their gallery's
  retention. An alert still waiting for review keeps its evidence, and so does every
  alert of a gallery without a retention period (until the alert or subject is erased).

The sightings and the evidence go in one transaction with the run's ``retention`` entry,
which counts everything the run deleted; their files are removed once it has committed.
Files nothing refers to any more (a crash between that commit and the removal) are swept
by the next run, after a grace period that spares the pictures of records about to commit.
Listings and searches never show an expired sighting, whether or not a run has deleted it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select

from frvs.alerts.repository import AlertRepository
from frvs.core.caller import AuditContext, AuditDraft, record_refusal, system_caller
from frvs.core.times import Clock
from frvs.galleries.models import DeletedSubject
from frvs.galleries.service import GalleryService
from frvs.oversight.repository import EdgeReportRepository
from frvs.oversight.tables import AuditEntryRow
from frvs.storage.store import Store, UnitOfWork
from frvs.storage.webhooks import WebhookRepository
from frvs.video.service import SightingService

logger = logging.getLogger(__name__)

ACTION = "retention"
RETENTION_CALLER = system_caller("retention")
"""Who runs the scheduled retention: FRVS itself, under the name ``retention``."""
ORPHAN_GRACE_S = 600.0
"""Pictures younger than this are never swept: their record may be about to commit."""
SWEPT_FOLDERS = ("sightings", "alerts")


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run deleted."""

    at: datetime
    subjects: tuple[DeletedSubject, ...]
    sightings: int
    sighting_crops: int
    alert_evidence: int
    orphan_files: int

    def counts(self) -> dict[str, int]:
        """The counts the run's audit entry records."""
        return {"subjects": len(self.subjects),
                "templates": sum(s.templates for s in self.subjects),
                "sightings": self.sightings, "sighting_crops": self.sighting_crops,
                "alert_evidence": self.alert_evidence}

    def as_dict(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), **self.counts(),
                "orphan_files": self.orphan_files,
                "deleted": [s.as_dict() for s in self.subjects]}


@dataclass(frozen=True, slots=True)
class _Evidence:
    count: int
    files: tuple[str, ...]


def _expire_evidence(uow: UnitOfWork, now: datetime) -> _Evidence:
    """Clear the evidence of decided alerts older than their gallery's retention."""
    files: list[str] = []
    for gallery in uow.galleries.all():
        if gallery.retention_days is None:
            continue
        files += uow.repo(AlertRepository).clear_evidence(
            gallery.name, now - timedelta(days=gallery.retention_days))
    return _Evidence(len(files), tuple(files))


Purger = Callable[[AuditContext], int]
"""A deletion run with retention, audited by itself; returns how many records it cleared."""


class Retention:
    """Deletes subjects, sightings and alert evidence past their retention."""

    def __init__(self, store: Store, galleries: GalleryService, sightings: SightingService,
                 clock: Clock, *, event_log_hours: float = 72.0,
                 purgers: Sequence[Purger] = ()) -> None:
        self._store = store
        self._galleries = galleries
        self._sightings = sightings
        self._clock = clock
        self._event_log = timedelta(hours=event_log_hours)
        # Other domains' deletions that run with every run, each auditing its own (the
        # kept images of identity checks): the composition root passes them in, so this
        # module need not know those domains.
        self._purgers = tuple(purgers)

    def run(self, caller: AuditContext) -> RetentionReport:
        """One retention run for ``caller``, audited (``retention``) with its counts."""
        subjects = tuple(self._galleries.purge(caller))
        now = self._clock()
        inputs = {"now": now.isoformat()}
        try:
            with self._store.unit(write=True) as uow:
                expired = self._sightings.expire(uow, now)
                uow.repo(EdgeReportRepository).forget_expired()
                evidence = _expire_evidence(uow, now)
                # The live streams' log and finished webhook deliveries hold copies of
                # alerts: kept only long enough for clients to resume.
                events = self._store.events.prune(uow.session, now - self._event_log)
                deliveries = uow.repo(WebhookRepository).prune_finished(now - self._event_log)
                report = RetentionReport(now, subjects, expired.count, len(expired.crops),
                                         evidence.count, orphan_files=0)
                uow.audit(caller, AuditDraft(ACTION, inputs, report.counts()))
        except Exception as exc:
            record_refusal(self._store, caller, ACTION, inputs, exc)
            raise
        # After the commit: a crash in between leaves files the next run sweeps.
        self._store.media.remove([*expired.crops, *evidence.files])
        for purge in self._purgers:
            purge(caller)
        report = replace(report, orphan_files=self._sweep())
        if any(report.counts().values()) or report.orphan_files or events or deliveries:
            logger.info("retention: %s, %d orphan file(s), %d event(s) and %d webhook "
                        "deliveries past the event log's %s", report.counts(),
                        report.orphan_files, events, deliveries, self._event_log)
        return report

    def _sweep(self) -> int:
        """Remove sighting and alert pictures no record refers to (older than the grace)."""
        referenced = self._sightings.crop_paths()
        with self._store.unit() as uow:
            referenced |= uow.repo(AlertRepository).crop_paths()
        cutoff = time.time() - ORPHAN_GRACE_S
        return sum(self._store.media.sweep(referenced, cutoff, under=folder)
                   for folder in SWEPT_FOLDERS)

    def last_run(self) -> datetime | None:
        """When a run last completed, as its audit entry says (any process, any caller)."""
        with self._store.unit() as uow:
            return uow.session.scalar(select(func.max(AuditEntryRow.at)).where(
                AuditEntryRow.action == ACTION, AuditEntryRow.outcome == "ok"))


class RetentionSchedule:
    """Runs ``Retention`` every ``interval_s`` seconds on a background thread (``frvs
    serve``). The first run comes one interval after the last recorded run, at once if
    that is past (so frequent restarts do not postpone it), or one interval after the
    start on a store that never ran one. A failed run is logged and tried again at the
    next interval; ``interval_s`` 0 schedules nothing."""

    def __init__(self, retention: Retention, interval_s: float, clock: Clock,
                 caller: AuditContext = RETENTION_CALLER) -> None:
        self._retention = retention
        self._interval = interval_s
        self._clock = clock
        self._caller = caller
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="frvs-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop scheduling; a run in progress finishes (waited for up to ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _first_delay(self) -> float:
        try:
            last = self._retention.last_run()
        except Exception:  # the store is unreachable: try on the normal schedule
            logger.exception("cannot read when retention last ran")
            return self._interval
        if last is None:
            return self._interval
        due = last + timedelta(seconds=self._interval)
        return max(0.0, (due - self._clock()).total_seconds())

    def _loop(self) -> None:
        delay = self._first_delay()
        while not self._stop.wait(delay):
            try:
                self._retention.run(self._caller)
            except Exception:  # loop boundary: the next run tries again
                logger.exception("retention run failed; next try in %.0f s", self._interval)
            delay = self._interval
