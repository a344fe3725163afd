"""Frame sampling: analyse a camera at a target rate, whatever rate it delivers."""

from __future__ import annotations

from frvs.core.errors import InvalidRecordError

_EPSILON = 1e-3


class FrameSampler:
    """Keeps frames on a grid of ``1 / fps`` seconds of media time.

    A grid (not "at least a period since the last kept frame") keeps the average rate
    exact when the source rate is not a multiple of the target: a 29.97 fps clip sampled
    at 5 fps keeps 5 frames a second, not 4.3. ``fps=None`` keeps every frame.
    """

    def __init__(self, fps: float | None) -> None:
        if fps is not None and fps <= 0:
            raise InvalidRecordError(f"sampling rate must be > 0, got {fps}")
        self._period = 1.0 / fps if fps else 0.0
        self._next: float | None = None

    def keep(self, timestamp: float) -> bool:
        """Whether the frame at media time ``timestamp`` (seconds) is analysed."""
        if self._period == 0.0:
            return True
        if self._next is not None and timestamp + _EPSILON < self._next - self._period:
            # Time went back (a reconnected stream restarts its clock): a new grid.
            self._next = None
        if self._next is None or timestamp + _EPSILON >= self._next:
            if self._next is None or timestamp - self._next > self._period:
                # First frame, or a gap in the stream: restart the grid here.
                self._next = timestamp
            self._next += self._period
            return True
        return False
