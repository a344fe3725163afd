"""The two protocols a model pack implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from frvs.core.detections import FaceDetection
from frvs.core.templates import ModelSpace, Template
from frvs.imaging.decode import BGRImage


class Detector(Protocol):
    """Finds faces in a BGR image already scaled to the detector's working size."""

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        """All faces above the detector's score threshold, best first."""
        ...


@runtime_checkable
class GriddedDetector(Protocol):
    """A detector that scores fixed cells of its input (a CNN with strides, e.g. YuNet):
    a crop whose corner lies on its coarsest grid (``grid`` pixels) finds a face inside it
    as the whole image does. Video searches only windows around tracked faces between
    whole-frame sweeps with such a detector (``video/sweep.py``); others (dlib's HOG
    pyramid) are given every frame whole."""

    grid: int

    def detect(self, image: BGRImage) -> list[FaceDetection]: ...


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
