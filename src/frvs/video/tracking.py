"""Face tracking with supervision's ByteTrack: one track id per person passing.

ByteTrack associates boxes by IoU with a Kalman motion model and a second pass over
low-score boxes, which keeps small, briefly blurred faces on their track. We only add
what a pipeline needs around it: landmarks carried through (``Detections.data``) and
the moment a track ends (not seen for as long as ByteTrack keeps a lost track), so
per-track state can be finalised and cleared.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from frvs.core.detections import FaceDetection
from frvs.core.errors import InvalidRecordError

if TYPE_CHECKING:
    import supervision as sv


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """ByteTrack's knobs, in the units a camera is configured in.

    ``lost_seconds``: how long a track survives without a detection. Longer bridges
    occlusions and missed detections but risks handing a lost track to a newcomer at
    the same place. ``activation``: the detector score that starts a track; lower
    starts tracks on weak faces (more false tracks). ``match_iou``: the least box
    overlap between frames for association; at low frame rates fast faces move more,
    so sampling slowly wants a lower value.
    """

    fps: float = 30.0
    lost_seconds: float = 1.0
    activation: float = 0.5
    match_iou: float = 0.2
    confirm_frames: int = 1

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.lost_seconds <= 0:
            raise InvalidRecordError("tracker fps and lost_seconds must be > 0")
        if not 0 < self.match_iou < 1:
            raise InvalidRecordError(f"match_iou must be in (0, 1), got {self.match_iou}")

    @property
    def lost_frames(self) -> int:
        return max(1, math.ceil(self.fps * self.lost_seconds))


@dataclass(frozen=True, slots=True)
class TrackStep:
    """The outcome of one frame: faces with their track ids, and tracks that ended."""

    faces: tuple[tuple[int, FaceDetection], ...]
    ended: tuple[int, ...]


def to_detections(faces: Sequence[FaceDetection]) -> sv.Detections:
    """Faces as ``sv.Detections`` (xyxy, confidence), each row carrying its index."""
    # Imported here: supervision (with scipy) costs over a second, and every CLI command
    # imports this module through the configuration, while only video work needs it.
    import supervision as sv

    if not faces:
        return sv.Detections.empty()
    xyxy = np.array([[f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h] for f in faces],
                    dtype=np.float32)
    return sv.Detections(
        xyxy=xyxy,
        confidence=np.array([f.score for f in faces], dtype=np.float32),
        class_id=np.zeros(len(faces), dtype=int),
        data={"face": np.arange(len(faces))},
    )


class FaceTracker:
    """ByteTrack over face detections, owned by one camera's analysis thread."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        import supervision as sv

        self.options = options or TrackerOptions()
        o = self.options
        with warnings.catch_warnings():
            # ByteTrack is deprecated in supervision 0.30 in favour of the 'trackers'
            # package, which requires the non-headless opencv-python (cv2 5.x) that
            # cannot run our int8 models; pinned to supervision < 0.31 until it can.
            warnings.simplefilter("ignore", FutureWarning)
            self._byte = sv.ByteTrack(
                track_activation_threshold=o.activation,
                # ByteTrack scales its buffer by frame_rate / 30.
                lost_track_buffer=max(1, math.ceil(30 * o.lost_seconds)),
                minimum_matching_threshold=1.0 - o.match_iou,
                frame_rate=max(1, round(o.fps)),
                minimum_consecutive_frames=o.confirm_frames,
            )
        self._frame = 0
        self._last_seen: dict[int, int] = {}
        # ByteTrack restarts its ids on reset; ours stay unique for the tracker's life.
        self._ids: dict[int, int] = {}
        self._next_id = 1

    def update(self, faces: Sequence[FaceDetection]) -> TrackStep:
        """Associate this frame's faces with tracks; report tracks lost for too long."""
        self._frame += 1
        tracked = self._byte.update_with_detections(to_detections(faces))
        assigned: list[tuple[int, FaceDetection]] = []
        if len(tracked) and tracked.tracker_id is not None:
            for external, index in zip(tracked.tracker_id, tracked.data["face"], strict=True):
                track_id = self._ids.get(int(external))
                if track_id is None:
                    track_id = self._ids[int(external)] = self._next_id
                    self._next_id += 1
                assigned.append((track_id, faces[int(index)]))
                self._last_seen[track_id] = self._frame
        limit = self.options.lost_frames
        ended = tuple(t for t, seen in self._last_seen.items() if self._frame - seen > limit)
        for track_id in ended:
            del self._last_seen[track_id]
        return TrackStep(tuple(assigned), ended)

    def finish(self) -> tuple[int, ...]:
        """End every live track (the source ended) and reset."""
        ended = tuple(self._last_seen)
        self._last_seen.clear()
        self._ids.clear()
        self._byte.reset()
        self._frame = 0
        return ended

    @property
    def live_tracks(self) -> int:
        return len(self._last_seen)


class SceneChange:
    """Notices when the whole picture changes at once (a PTZ move, a cut in a recorded
    clip, a camera swapped behind the same URL): tracks must not carry over, or a
    newcomer inherits the identity evidence of whoever stood there before.

    Compares each frame's 64x36 grey thumbnail with the previous one; ``threshold`` is
    the mean absolute difference (0-255) above which the scene changed. People moving,
    even close to the camera, stay far below it (under 14 on the test clip; cuts are
    above 27); lower values end tracks on sudden lighting changes too.
    """

    def __init__(self, threshold: float = 22.0) -> None:
        self._threshold = threshold
        self._previous: npt.NDArray[np.float32] | None = None

    def changed(self, image: npt.NDArray[np.uint8]) -> bool:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
        previous, self._previous = self._previous, thumb
        if previous is None:
            return False
        return float(np.abs(thumb - previous).mean()) > self._threshold
