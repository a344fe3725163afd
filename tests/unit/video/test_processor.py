"""TrackProcessor end to end on literal detections: one embedding per attempt, none once
a track is decided or given up, per-track state dropped when the track ends.

The detector is scripted (the faces of each frame are given) and embeddings come from
a literal table per track, so the identity rules are exercised exactly; alignment,
quality, ByteTrack, best shots and the in-memory matcher are the real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from frvs.config.settings import load_settings
from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.core.templates import Template
from frvs.imaging.decode import BGRImage
from frvs.models.pack import ModelPack
from frvs.models.registry import PackRegistry
from frvs.video.memory_matcher import TemplateMatcher
from frvs.video.models import Frame, Shot, Sighting, TrackDecision
from frvs.video.processor import DetectionScale, ProcessorOptions, TrackProcessor
from frvs.video.sweep import SweepPolicy
from frvs.video.tracking import TrackerOptions

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DIM = 128


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> ModelPack:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("data"))
    return PackRegistry(settings.packs, settings.default_pack).get("yunet_sface")


def face(x: float, eye_px: float) -> FaceDetection:
    """A frontal face with eyes ``eye_px`` apart, its box about 2.5 times that."""
    size = 2.5 * eye_px
    y = 100.0
    points = np.array([[x + 0.3 * size, y + 0.4 * size], [x + 0.3 * size + eye_px, y + 0.4 * size],
                       [x + 0.5 * size, y + 0.6 * size], [x + 0.35 * size, y + 0.8 * size],
                       [x + 0.65 * size, y + 0.8 * size]], dtype=np.float32)
    return FaceDetection(Box(x, y, size, size), Landmarks(points), 0.95)


class ScriptedDetector:
    """Returns the faces given for each successive frame."""

    def __init__(self, script: Sequence[Sequence[FaceDetection]]) -> None:
        self._script = list(script)
        self._calls = 0

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        faces = self._script[self._calls] if self._calls < len(self._script) else []
        self._calls += 1
        return list(faces)


def unit(index: int, pack: ModelPack) -> Template:
    v = np.zeros(DIM, dtype=np.float32)
    v[index] = 1.0
    return Template(v, pack.info.space)


class Run:
    """A processor at 5 fps over scripted frames; templates by face position."""

    def __init__(self, pack: ModelPack, script: list[list[FaceDetection]]) -> None:
        matcher = TemplateMatcher()
        matcher.add_gallery("watch", "watch_list", 0.363, "yunet_sface", pack.info.space)
        matcher.enrol("watch", "ann", unit(0, pack))
        matcher.enrol("watch", "bob", unit(1, pack))
        self.pack = replace(pack, detector=ScriptedDetector(script))
        self.calls: list[int] = []
        # Every frame swept whole: the script is one list of faces per frame.
        options = ProcessorOptions(galleries=("watch",), detection=DetectionScale(1, 4096),
                                   sweep=SweepPolicy(interval=0),
                                   tracker=TrackerOptions(fps=5.0, lost_seconds=0.4))
        self.processor = TrackProcessor("cam", self.pack, matcher, options, self.embed)
        self.frames = len(script)
        rng = np.random.default_rng(7)
        self.image = rng.integers(60, 190, size=(360, 640, 3), dtype=np.uint8)

    def embed(self, shots: Sequence[Shot]) -> list[Template]:
        self.calls.append(len(shots))
        # Faces left of x=300 are ann; others are strangers (a direction nobody has).
        return [unit(0 if s.detection.box.x < 300 else 5, self.pack) for s in shots]

    def go(self) -> tuple[list[TrackDecision], list[Sighting]]:
        decisions: list[TrackDecision] = []
        sightings: list[Sighting] = []
        for i in range(self.frames):
            frame = Frame("cam", i, i * 0.2, T0 + timedelta(seconds=i * 0.2), self.image)
            step = self.processor.process(frame)
            decisions += step.decisions
            sightings += step.sightings
        sightings += self.processor.finish().sightings
        return decisions, sightings


ANN = 100.0  # x of a known face
STRANGER = 400.0  # x of an unknown face


@pytest.mark.parametrize(
    ("script", "decided", "embeddings"),
    [
        # Decided at the 2nd attempt; no attempt after that, none at the track's end.
        pytest.param([[face(ANN, 30)]] * 8, ["ann"], 2, id="known-stops-once-decided"),
        # Two attempts far below the threshold, then no more.
        pytest.param([[face(STRANGER, 30)]] * 8, [], 2, id="stranger-given-up"),
        # Given up at 20 px, tried again when the face grows to 32 px.
        pytest.param([[face(STRANGER, 20)]] * 4 + [[face(STRANGER, 32)]] * 4, [], 3,
                     id="stranger-retried-when-closer"),
        # Faces too small to embed: only the sighting's template, at the end.
        pytest.param([[face(ANN, 6)]] * 4, [], 1, id="too-small-embedded-once-at-end"),
        # Both at once: attempts of the same frame share one batch.
        pytest.param([[face(ANN, 30), face(STRANGER, 30)]] * 6, ["ann"], 4, id="two-tracks"),
    ],
)
def test_attempts_per_track(pack: ModelPack, script: list[list[FaceDetection]],
                            decided: list[str], embeddings: int) -> None:
    run = Run(pack, script)
    decisions, sightings = run.go()
    assert [d.subject for d in decisions] == decided
    assert sum(run.calls) == embeddings == run.processor.embeddings
    assert all(s.template is not None for s in sightings)


def test_two_tracks_attempt_in_one_batch(pack: ModelPack) -> None:
    run = Run(pack, [[face(ANN, 30), face(STRANGER, 30)]] * 3)
    run.go()
    assert run.calls[:2] == [2, 2]


def test_state_is_dropped_when_a_track_ends(pack: ModelPack) -> None:
    # ann for 3 frames, gone for 4 (> 0.4 s), then someone at the same place.
    script = [[face(ANN, 30)]] * 3 + [[]] * 4 + [[face(ANN, 30)]] * 3
    run = Run(pack, script)
    decisions, sightings = run.go()
    assert run.processor.live_tracks == 0
    assert [s.track_id for s in sightings] == [1, 2]
    # The newcomer earns its own decision from its own attempts, none inherited.
    assert [(d.track_id, d.attempts) for d in decisions] == [(1, 2), (2, 2)]
    assert sightings[0].matched is not None and sightings[0].frames == 3
