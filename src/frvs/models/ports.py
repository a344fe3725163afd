"""The two protocols a model pack implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from frvs.core.detections import FaceDetection
from frvs.core.templates import ModelSpace, Template
from frvs.imaging.decode import BGRImage


class Detector(Protocol):
    """Finds faces in a BGR image already scaled to the detector's working size."""

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        """All faces above the detector's score threshold, best first."""
        ...


class Embedder(Protocol):
    """Turns detected faces into templates of one model space."""

    @property
    def space(self) -> ModelSpace: ...

    def align(self, image: BGRImage, face: FaceDetection) -> BGRImage:
        """The face cropped and aligned the way the embedder sees it."""
        ...

    def embed(self, image: BGRImage, faces: Sequence[FaceDetection]) -> list[Template]:
        """One template per face, in order; faces are batched where the runtime allows."""
        ...
