"""Detection at a working scale (models/scaling.py): resize, detect, map back."""

from __future__ import annotations

import cv2
import numpy as np

from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.imaging.decode import BGRImage
from frvs.models.scaling import detect_at_scale


class _OneFace:
    """A detector that reports one face at a fixed place of whatever it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        self.seen.append(image.shape)
        h, w = image.shape[:2]
        points = np.array([[w * 0.4, h * 0.4], [w * 0.6, h * 0.4], [w * 0.5, h * 0.5],
                           [w * 0.42, h * 0.6], [w * 0.58, h * 0.6]], np.float32)
        return [FaceDetection(Box(w * 0.25, h * 0.25, w * 0.5, h * 0.5), Landmarks(points),
                              0.9)]


def test_factor_one_detects_on_the_image_itself() -> None:
    detector = _OneFace()
    image = np.zeros((100, 200, 3), np.uint8)
    (face,) = detect_at_scale(detector, image, 1.0, cv2.INTER_AREA)
    assert detector.seen == [(100, 200, 3)]
    assert face.box.w == 100


def test_results_are_mapped_back_to_the_original_image() -> None:
    for factor in (0.5, 1.5):
        detector = _OneFace()
        (face,) = detect_at_scale(detector, np.zeros((100, 200, 3), np.uint8), factor,
                                  cv2.INTER_LINEAR)
        assert detector.seen == [(round(100 * factor), round(200 * factor), 3)]
        assert abs(face.box.x - 50) < 1e-3 and abs(face.box.w - 100) < 1e-3
