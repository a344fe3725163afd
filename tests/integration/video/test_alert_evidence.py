"""An alert's evidence (its best shot) is written only once the alert is decided: a
decision the repeat window suppresses writes no file at all, and a raised alert's row,
its ``alert.raise`` entry and its file agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from callers import LOCAL
from sqlalchemy import select
from video_app import make_app

from frvs.app import Application
from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.models.quality import FaceQuality, PoseEstimate
from frvs.oversight.tables import AuditEntryRow
from frvs.pipeline.camera import CAMERA_RUNNER
from frvs.video.models import Shot, TrackDecision
from frvs.video.processor import StepResult
from frvs.video.service import CameraSpec

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
CAMERA = CameraSpec("door", "/nonexistent/door", ("wl",))


def _decision(at: datetime, track: int) -> TrackDecision:
    face = FaceDetection(Box(0, 0, 50, 50), Landmarks.from_sequence(np.zeros(10)), 0.9)
    quality = FaceQuality(0.9, 50, 20, 100, 120, 40, PoseEstimate(0, 0, 0), 0.8)
    shot = Shot(1, 0, 0.0, at, face, quality, np.full((60, 60, 3), 128, np.uint8), face, 1.0)
    return TrackDecision(CAMERA.name, track, "wl", "watch_list", "suspect", 0.6, 0.363, 3,
                         0.0, at, shot)


def _evidence_path(decision: TrackDecision) -> str:
    return (f"alerts/{decision.camera}/{decision.captured_at:%Y%m%dT%H%M%S%f}-"
            f"{decision.track_id}.jpg")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Application]:
    application = make_app(tmp_path / "data")
    application.galleries.create(LOCAL, GallerySpec("wl", GalleryKind.WATCH_LIST,
                                                    purpose="test", legal_basis="test"))
    yield application
    application.stop()


def _raised_evidence(app: Application) -> list[Any]:
    with app.store.unit() as uow:
        results = uow.session.scalars(select(AuditEntryRow.result).where(
            AuditEntryRow.action == "alert.raise").order_by(AuditEntryRow.seq))
        return [(json.loads(r) if isinstance(r, str) else r)["evidence"] for r in results]


def test_a_suppressed_decision_writes_no_evidence(app: Application) -> None:
    media = app.store.media.root
    router = app.video.router
    first = _decision(T0, 1)
    router.handle(CAMERA, StepResult((first,)), CAMERA_RUNNER)
    assert (media / _evidence_path(first)).is_file()

    # Where the repeated decision's evidence would go, a folder: writing there fails.
    # Suppressed within the repeat window, the decision must not even try.
    repeat = _decision(T0 + timedelta(seconds=60), 2)
    (media / _evidence_path(repeat)).mkdir()
    router.handle(CAMERA, StepResult((repeat,)), CAMERA_RUNNER)
    assert app.video.alerts.suppressed == 1
    assert (media / _evidence_path(repeat)).is_dir()  # untouched

    later = _decision(T0 + timedelta(seconds=301), 3)
    router.handle(CAMERA, StepResult((later,)), CAMERA_RUNNER)
    alerts = sorted(app.video.alerts.list(), key=lambda a: a.at)
    assert [a.crop_path for a in alerts] == [_evidence_path(first), _evidence_path(later)]
    assert _raised_evidence(app) == [_evidence_path(first), _evidence_path(later)]
    files = {p.relative_to(media).as_posix() for p in (media / "alerts").rglob("*.jpg")
             if p.is_file()}
    assert files == {_evidence_path(first), _evidence_path(later)}
    assert app.video.alerts.evidence(LOCAL, alerts[1].id)[:2] == b"\xff\xd8"  # a JPEG
