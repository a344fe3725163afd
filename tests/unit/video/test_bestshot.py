"""Which shot a sighting keeps: the best one, or an already embedded one close enough
in quality that the sighting needs no embedding of its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.core.templates import ModelSpace, Template
from frvs.models.quality import FaceQuality, PoseEstimate
from frvs.video.bestshot import BestShots
from frvs.video.models import Shot

SPACE = ModelSpace("test", "1", 4)
FACE = FaceDetection(Box(0, 0, 50, 50),
                     Landmarks(np.array([[15, 20], [35, 20], [25, 30], [18, 40], [32, 40]],
                                        dtype=np.float32)), 0.9)


def shot(index: int, overall: float, embedded: bool = False) -> Shot:
    quality = FaceQuality(0.9, 50.0, 20.0, 100.0, 0.5, 0.5, PoseEstimate(0, 0, 0), overall)
    template = Template.from_raw(np.ones(4, dtype=np.float32), SPACE) if embedded else None
    return Shot(1, index, index * 0.2, datetime(2026, 1, 1, tzinfo=UTC), FACE, quality,
                np.zeros((50, 50, 3), dtype=np.uint8), FACE, 1.0, template)


@pytest.mark.parametrize(
    ("embedded", "later", "gain", "kept"),
    [
        pytest.param(0.8, 0.85, 0.15, 0, id="close-enough-reuses-embedded"),
        pytest.param(0.6, 0.9, 0.15, 1, id="much-better-is-embedded"),
        pytest.param(0.8, 0.85, 0.0, 1, id="gain-0-embeds-any-better"),
        pytest.param(0.9, 0.5, 0.15, 0, id="embedded-is-best"),
    ],
)
def test_shot_for_sighting(embedded: float, later: float, gain: float, kept: int) -> None:
    shots = BestShots(keep=3)
    first = shot(0, embedded)
    shots.offer(first, eligible=True)
    assert shots.take_pending() is first
    shots.replace(replace(first, template=shot(0, embedded, embedded=True).template))
    shots.offer(shot(1, later), eligible=True)
    chosen = shots.for_sighting(gain)
    assert chosen is not None and chosen.frame_index == kept
    assert (chosen.template is not None) == (kept == 0)


def test_nothing_embedded_keeps_the_best() -> None:
    shots = BestShots(keep=3)
    shots.offer(shot(0, 0.4), eligible=False)
    shots.offer(shot(1, 0.7), eligible=False)
    chosen = shots.for_sighting(0.15)
    assert chosen is not None and chosen.frame_index == 1 and chosen.template is None
