"""Builders of the records many tests need: a detected face, a best shot, a track's
decision, and an alert written straight into a store.

A folder camera's frames are ``photo_folder``: links to real photos, never copies.

Defaults are plain valid values (a 50 px face, quality 0.9, score 0.6 against the default
pack's threshold 0.363), so a test names only what it asserts on. ``insert_alert`` writes
the row itself: it is for tests of what reads, reviews or deletes alerts, not of how an
alert is raised (those go through ``app.video.events`` or a real camera).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from frvs.alerts.tables import AlertRow
from frvs.app import Application
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


def insert_alert(app: Application, *, gallery: str = "watch", subject: str = "anchor",
                 camera: str = "gate", score: float = 0.9, status: str = "new",
                 two_person: bool = False, at: datetime | None = None,
                 crop_path: str | None = None) -> int:
    """The id of a new alert row written straight into ``app``'s store (no audit entry,
    no evidence unless ``crop_path`` names a file the test wrote)."""
    when = at or datetime.now(UTC)
    row = AlertRow(camera=camera, track_id=1, gallery=gallery, subject=subject, score=score,
                   threshold=0.4, attempts=1, at=when, frame_time=0.0, quality=0.9,
                   crop_path=crop_path, status=status, two_person=two_person,
                   created_at=when, decided_at=None if status == "new" else when)
    with app.store.unit(write=True) as uow:
        uow.session.add(row)
        uow.session.flush()
        return int(row.id)


def photo_folder(folder: Path, photos: list[Path]) -> Path:
    """``folder``, made, holding a link to each of ``photos`` (a folder camera's frames)."""
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).symlink_to(photo)
    return folder
