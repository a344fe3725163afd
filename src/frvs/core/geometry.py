"""Boxes and landmarks in image pixel coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from frvs.core.errors import InvalidRecordError

FloatArray = npt.NDArray[np.float32]

LANDMARK_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")
"""Order of the five landmarks, as seen in the image (the subject's right eye is on the
image's left). YuNet emits them in this order; other packs convert to it."""


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box: top-left corner, width and height, in pixels."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        if not (self.w >= 0 and self.h >= 0):
            raise InvalidRecordError(f"box size must be >= 0, got w={self.w}, h={self.h}")

    @property
    def area(self) -> float:
        return self.w * self.h

    def scaled(self, factor: float) -> Box:
        """This box in an image resized by ``factor``."""
        return Box(self.x * factor, self.y * factor, self.w * factor, self.h * factor)

    def as_list(self) -> list[float]:
        return [round(self.x, 2), round(self.y, 2), round(self.w, 2), round(self.h, 2)]


@dataclass(frozen=True, slots=True)
class Landmarks:
    """Five facial landmarks as a (5, 2) float32 array, ordered as ``LANDMARK_NAMES``."""

    points: FloatArray

    def __post_init__(self) -> None:
        shape = getattr(self.points, "shape", None)
        if shape != (5, 2):
            raise InvalidRecordError(f"landmarks must have shape (5, 2), got {shape}")
        if not np.all(np.isfinite(self.points)):
            raise InvalidRecordError("landmarks must be finite")

    @classmethod
    def from_sequence(cls, values: npt.ArrayLike) -> Landmarks:
        return cls(np.asarray(values, dtype=np.float32).reshape(5, 2))

    def scaled(self, factor: float) -> Landmarks:
        return Landmarks((self.points * np.float32(factor)).astype(np.float32))

    @property
    def inter_eye_distance(self) -> float:
        return float(np.linalg.norm(self.points[0] - self.points[1]))

    def as_list(self) -> list[list[float]]:
        return [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]
