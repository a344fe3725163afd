"""An edge node: local cameras through the same pipeline as 'frvs serve' up to the
per-track decision input, each ended track's report into the outbox, and a sender that
delivers the outbox to the centre.

The cameras run in the pipeline's own ``Supervisor`` (capture, sampling, detection,
tracking, best shot, template): nothing of it is forked here. What differs is where the
results go: the node has no galleries, so its matcher knows none (a track is never
identified on the node) and its sink is the outbox instead of the event router. Every
ended track's best shot is embedded when the track closes, as 'frvs serve' does for
tracks it could not identify, and that template is what the centre matches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from frvs.core.caller import AuditContext
from frvs.core.templates import Template
from frvs.edge.outbox import Outbox, Report
from frvs.edge.sender import Sender
from frvs.imaging.encode import encode_jpeg
from frvs.pipeline.camera import CameraRuntime
from frvs.pipeline.supervisor import Supervisor
from frvs.video.edge_report import quality_numbers
from frvs.video.models import GalleryCandidate, Sighting
from frvs.video.processor import StepResult
from frvs.video.service import CameraSpec

logger = logging.getLogger(__name__)


class NodeMatcher:
    """The matcher of a node that holds no gallery: its cameras embed with ``pack`` and
    match against nothing (the centre decides)."""

    def __init__(self, pack: str) -> None:
        self._pack = pack

    def pack_for(self, galleries: Sequence[str]) -> str:
        del galleries
        return self._pack

    def match(self, templates: Sequence[Template], galleries: Sequence[str],
              top: int = 5) -> list[list[GalleryCandidate]]:
        del galleries, top
        return [[] for _ in templates]


def report_of(sighting: Sighting) -> Report:
    """What the node sends of an ended track: its times, frames, the best shot's
    template and quality, and the crop (shipped or not by the centre's policy)."""
    template = sighting.template
    if template is None:  # the processor embeds every closing track's best shot
        raise ValueError(f"track {sighting.track_id} closed without a template")
    quality = quality_numbers(sighting.best_shot.quality)
    return Report(sighting.camera, sighting.track_id, sighting.first_seen,
                  sighting.last_seen, sighting.frames, template.space.key,
                  template.vector.astype("<f4").tobytes(),
                  {k: float(v) for k, v in quality.items()},
                  encode_jpeg(np.ascontiguousarray(sighting.best_shot.patch)))


class OutboxSink:
    """The node's ``StepSink``: each ended track's report, committed to the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self.reports = 0

    def handle(self, camera: CameraSpec, result: StepResult, caller: AuditContext) -> None:
        del camera, caller
        for sighting in result.sightings:
            self._outbox.add(report_of(sighting))
            self.reports += 1


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended: reports made, delivered and refused in it."""

    made: int
    delivered: int
    refused: int
    backlog: int


class EdgeNode:
    """Runs the node's cameras and its sender until told to stop (or, with ``once``,
    until every source has ended and the outbox is delivered)."""

    def __init__(self, outbox: Outbox, sender: Sender, supervisor: Supervisor,
                 cameras: Sequence[CameraSpec], runtime: CameraRuntime) -> None:
        self._outbox = outbox
        self._sender = sender
        self._supervisor = supervisor
        self._cameras = list(cameras)
        self._runtime = runtime
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        self._sender.stop()

    def run(self, once: bool) -> RunResult:
        before = self._outbox.counters()
        for spec in self._cameras:
            self._supervisor.start_camera(spec, self._runtime)
        try:
            # Sources are done when every camera's analysis has ended (files, folders).
            self._sender.run(until=(lambda: self._supervisor.wait(0)) if once else None)
        finally:
            self._supervisor.stop()
        after = self._outbox.counters()
        return RunResult(after["made"] - before["made"],
                         after["deliveries"] - before["deliveries"],
                         after["refused"] - before["refused"], self._outbox.pending())
