"""What an edge node reports of a track's best shot, shared by the node that makes it
and the centre that reads it: the template's model space and float32 bytes, and the
shot's quality measurements as plain numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from frvs.core.errors import InvalidInputError
from frvs.core.templates import ModelSpace, Template
from frvs.models.quality import FaceQuality, PoseEstimate

# How far from 1 a node's template's length may be (float32 rounding of a normalised
# vector stays within ~1e-6 of it).
UNIT_TOLERANCE = 1e-3


def quality_numbers(q: FaceQuality) -> dict[str, float]:
    """A shot's quality as the node sends it."""
    return {"detector_score": q.detector_score, "face_size_px": q.face_size_px,
            "inter_eye_px": q.inter_eye_px, "sharpness": q.sharpness,
            "brightness": q.brightness, "contrast": q.contrast, "yaw": q.pose.yaw,
            "pitch": q.pose.pitch, "roll": q.pose.roll, "overall": q.overall}


@dataclass(frozen=True, slots=True)
class NodeTemplate:
    """The best shot's template as the node made it: its model space's key, the float32
    vector's bytes, and the shot's quality measurements."""

    space: str
    vector: bytes
    quality: dict[str, float]

    def as_template(self, space: ModelSpace) -> Template:
        if len(self.vector) != 4 * space.dimension:
            raise InvalidInputError(f"a template of {space.key} has {space.dimension} "
                                    f"float32 values; got {len(self.vector)} bytes")
        values = np.frombuffer(self.vector, dtype="<f4")
        if not np.all(np.isfinite(values)):
            raise InvalidInputError("the template holds non-finite values")
        # A node sends the unit-length vector its pack made; anything else (zeros,
        # denormals, huge values) is not a template of this space, whatever the space
        # string claims. Measured in float64: float32 squares overflow.
        norm = float(np.linalg.norm(values.astype(np.float64)))
        if not abs(norm - 1.0) <= UNIT_TOLERANCE:
            raise InvalidInputError(f"a template of {space.key} has unit length; this one's "
                                    f"is {norm:.6g}: not a template this node's pack made")
        return Template.from_raw(values, space)

    def face_quality(self) -> FaceQuality:
        q = self.quality

        def get(name: str) -> float:
            value = float(q.get(name, 0.0))
            if not math.isfinite(value):
                raise InvalidInputError(f"quality {name} must be finite")
            return value

        return FaceQuality(get("detector_score"), get("face_size_px"), get("inter_eye_px"),
                           get("sharpness"), get("brightness"), get("contrast"),
                           PoseEstimate(get("yaw"), get("pitch"), get("roll")),
                           min(1.0, max(0.0, get("overall"))))
