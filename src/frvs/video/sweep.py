"""Where a frame is searched for faces: all of it now and then, around known faces between.

A detector run over a whole 720p frame is the largest part of a camera's analysis (YuNet
at the default 960x544 working size: 16 ms of CPU, against about 1 ms for the area around
one face). Between two full sweeps a face that is already tracked is looked for only in a
window around where it was last seen, at the same working scale, so it is found with the
same landmarks and score; faces that enter the picture are found at the next sweep, at
most ``SweepPolicy.interval`` seconds of media time later. A frame with no tracked face
costs nothing between sweeps.

This is the detect-then-track pattern of video face pipelines; what it trades is said
in ``SweepPolicy``. It is used with detectors that score fixed cells of their input
(``models.ports.GriddedDetector``, YuNet): a window cut on their grid finds a face as
the whole frame does, so ByteTrack (``tracking.py``) sees the same boxes either way.
A face a sweep finds but the tracker has not yet confirmed (ByteTrack confirms a new
track on its second match) gets a window too, until it is tracked or no longer found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from frvs.core.errors import InvalidRecordError
from frvs.core.geometry import Box
from frvs.imaging.decode import BGRImage

# A face missed for more frames than this is looked for no wider: ByteTrack keeps a lost
# track for a second, and a window of many face sizes costs a sweep's time.
_MAX_WIDENING = 2



@dataclass(frozen=True, slots=True)
class Window:
    """A part of a frame to detect in (x1, y1 exclusive), and the smallest face side
    (frame pixels) expected in it."""

    x0: int
    y0: int
    x1: int
    y1: int
    face: float

    def overlaps(self, other: Window) -> bool:
        return (self.x0 < other.x1 and other.x0 < self.x1
                and self.y0 < other.y1 and other.y0 < self.y1)

    def union(self, other: Window) -> Window:
        return Window(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1),
                      max(self.y1, other.y1), min(self.face, other.face))

    def holds(self, box: Box) -> bool:
        """Whether ``box``'s centre lies in this window."""
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        return self.x0 <= cx < self.x1 and self.y0 <= cy < self.y1

    def factor(self, frame_factor: float, face_px: float) -> float:
        """The detection scale in this window: the frame's, or less where that leaves the
        smallest face expected here at least ``face_px`` wide."""
        return min(frame_factor, face_px / max(1.0, self.face))


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    """How often the whole frame is searched, and how much around each tracked face
    between.

    ``interval``: seconds of media time between two full sweeps (0: every analysed frame
    is swept whole, as before this policy). Longer saves more detector time on cameras
    with few faces but finds an arriving face later: at the default 0.5 s a camera
    analysed at 5 fps sweeps one frame in three, and a face in view for under 0.5 s may
    go unseen (too briefly seen to be identified at 5 fps anyway). ``margin``: the
    window around a tracked face, in face sizes on each side, widened by one face size
    for each analysed frame the face was missed (twice at most); 1.0 holds a face walking across the
    picture at 5 fps. ``min_window``: the least window side in frame pixels, so a
    small face still gets the context the detector needs. ``face_px``: a window is
    detected at the frame's working scale, or smaller where its smallest tracked face
    stays at least this wide (its box's longer side): a face 300 px wide is found as
    surely at 128 px, for a fifth of the pixels, and its landmarks are as fine relative to
    its size. On the 720p clip at 5 fps, 128 found every tracked face the whole frame
    found (96 missed 3 of 69, near the detector's threshold) on a quarter of a sweep's
    pixels.
    """

    interval: float = 0.5
    margin: float = 1.0
    min_window: int = 96
    face_px: float = 128.0

    def __post_init__(self) -> None:
        if (self.interval < 0 or self.margin <= 0 or self.min_window < 32
                or self.face_px < 32):
            raise InvalidRecordError("sweep interval must be >= 0, margin > 0, "
                                     "min_window >= 32 and face_px >= 32")


@dataclass(frozen=True, slots=True)
class Sighted:
    """Where a tracked face was last found, and for how many analysed frames it has not
    been found since."""

    box: Box
    missed: int = 0


class Sweeper:
    """Decides, frame by frame, whether to sweep the whole frame or only windows."""

    def __init__(self, policy: SweepPolicy) -> None:
        self._policy = policy
        self._last: float | None = None

    def due(self, timestamp: float) -> bool:
        """Whether this frame is swept whole (and, if so, counts as the latest sweep)."""
        if (self._policy.interval == 0 or self._last is None
                or timestamp - self._last >= self._policy.interval - 1e-6
                or timestamp < self._last):
            self._last = timestamp
            return True
        return False

    def restart(self) -> None:
        """The next frame is swept whole (a new scene, a new stream)."""
        self._last = None

    def windows(self, sighted: Iterable[Sighted], height: int, width: int) -> list[Window]:
        """Windows around ``sighted`` faces inside a ``width`` x ``height`` frame, merged
        where they overlap so no face is searched for twice."""
        p = self._policy
        boxes: list[Window] = []
        for s in sighted:
            b = s.box
            grow = p.margin + min(s.missed, _MAX_WIDENING)
            side = max(b.w, b.h)
            half_w = max(b.w / 2 + grow * side, p.min_window / 2)
            half_h = max(b.h / 2 + grow * side, p.min_window / 2)
            cx, cy = b.x + b.w / 2, b.y + b.h / 2
            x0, y0 = max(0, int(cx - half_w)), max(0, int(cy - half_h))
            x1, y1 = min(width, int(np.ceil(cx + half_w))), min(height, int(np.ceil(cy + half_h)))
            if x1 > x0 and y1 > y0:
                boxes.append(Window(x0, y0, x1, y1, side))
        return merge(boxes)


def merge(windows: Sequence[Window]) -> list[Window]:
    """Overlapping windows replaced by their union until none overlap."""
    out = list(windows)
    i = 0
    while i < len(out):
        other = next((j for j in range(i + 1, len(out)) if out[i].overlaps(out[j])), None)
        if other is None:
            i += 1
        else:
            out[i] = out[i].union(out.pop(other))
            i = 0
    return out


def crop(image: BGRImage, window: Window) -> BGRImage:
    """The window's pixels, contiguous (detectors are handed whole arrays)."""
    return np.ascontiguousarray(image[window.y0:window.y1, window.x0:window.x1])
