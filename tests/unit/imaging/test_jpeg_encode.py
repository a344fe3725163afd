"""JPEG encoding of what FRVS keeps (imaging/encode.py)."""

from __future__ import annotations

import cv2
import numpy as np

from frvs.imaging.encode import ENROLMENT_QUALITY, EVIDENCE_QUALITY, encode_jpeg


def _image() -> np.ndarray:
    rng = np.random.default_rng(7)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (9, 9), 3)
    return np.asarray(smooth, np.uint8)


def test_encodes_a_decodable_jpeg_of_the_same_size() -> None:
    data = encode_jpeg(_image())
    assert data[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (96, 128, 3)
    assert float(np.abs(decoded.astype(int) - _image().astype(int)).mean()) < 4


def test_quality_is_the_callers_choice() -> None:
    assert EVIDENCE_QUALITY == 90 and ENROLMENT_QUALITY == 92
    low, high = encode_jpeg(_image(), 20), encode_jpeg(_image(), ENROLMENT_QUALITY)
    assert len(low) < len(high)
