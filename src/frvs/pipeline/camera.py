"""One camera: a capture thread filling a latest-frame buffer and an analysis thread
that owns the camera's processor (no locks around its state).

Started and stopped in one place, capture first and analysis last on the way up,
the reverse on the way down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from frvs.core.caller import AuditContext, system_caller
from frvs.core.geometry import Box
from frvs.models.pack import ModelPack
from frvs.video.capture import Backoff, CameraMonitor, CaptureWorker, LatestFrameBuffer
from frvs.video.models import CameraStatus, Frame, Health
from frvs.video.ports import Matcher
from frvs.video.processor import EmbedFn, ProcessorOptions, StepResult, TrackProcessor
from frvs.video.sampling import FrameSampler
from frvs.video.service import CameraSpec
from frvs.video.sources import FrameSource, SourceOptions, describe, open_source
from frvs.video.tracking import TrackerOptions

logger = logging.getLogger(__name__)

class StepSink(Protocol):
    """Where a camera's analysis results go: the event router in 'frvs serve' and
    'frvs watch' (alerts, sightings), an edge node's outbox in 'frvs edge run'."""

    def handle(self, camera: CameraSpec, result: StepResult, caller: AuditContext) -> None: ...


CAMERA_RUNNER = system_caller("camera-runner")
"""Who a camera run started by the service acts as: FRVS itself, by name."""


@dataclass(frozen=True, slots=True)
class CameraRuntime:
    """How a camera runs, beyond its stored spec."""

    # Due frames a camera may have waiting: 1 s at the default 5 fps. When faces appear,
    # the shared embedder is busy and a camera's analysis can stall for a few hundred ms;
    # with room for 2 frames, 8 cameras on two cores dropped 4-5% of their due frames,
    # with 5 they ride it out, at the cost of that much lag at the worst moment.
    buffer_capacity: int = 5
    pace: float = 0.0
    source: SourceOptions = field(default_factory=SourceOptions)
    backoff: Backoff = field(default_factory=Backoff)
    processor: ProcessorOptions | None = None
    # Whom the run's alerts, sightings and start/stop entries are recorded for: the
    # service's camera runner, or the person running 'frvs watch'.
    caller: AuditContext = CAMERA_RUNNER


@dataclass(frozen=True, slots=True)
class CameraRun:
    """The start (``status`` None) or end of one camera run, for run listeners (the
    audit trail): which camera, the galleries searched, the source (credentials
    masked), when, and at the end why it ended and what it processed."""

    camera: str
    galleries: tuple[str, ...]
    source: str
    sample_fps: float | None
    at: datetime
    status: CameraStatus | None = None
    reason: str | None = None
    embeddings: int = 0
    caller: AuditContext = CAMERA_RUNNER

    @property
    def started(self) -> bool:
        return self.status is None


def processor_options(spec: CameraSpec, base: ProcessorOptions | None,
                      source_fps: float | None) -> ProcessorOptions:
    """The camera's galleries, ROI and rate folded into the processor options."""
    fps = spec.sample_fps or source_fps or 25.0
    base = base or ProcessorOptions(galleries=spec.galleries)
    tracker = base.tracker
    tracker = TrackerOptions(fps=fps, lost_seconds=tracker.lost_seconds,
                             activation=tracker.activation, match_iou=tracker.match_iou,
                             confirm_frames=tracker.confirm_frames)
    roi = Box(*spec.roi) if spec.roi else None
    return replace(base, galleries=spec.galleries, tracker=tracker, roi=roi)


class CameraPipeline:
    """Capture + analysis of one camera, feeding ``router`` (any ``StepSink``)."""

    def __init__(self, spec: CameraSpec, pack: ModelPack, matcher: Matcher,
                 router: StepSink, runtime: CameraRuntime | None = None,
                 *, embed: EmbedFn | None = None,
                 on_run: Callable[[CameraRun], None] | None = None) -> None:
        self.spec = spec
        self._on_run = on_run
        self._runtime = runtime or CameraRuntime()
        self._pack = pack
        self._matcher = matcher
        self._router = router
        self._embed = embed
        self.monitor = CameraMonitor(spec.name)
        self._buffer = LatestFrameBuffer(self._runtime.buffer_capacity)
        # Sampling happens on the capture thread, before the buffer (see CaptureWorker).
        self._sampler = FrameSampler(spec.sample_fps)
        self._capture = CaptureWorker(self._open, self._buffer, self.monitor,
                                      self._runtime.backoff, self._runtime.pace,
                                      keep=self._sampler.keep)
        self._thread = threading.Thread(target=self._analyse, name=f"analyse-{spec.name}",
                                        daemon=True)
        self._stop = threading.Event()
        self._source_fps: float | None = None
        self.embeddings = 0
        # The last analysed frame, for thumbnails (one reference, replaced per frame).
        self.latest: Frame | None = None

    def _open(self) -> FrameSource:
        source = open_source(self.spec.source_url, self.spec.name, self._runtime.source)
        self._source_fps = source.nominal_fps
        return source

    def start(self) -> None:
        """Record the run's start, then start capture and analysis: a start that cannot
        be recorded (the audit trail refuses it) raises and nothing runs."""
        self._announce()
        self._capture.start()
        self._thread.start()

    def _announce(self, status: CameraStatus | None = None, reason: str | None = None) -> None:
        if self._on_run is not None:
            self._on_run(CameraRun(self.spec.name, self.spec.galleries,
                                   describe(self.spec.source_url), self.spec.sample_fps,
                                   datetime.now(UTC), status, reason, self.embeddings,
                                   self._runtime.caller))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._capture.stop(timeout)
        self._thread.join(timeout)
        if self.monitor.snapshot().health is not Health.ENDED:
            self.monitor.finished(Health.STOPPED)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a finite source to be fully analysed; True when done."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def status(self) -> CameraStatus:
        return self.monitor.snapshot()

    def _analyse(self) -> None:
        processor: TrackProcessor | None = None
        reason = "failed"
        try:
            while not (self._stop.is_set() and len(self._buffer) == 0):
                item = self._buffer.get(timeout=0.5)
                if item is None:
                    if self._buffer.closed:
                        break
                    continue
                if processor is None:
                    options = processor_options(self.spec, self._runtime.processor,
                                                self._source_fps)
                    processor = TrackProcessor(self.spec.name, self._pack, self._matcher,
                                               options, self._embed)
                self._router.handle(self.spec, processor.process(item.frame),
                                    self._runtime.caller)
                self.latest = item.frame
                self.monitor.frame_processed(item)
            if processor is not None:
                self._router.handle(self.spec, processor.finish(), self._runtime.caller)
            reason = "stopped" if self._stop.is_set() else "ended"
        except Exception:  # a loop boundary: report the camera as failed, keep others up
            logger.exception("analysis of camera %s failed", self.spec.name)
            self.monitor.offline("internal error in analysis", reconnecting=False)
            self._capture.stop()
        finally:
            if processor is not None:
                self.embeddings = processor.embeddings
            self._announce(self.monitor.snapshot(), reason)
