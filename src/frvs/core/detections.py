"""A detected face: where it is, its five landmarks and how sure the detector is."""

from __future__ import annotations

from dataclasses import dataclass

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
