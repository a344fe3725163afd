"""Sweeps and windows: the whole frame every ``interval`` seconds, tracked faces between.

The cadence and the window geometry are checked on literal values; that a window finds
the face the whole frame would have found is checked with the real detector on frames
of the real clip at 720p.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from frvs.config.settings import load_settings
from frvs.core.detections import FaceDetection
from frvs.core.errors import InvalidRecordError
from frvs.core.geometry import Box, Landmarks
from frvs.imaging.decode import BGRImage, read_image
from frvs.models.pack import ModelPack
from frvs.models.registry import PackRegistry
from frvs.video.memory_matcher import TemplateMatcher
from frvs.video.models import Frame
from frvs.video.processor import (
    DetectionScale,
    ProcessorOptions,
    TrackProcessor,
    detect_in_windows,
    detect_scaled,
)
from frvs.video.sampling import FrameSampler
from frvs.video.sources import open_source
from frvs.video.sweep import Sighted, Sweeper, SweepPolicy, Window, merge
from frvs.video.tracking import TrackerOptions


def test_swept_whole_every_interval_of_media_time() -> None:
    sweeper = Sweeper(SweepPolicy(interval=0.5))
    at_5fps = [sweeper.due(i * 0.2) for i in range(10)]
    assert [i for i, due in enumerate(at_5fps) if due] == [0, 3, 6, 9]


def test_interval_zero_sweeps_every_frame_and_a_rewind_sweeps() -> None:
    every = Sweeper(SweepPolicy(interval=0))
    assert all(every.due(i * 0.2) for i in range(5))
    looped = Sweeper(SweepPolicy(interval=0.5))
    assert looped.due(9.8) and not looped.due(10.0)
    assert looped.due(0.0)  # the file looped: time went back
    looped.restart()
    assert looped.due(0.2)


def test_window_is_margin_face_sizes_around_the_face_inside_the_frame() -> None:
    sweeper = Sweeper(SweepPolicy(margin=1.0, min_window=96))
    (w,) = sweeper.windows([Sighted(Box(500, 300, 100, 100))], 720, 1280)
    assert (w.x0, w.y0, w.x1, w.y1) == (400, 200, 700, 500)
    (edge,) = sweeper.windows([Sighted(Box(1230, 680, 50, 40))], 720, 1280)
    assert (edge.x1, edge.y1) == (1280, 720) and edge.x0 == 1180 and edge.y0 == 630


def test_small_faces_get_the_least_window_and_missed_faces_a_wider_one() -> None:
    sweeper = Sweeper(SweepPolicy(margin=1.0, min_window=96))
    (small,) = sweeper.windows([Sighted(Box(500, 300, 10, 10))], 720, 1280)
    assert small.x1 - small.x0 == 96 and small.y1 - small.y0 == 96
    widths = [sweeper.windows([Sighted(Box(600, 300, 40, 40), missed)], 720, 1280)[0]
              for missed in (0, 1, 2, 5)]
    sizes = [w.x1 - w.x0 for w in widths]
    assert sizes == [120, 200, 280, 280]  # widened twice at most


def test_overlapping_windows_merge_and_keep_the_smallest_face() -> None:
    a, b = Window(0, 0, 100, 100, 40), Window(90, 50, 200, 150, 20)
    c, far = Window(190, 140, 300, 300, 60), Window(500, 500, 600, 600, 30)
    assert merge([a, b, c, far]) == [Window(0, 0, 300, 300, 20), far]
    assert merge([a, far]) == [a, far]


def test_window_scale_keeps_its_smallest_face_at_face_px() -> None:
    assert Window(0, 0, 900, 900, 300).factor(0.75, 128) == pytest.approx(128 / 300)
    assert Window(0, 0, 200, 200, 60).factor(0.75, 128) == 0.75  # never above the frame's


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(InvalidRecordError):
        SweepPolicy(interval=-1)
    with pytest.raises(InvalidRecordError):
        SweepPolicy(margin=0)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> ModelPack:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("data"))
    return PackRegistry(settings.packs, settings.default_pack).get("yunet_sface")


@pytest.fixture(scope="module")
def frames_360p(data_dir: Path) -> list[Frame]:
    """The clip's frames at 5 fps, as it is (640x360: detected enlarged 1.5x)."""
    source = open_source(str(data_dir / "video" / "short_hamilton_clip.mp4"), "clip")
    sampler = FrameSampler(5.0)
    return [f for f in iter(source.read, None) if sampler.keep(f.timestamp)]


