"""FaceTracker (real ByteTrack) hands each person one track id and reports when a
track ends, so per-track state is finalised and cleared; SceneChange ends tracks on
cuts."""

from __future__ import annotations

import numpy as np
import pytest

from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.video.tracking import FaceTracker, SceneChange, TrackerOptions

# 5 fps, a track survives 0.4 s (2 frames) without a detection.
OPTIONS = TrackerOptions(fps=5.0, lost_seconds=0.4)


def face(x: float, y: float, size: float = 60.0, score: float = 0.95) -> FaceDetection:
    points = np.array([[x + 0.3 * size, y + 0.4 * size], [x + 0.7 * size, y + 0.4 * size],
                       [x + 0.5 * size, y + 0.6 * size], [x + 0.35 * size, y + 0.8 * size],
                       [x + 0.65 * size, y + 0.8 * size]], dtype=np.float32)
    return FaceDetection(Box(x, y, size, size), Landmarks(points), score)


A = (100.0, 100.0)  # where person A stands
B = (400.0, 120.0)  # where person B stands


def run(frames: list[list[tuple[float, float]]]) -> tuple[list[list[int]], list[int]]:
    """Track ids per frame (in detection order) and every track that ended."""
    tracker = FaceTracker(OPTIONS)
    ids: list[list[int]] = []
    ended: list[int] = []
    for places in frames:
        step = tracker.update([face(x, y) for x, y in places])
        by_place = {(f.box.x, f.box.y): t for t, f in step.faces}
        ids.append([by_place[p] for p in places if p in by_place])
        ended.extend(step.ended)
    ended.extend(tracker.finish())
    return ids, ended


def shift(p: tuple[float, float], dx: float) -> tuple[float, float]:
    return (p[0] + dx, p[1])


@pytest.mark.parametrize(
    ("frames", "expected_ids", "expected_ended"),
    [
        pytest.param([[A], [shift(A, 4)], [shift(A, 8)]], [[1], [1], [1]], [1],
                     id="one-person-walking-keeps-one-id"),
        pytest.param([[A, B], [A, B], [A, B]], [[1, 2], [1, 2], [1, 2]], [1, 2],
                     id="two-people-two-ids"),
        # A is missed for one frame: still within lost_seconds, same track.
        pytest.param([[A], [], [A]], [[1], [], [1]], [1], id="short-miss-same-track"),
        # A gone for 4 frames (> 2 allowed): the track ends, whoever appears at the
        # same place later gets a new id and none of the old evidence. A new track
        # after the first frame is confirmed on its second detection.
        pytest.param([[A], [], [], [], [], [A], [A], [A]],
                     [[1], [], [], [], [], [], [2], [2]], [1, 2], id="long-gap-new-track"),
    ],
)
def test_tracks_are_handed_out_and_ended(frames: list[list[tuple[float, float]]],
                                         expected_ids: list[list[int]],
                                         expected_ended: list[int]) -> None:
    ids, ended = run(frames)
    assert ids == expected_ids
    assert sorted(ended) == expected_ended


def test_track_end_is_reported_once_and_ids_stay_unique_after_finish() -> None:
    tracker = FaceTracker(OPTIONS)
    tracker.update([face(*A)])
    reported = [t for _ in range(5) for t in tracker.update([]).ended]
    assert reported == [1]
    assert tracker.live_tracks == 0
    tracker.update([face(*A)])
    tracker.update([face(*A)])
    assert tracker.finish() == (2,)
    (again,) = tracker.update([face(*A)]).faces
    assert again[0] == 3  # never reuses an id, even after a reset


@pytest.mark.parametrize(
    ("first", "second", "changed"),
    [
        pytest.param(0, 0, False, id="same-picture"),
        pytest.param(100, 110, False, id="small-lighting-change"),
        pytest.param(20, 200, True, id="cut"),
    ],
)
def test_scene_change(first: int, second: int, changed: bool) -> None:
    scene = SceneChange(22.0)
    assert not scene.changed(np.full((72, 128, 3), first, dtype=np.uint8))
    assert scene.changed(np.full((72, 128, 3), second, dtype=np.uint8)) is changed
