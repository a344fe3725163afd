"""Capture: one thread per camera reads its source into a bounded latest-frame buffer,
reconnecting with exponential backoff when the source fails or stalls.

Fresh frames beat complete ones (Frigate's capture queue): for a live source the buffer
holds at most ``capacity`` frames and a put never blocks — the oldest frame is dropped
and counted. A finite source (a file, an image folder) is read at the pace of analysis
instead, so every sampled frame is processed. ``CameraMonitor`` keeps the counters the
camera status is built from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from frvs.core.errors import FrvsError
from frvs.video.models import CameraStatus, Frame, Gap, Health
from frvs.video.sources import FrameSource, SourceError, SourceNotFoundError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Captured:
    """A frame and the monotonic time it was read, to measure lag."""

    frame: Frame
    read_at: float


class LatestFrameBuffer:
    """A bounded frame queue between a capture thread and its analysis thread."""

    def __init__(self, capacity: int = 2) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self._items: deque[Captured] = deque()
        self._capacity = capacity
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: Captured, block: bool) -> int:
        """Add ``item``; when full, drop the oldest (``block=False``) or wait for room.

        Returns how many frames were dropped by this put (0 or 1).
        """
        with self._cond:
            if block:
                while len(self._items) >= self._capacity and not self._closed:
                    self._cond.wait(0.5)
            dropped = 0
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
                dropped = 1
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float) -> Captured | None:
        """The oldest buffered frame, or None after ``timeout`` or once closed and empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._items:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more frames will come; readers drain what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class _Rate:
    """Events per second over a sliding window of monotonic times."""

    def __init__(self, window: float = 5.0) -> None:
        self._times: deque[float] = deque()
        self._window = window

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def value(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-6)
        return (len(self._times) - 1) / span if span else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()


_MAX_GAPS = 20


class CameraMonitor:
    """Counters of one camera, written by its capture and analysis threads."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self._lock = threading.Lock()
        self._health = Health.STARTING
        self._read = self._processed = self._dropped = self._reconnects = self._skipped = 0
        self._in_rate, self._out_rate = _Rate(), _Rate()
        self._lag = 0.0
        self._last_error: str | None = None
        self._gaps: deque[Gap] = deque(maxlen=_MAX_GAPS)

    def frame_read(self, dropped: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._read += 1
            self._dropped += dropped
            self._in_rate.tick(now)

    def frame_skipped(self) -> None:
        """A frame read but not sampled for analysis (not a drop: it was never due)."""
        now = time.monotonic()
        with self._lock:
            self._read += 1
            self._skipped += 1
            self._in_rate.tick(now)

    def frame_processed(self, item: Captured) -> None:
        now = time.monotonic()
        with self._lock:
            self._processed += 1
            self._out_rate.tick(now)
            self._lag = now - item.read_at

    def online(self) -> None:
        with self._lock:
            if self._gaps and self._gaps[-1].end is None:
                last = self._gaps.pop()
                self._gaps.append(Gap(last.start, datetime.now(UTC), last.reason))
            self._health = Health.ONLINE

    def offline(self, reason: str, reconnecting: bool) -> None:
        with self._lock:
            self._last_error = reason
            if self._health is not Health.OFFLINE and (self._read or reconnecting):
                self._gaps.append(Gap(datetime.now(UTC), None, reason))
            self._health = Health.OFFLINE
            if reconnecting:
                self._reconnects += 1

    def finished(self, health: Health) -> None:
        with self._lock:
            self._health = health

    def snapshot(self) -> CameraStatus:
        now = time.monotonic()
        with self._lock:
            return CameraStatus(
                camera=self.camera, health=self._health,
                input_fps=self._in_rate.value(now), processed_fps=self._out_rate.value(now),
                frames_read=self._read, frames_processed=self._processed,
                dropped=self._dropped, lag_seconds=self._lag, reconnects=self._reconnects,
                last_error=self._last_error, gaps=tuple(self._gaps), skipped=self._skipped,
            )


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial`` doubling up to ``maximum``; reset by a good frame."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.maximum, self.initial * (2 ** max(0, failures - 1))))


SourceFactory = Callable[[], FrameSource]


class CaptureWorker:
    """Reads one camera's source on its own thread into ``buffer``.

    ``pace`` > 0 delivers a finite source at ``pace`` x its media rate, like a live
    camera (for soak tests and benchmarks); live sources are never paced. ``keep``
    (the camera's sampler, by media time) decides which frames enter the buffer at all:
    frames that are not due are skipped here, so they never push a due frame out of the
    buffer, and ``dropped`` counts only due frames analysis could not take.
    """

    def __init__(self, factory: SourceFactory, buffer: LatestFrameBuffer,
                 monitor: CameraMonitor, backoff: Backoff | None = None,
                 pace: float = 0.0, *, keep: Callable[[float], bool] | None = None) -> None:
        self._factory = factory
        self._buffer = buffer
        self._monitor = monitor
        self._backoff = backoff or Backoff()
        self._pace = pace
        self._keep = keep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{monitor.camera}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._buffer.close()
        self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    source = self._factory()
                except FrvsError as exc:
                    failures += 1
                    # A missing file or folder will not appear by retrying; a stream may.
                    retry = not isinstance(exc, SourceNotFoundError)
                    if not self._retry(exc, failures, live=retry):
                        return
                    continue
                self._monitor.online()
                try:
                    ended, failures = self._pump(source, failures)
                except SourceError as exc:
                    failures += 1
                    if not self._retry(exc, failures, live=source.live):
                        return
                    continue
                finally:
                    source.close()
                if ended:
                    self._monitor.finished(Health.ENDED)
                    return
        except Exception:  # a loop boundary: report, never die silently
            logger.exception("capture of camera %s failed", self._monitor.camera)
            self._monitor.offline("internal error in capture", reconnecting=False)
        finally:
            self._buffer.close()

    def _pump(self, source: FrameSource, failures: int) -> tuple[bool, int]:
        """Read until the source ends (True) or the worker stops (False)."""
        started = time.monotonic()
        first: float | None = None
        while not self._stop.is_set():
            frame = source.read(self._due if self._keep is not None else None)
            if frame is None:
                return True, failures
            failures = 0
            if self._pace > 0 and not source.live:
                first = frame.timestamp if first is None else first
                wait = started + (frame.timestamp - first) / self._pace - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
            dropped = self._buffer.put(Captured(frame, time.monotonic()),
                                       block=not source.live and self._pace <= 0)
            self._monitor.frame_read(dropped)
        return False, failures

    def _due(self, timestamp: float) -> bool:
        if self._keep is None or self._keep(timestamp):
            return True
        self._monitor.frame_skipped()
        return False

    def _retry(self, exc: FrvsError, failures: int, live: bool) -> bool:
        """Record the failure; wait the backoff delay. False when giving up."""
        logger.warning("camera %s: %s", self._monitor.camera, exc.message)
        self._monitor.offline(exc.message, reconnecting=live)
        if not live:
            return False
        return not self._stop.wait(self._backoff.delay(failures))