@pytest.fixture(scope="module")
def frames_720p(frames_360p: list[Frame]) -> list[Frame]:
    """The same frames scaled to 1280x720 (detected shrunk 0.75x)."""
    return [Frame(f.camera, f.index, f.timestamp, f.captured_at,
                  np.asarray(cv2.resize(f.image, (1280, 720)), dtype=np.uint8))
            for f in frames_360p]


def _iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a.area + b.area - inter)


def test_windows_find_the_faces_the_whole_frame_finds(pack: ModelPack,
                                                      frames_720p: list[Frame]) -> None:
    """Around the faces of one analysed frame, the windows of the next find the faces
    that the whole next frame shows there, at the same place. They find little else: a
    large face the whole frame missed (found more surely at a window's smaller scale),
    or someone who took a tracked face's place at a cut."""
    scale, policy = DetectionScale(), SweepPolicy()
    sweeper = Sweeper(policy)
    tracked = found_again = found_total = extra = 0
    for before, frame in itertools.pairwise(frames_720p):
        previous = detect_scaled(pack, before.image, scale)
        whole = detect_scaled(pack, frame.image, scale)
        windows = sweeper.windows([Sighted(f.box) for f in previous], 720, 1280)
        found = detect_in_windows(pack, frame.image, scale, windows, face_px=policy.face_px,
                                  grid=32)
        for face in whole:
            if any(_iou(face.box, p.box) > 0.3 for p in previous):
                tracked += 1
                found_again += max((_iou(face.box, g.box) for g in found), default=0.0) > 0.7
        found_total += len(found)
        extra += sum(max((_iou(g.box, w.box) for w in whole), default=0.0) <= 0.7
                     for g in found)
    assert tracked > 60  # most of the clip's faces were compared
    assert found_again >= 0.97 * tracked
    assert extra <= 0.15 * found_total


@pytest.mark.slow
@pytest.mark.parametrize("size", ["360p", "720p"])
def test_sweeping_identifies_the_same_people_on_fewer_pixels(
        pack: ModelPack, size: str, request: pytest.FixtureRequest, data_dir: Path) -> None:
    """Both people of the clip are identified with sweeps as without, at either size
    (at 360p Alex Lacamoire's face is 25 px wide and decided in his track's last frame:
    landmarks a pixel off lose him), on under 70% of the pixels."""
    frames: list[Frame] = request.getfixturevalue(f"frames_{size}")
    pixels: list[int] = []

    class Counting:
        grid = 32  # YuNet's, which it wraps

        def detect(self, image: BGRImage) -> list[FaceDetection]:
            pixels.append(image.shape[0] * image.shape[1])
            return pack.detector.detect(image)

    counted = replace(pack, detector=Counting())
    outcome = {}
    for interval in (0.0, 0.5):
        matcher = TemplateMatcher()
        matcher.add_gallery("w", "watch_list", pack.info.thresholds.default, "yunet_sface",
                            pack.info.space)
        for name in ("lin-manuel-miranda", "alex-lacamoire"):
            image = read_image(data_dir / "video" / f"{name}.png")
            face = max(pack.detector.detect(image), key=lambda d: d.box.area)
            matcher.enrol("w", name, pack.embedder.embed(image, [face])[0])
        options = ProcessorOptions(galleries=("w",), sweep=SweepPolicy(interval=interval),
                                   tracker=TrackerOptions(fps=5.0))
        processor = TrackProcessor("clip", counted, matcher, options)
        pixels.clear()
        decided = set()
        for frame in frames:
            decided |= {d.subject for d in processor.process(frame).decisions}
        sightings = processor.finish().sightings
        outcome[interval] = (decided, len(sightings), sum(pixels))
    assert outcome[0.5][0] == outcome[0.0][0] == {"lin-manuel-miranda", "alex-lacamoire"}
    assert abs(outcome[0.5][1] - outcome[0.0][1]) <= 1
    assert outcome[0.5][2] < 0.7 * outcome[0.0][2]


# --- the processor with a detector on a grid, on literal squares ---------------------


