"""Detection at a working scale: the one place an image is resized for a detector.

Still images (``faces/service.py``) are only ever shrunk to a maximum side; video frames
(``video/processor.py``) may also be enlarged so distant faces reach the detector's
smallest anchors. Each chooses its factor and interpolation; resizing, detecting and
mapping the results back to the original image happen here.
"""

from __future__ import annotations

import cv2
import numpy as np

from frvs.core.detections import FaceDetection
from frvs.imaging.decode import BGRImage
from frvs.models.ports import Detector


def detect_at_scale(
    detector: Detector, image: BGRImage, factor: float, interpolation: int
) -> list[FaceDetection]:
    """Faces of ``image`` found in a copy resized by ``factor``, in ``image`` coordinates.

    A factor of exactly 1 detects on ``image`` itself, without a copy; ``interpolation``
    is an OpenCV flag (``cv2.INTER_AREA``, ``cv2.INTER_LINEAR``).
    """
    if factor == 1.0:
        return detector.detect(image)
    resized = resize_for_detection(image, factor, interpolation)
    return [d.scaled(1.0 / factor) for d in detector.detect(resized)]


def resize_for_detection(image: BGRImage, factor: float, interpolation: int) -> BGRImage:
    """``image`` resized by ``factor`` as ``detect_at_scale`` resizes it (``image`` itself
    at 1), for callers that detect in parts of the resized copy."""
    if factor == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)
