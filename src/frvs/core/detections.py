"""A detected face: where it is, its five landmarks and how sure the detector is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from frvs.core.errors import InvalidRecordError
from frvs.core.geometry import Box, Landmarks


@dataclass(frozen=True, slots=True)
class FaceDetection:
    """One face found by a detector, in the coordinates of the image it was found in."""

    box: Box
    landmarks: Landmarks
    score: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0 + 1e-6:
            raise InvalidRecordError(f"detector score must be in [0, 1], got {self.score}")

    def scaled(self, factor: float) -> FaceDetection:
        """This detection in an image resized by ``factor``."""
        return FaceDetection(self.box.scaled(factor), self.landmarks.scaled(factor), self.score)

    def shifted(self, dx: float, dy: float) -> FaceDetection:
        """This detection with the image's origin moved by (-``dx``, -``dy``): found in a
        crop whose corner lies at (``dx``, ``dy``), it is ``shifted(dx, dy)`` in the whole
        image; ``shifted(-x0, -y0)`` puts it into a crop cut at (x0, y0)."""
        b = self.box
        points = self.landmarks.points + np.array([dx, dy], dtype=np.float32)
        return FaceDetection(Box(b.x + dx, b.y + dy, b.w, b.h),
                             Landmarks(points.astype(np.float32)), self.score)