class Unkeyed:
    """Finds each white (255) square in whatever image it is handed, in its coordinates;
    declares no grid (as dlib's HOG pyramid)."""

    def __init__(self) -> None:
        self.pixels = 0

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        self.pixels += image.shape[0] * image.shape[1]
        mask = (image[:, :, 0] == 255).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        faces = []
        for x, y, w, h, area in stats[1:]:
            if area < 16:
                continue
            box = Box(float(x), float(y), float(w), float(h))
            points = np.array([[x + .3 * w, y + .4 * h], [x + .7 * w, y + .4 * h],
                               [x + .5 * w, y + .6 * h], [x + .35 * w, y + .8 * h],
                               [x + .65 * w, y + .8 * h]], dtype=np.float32)
            faces.append(FaceDetection(box, Landmarks(points), 0.95))
        return faces


class Squares(Unkeyed):
    """The same, declaring a grid: the processor searches windows between sweeps."""

    grid = 32


def _scene(*squares: tuple[int, int], size: int = 60,
           shape: tuple[int, int] = (360, 640)) -> BGRImage:
    image = np.full((*shape, 3), 100, dtype=np.uint8)
    for x, y in squares:
        image[y:y + size, x:x + size] = 255
    return image


def _processor(pack: ModelPack, detector: Unkeyed, **tracker: float) -> TrackProcessor:
    matcher = TemplateMatcher()
    matcher.add_gallery("w", "watch_list", 0.363, "yunet_sface", pack.info.space)
    options = ProcessorOptions(galleries=("w",), detection=DetectionScale(1, 4096),
                               tracker=TrackerOptions(fps=5.0, **tracker))
    return TrackProcessor("cam", replace(pack, detector=detector), matcher, options,
                          lambda shots: [pack.embedder.embed_aligned(  # type: ignore[attr-defined]
                              [np.full((112, 112, 3), 128, np.uint8)])[0] for _ in shots])


def _frame(i: int, image: BGRImage) -> Frame:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return Frame("cam", i, i * 0.2, t0 + timedelta(seconds=i * 0.2), image)


@pytest.mark.parametrize("confirm", [1, 2])
def test_a_face_arriving_after_the_first_frame_is_tracked(pack: ModelPack,
                                                          confirm: int) -> None:
    """ByteTrack confirms a track that starts after its first frame only on a later
    match: the face found by a sweep is looked for in a window until it is."""
    detector = Squares()
    processor = _processor(pack, detector, confirm_frames=confirm)
    tracked = []
    for i in range(12):
        image = _scene((300, 150)) if i >= 2 else _scene()
        processor.process(_frame(i, image))
        tracked.append(processor.live_tracks)
    assert tracked[6:] == [1] * 6
    sightings = processor.finish().sightings
    assert len(sightings) == 1 and sightings[0].frames >= 12 - 3 - confirm


def test_faces_near_each_other_are_found_once(pack: ModelPack) -> None:
    """Windows kept apart by merging overlap again once their corners move onto the
    grid; a face is still reported once, by the window its centre lies in."""
    image = _scene((644, 500), (740, 500), size=20, shape=(1080, 1920))
    scale = DetectionScale()
    whole = detect_scaled(replace(pack, detector=Squares()), image, scale)
    windows = Sweeper(SweepPolicy()).windows([Sighted(f.box) for f in whole], 1080, 1920)
    assert len(windows) == 2 and not windows[0].overlaps(windows[1])
    found = detect_in_windows(replace(pack, detector=Squares()), image, scale, windows,
                              face_px=128, grid=32)
    assert sorted(f.box.x for f in found) == pytest.approx(sorted(f.box.x for f in whole),
                                                          abs=2)
    processor = _processor(pack, Squares())
    for i in range(6):
        processor.process(_frame(i, image))
    assert processor.live_tracks == 2


def test_a_detector_without_a_grid_is_given_every_frame_whole(pack: ModelPack) -> None:
    keyed, unkeyed = Squares(), Unkeyed()
    for detector in (keyed, unkeyed):
        processor = _processor(pack, detector)
        for i in range(9):
            processor.process(_frame(i, _scene((300, 150))))
    assert unkeyed.pixels == 9 * 360 * 640
    assert keyed.pixels < 0.6 * unkeyed.pixels

