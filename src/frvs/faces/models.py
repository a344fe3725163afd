"""Records the face engine returns."""

from __future__ import annotations

from dataclasses import dataclass

from frvs.core.detections import FaceDetection
from frvs.core.templates import Template
from frvs.models.quality import FaceQuality


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face with its quality, in original image coordinates."""

    detection: FaceDetection
    quality: FaceQuality

    def as_dict(self) -> dict[str, object]:
        return {
            "box": self.detection.box.as_list(),
            "landmarks": self.detection.landmarks.as_list(),
            "score": round(self.detection.score, 4),
            "quality": self.quality.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class EmbeddedFace:
    """A face and its template."""

    face: Face
    template: Template


@dataclass(frozen=True, slots=True)
class ProbeFace:
    """The one face of an image used for a 1:1 comparison, and why it was chosen."""

    image: str
    face: EmbeddedFace
    faces_found: int

    @property
    def note(self) -> str | None:
        if self.faces_found > 1:
            return f"{self.faces_found} faces found; the largest was used"
        return None

    def as_dict(self) -> dict[str, object]:
        data = {"image": self.image, "faces_found": self.faces_found, **self.face.face.as_dict()}
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of a 1:1 comparison at a threshold."""

    score: float
    threshold: float
    pack: str
    a: ProbeFace
    b: ProbeFace

    @property
    def same(self) -> bool:
        return self.score >= self.threshold

    def as_dict(self) -> dict[str, object]:
        return {
            "score": round(self.score, 6),
            "threshold": self.threshold,
            "same": self.same,
            "pack": self.pack,
            "faces": [self.a.as_dict(), self.b.as_dict()],
        }
