"""Detection at a working scale: the one place an image is resized for a detector.

Still images (``faces/service.py``) are only ever shrunk to a maximum side; video frames
(``video/processor.py``) may also be enlarged so distant faces reach the detector's
smallest anchors. Each chooses its factor; the interpolation for a factor, resizing,
detecting and mapping the results back to the original image happen here.
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


def interpolation_for(factor: float) -> int:
    """Bilinear down to half size, area averaging below.

    Down to 0.5x every source pixel still weighs in a bilinear sample, so nothing is
    aliased away; OpenCV's area averaging at a non-integer factor such as 0.75 (720p to
    the default 960 cap) cost 5.7 ms a frame against 1.2 ms bilinear, a tenth of a 720p
    camera's analysis, for no face found or lost on the benchmark clip. Still images
    keep area averaging (``faces/service.py``).
    """
    return cv2.INTER_LINEAR if factor >= 0.5 else cv2.INTER_AREA


def resize_for_detection(image: BGRImage, factor: float, interpolation: int) -> BGRImage:
    """``image`` resized by ``factor`` as ``detect_at_scale`` resizes it (``image`` itself
    at 1), for callers that detect in parts of the resized copy."""
    if factor == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)
