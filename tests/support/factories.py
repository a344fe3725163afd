"""Builders of the records many tests need: a detected face, a best shot, a track's
decision; a folder of real photos for a folder camera; and an image's encoded bytes.

Defaults are plain valid values (a 50 px face, quality 0.9, score 0.6 against the default
pack's threshold 0.363), so a test names only what it asserts on.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.models.quality import FaceQuality, PoseEstimate
from frvs.video.models import Shot, TrackDecision


def face(box: Box | None = None, score: float = 0.9) -> FaceDetection:
    """A detection at ``box`` (default 50 x 50 at the origin) with all landmarks at 0."""
    return FaceDetection(box or Box(0, 0, 50, 50), Landmarks.from_sequence(np.zeros(10)),
                         score)


def shot(at: datetime, track_id: int = 1) -> Shot:
    """A good best shot of track ``track_id`` seen at ``at``: a black 60 px patch."""
    detection = face()
    quality = FaceQuality(0.9, 50, 20, 100, 120, 40, PoseEstimate(0, 0, 0), 0.8)
    return Shot(track_id, 0, 0.0, at, detection, quality, np.zeros((60, 60, 3), np.uint8),
                detection, 1.0)


def decision(camera: str = "gate", subject: str = "suspect", *, gallery: str = "watch",
             kind: str = "watch_list", at: datetime | None = None,
             track_id: int = 1) -> TrackDecision:
    """Track ``track_id`` of ``camera`` identified as ``subject`` of ``gallery`` (score
    0.6 over three shots against 0.363) at ``at`` (default: now)."""
    when = at or datetime.now(UTC)
    return TrackDecision(camera, track_id, gallery, kind, subject, 0.6, 0.363, 3, 0.0, when,
                         shot(when, track_id))


def photo_folder(folder: Path, photos: list[Path]) -> Path:
    """``folder``, made, holding a link to each of ``photos`` (a folder camera's frames)."""
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).symlink_to(photo)
    return folder


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """``image`` saved as ``fmt`` (Pillow's format name, with its save ``params``)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()
