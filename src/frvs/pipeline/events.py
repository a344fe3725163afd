"""Routing what a camera's analysis produced: decisions become alerts (watch lists) and
attendance events (entry/exit cameras), ended tracks become stored sightings; each
outcome is also handed to listeners as a ``VideoEvent`` (the CLI prints them)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from frvs.alerts.service import AlertService
from frvs.attendance.service import AttendanceService
from frvs.core.caller import AuditContext
from frvs.core.errors import ConflictError
from frvs.storage.store import Store, UnitOfWork
from frvs.video.models import TrackDecision
from frvs.video.processor import StepResult
from frvs.video.service import CameraSpec, SightingService

logger = logging.getLogger(__name__)


class LeaseLostError(ConflictError):
    """A camera's outcome refused: this replica no longer holds the camera's lease."""


# Runs in an alert's transaction for its camera; raises ``LeaseLostError`` to refuse it.
Fence = Callable[[UnitOfWork, str], None]


@dataclass(frozen=True, slots=True)
class VideoEvent:
    """One outcome for listeners: ``alert``, ``sighting`` or ``attendance``."""

    event: str
    camera: str
    subject: str | None
    detail: dict[str, object]

    def document(self) -> dict[str, object]:
        return {"event": self.event, "camera": self.camera, "subject": self.subject,
                **self.detail}


Listener = Callable[[VideoEvent], None]


@dataclass
class RouterCounts:
    alerts: int = 0
    sightings: int = 0
    attendance: int = 0
    decisions: int = 0


class EventRouter:
    """Shared by every camera of a process; the store serialises its writes."""

    def __init__(self, store: Store, alerts: AlertService, attendance: AttendanceService,
                 sightings: SightingService) -> None:
        self._store = store
        self._alerts = alerts
        self._attendance = attendance
        self._sightings = sightings
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        # Set by the camera leases: alerts commit only under the camera's live lease.
        self.fence: Fence | None = None
        self.counts = RouterCounts()

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def handle(self, camera: CameraSpec, result: StepResult, caller: AuditContext) -> None:
        """Route one step's decisions and ended tracks, recorded for ``caller`` (who runs
        the camera)."""
        if self._lease_lost(camera, result):
            return
        for decision in result.decisions:
            self._decision(caller, camera, decision)
        for sighting in result.sightings:
            stored = self._sightings.record(caller, sighting, camera.retention_days,
                                            camera.keep_crops)
            self._emit(VideoEvent("sighting", camera.name, stored.subject, stored.as_dict()),
                       "sightings")

    def _lease_lost(self, camera: CameraSpec, result: StepResult) -> bool:
        """Whether this replica lost ``camera``'s lease (it stalled past it and another
        replica runs the camera now): the step's sightings and attendance are then
        dropped, not doubled. Alerts are fenced again in their own transaction."""
        fence = self.fence
        if fence is None or not (result.decisions or result.sightings):
            return False
        try:
            with self._store.unit(write=True) as uow:
                fence(uow, camera.name)
        except LeaseLostError as exc:
            logger.warning("camera %s: %s; step dropped", camera.name, exc.message)
            return True
        return False

    def _decision(self, caller: AuditContext, camera: CameraSpec,
                  decision: TrackDecision) -> None:
        with self._lock:
            self.counts.decisions += 1
        written: list[str] = []

        def evidence() -> str:
            # Called once the alert is decided (not suppressed), in its transaction.
            written.append(self._alerts.write_evidence(decision))
            return written[-1]

        fence = self.fence
        try:
            alert = self._alerts.raise_for(
                caller, decision,
                fence=None if fence is None else (lambda uow: fence(uow, decision.camera)),
                evidence=evidence)
        except LeaseLostError as exc:
            # Another replica runs this camera now (this one stalled past its lease):
            # its own analysis raises the alert; this one is dropped, not doubled.
            logger.warning("camera %s: %s; decision dropped", camera.name, exc.message)
            self._store.media.remove(list(written))
            return
        except BaseException:
            self._store.media.remove(list(written))  # the alert did not commit
            raise
        if alert is not None:
            self._emit(VideoEvent("alert", camera.name, alert.subject, alert.as_dict()), "alerts")
        event = self._attendance.record(decision, camera.role)
        if event is not None:
            self._emit(VideoEvent("attendance", camera.name, event.subject, event.as_dict()),
                       "attendance")

    def publish(self, event: VideoEvent) -> None:
        """Hand an outcome recorded elsewhere (edge intake) to the listeners, counted."""
        self._emit(event, {"alert": "alerts", "sighting": "sightings"}.get(event.event,
                                                                           "attendance"))

    def _emit(self, event: VideoEvent, counter: str) -> None:
        with self._lock:
            setattr(self.counts, counter, getattr(self.counts, counter) + 1)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a failing listener must not stop a camera
                logger.exception("video event listener failed")
