"""Turning pixels FRVS keeps (face crops, evidence frames, identity-check images) into JPEG."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from frvs.core.errors import InvalidInputError

EVIDENCE_QUALITY = 90
"""JPEG quality of sighting and alert crops, evidence frames and identity-check images."""

ENROLMENT_QUALITY = 92
"""JPEG quality of enrolled face crops: kept for as long as the subject, shown to reviewers."""


Pixels = npt.NDArray[np.integer[Any] | np.floating[Any]]
"""What OpenCV encodes: a decoded image, a crop, or a resized copy of either."""


def encode_jpeg(image: Pixels, quality: int = EVIDENCE_QUALITY) -> bytes:
    """``image`` (8-bit BGR or grey) as JPEG bytes at ``quality`` (1-100)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR or grey array
        raise InvalidInputError("cannot encode the image as JPEG")
    return bytes(np.asarray(data).tobytes())
