"""Audited intake of sightings from edge nodes (``device`` keys).

An edge node tracks faces itself and sends, per ended track, its best-shot crop and the
track's times. The service embeds the crop with the pack of the camera's galleries,
matches it there, and hands the result to the same event router the local camera
pipelines use, so alerts, attendance and sighting retention behave the same. Each
submission is an identification and is audited (camera, track, crop digest, result).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from frvs.core.caller import record_refusal
from frvs.core.errors import InvalidInputError, NoFaceError
from frvs.core.times import check_time
from frvs.galleries.ports import FaceAnalyser
from frvs.imaging.decode import BGRImage
from frvs.oversight.models import AuditContext
from frvs.pipeline.services import VideoServices
from frvs.storage.store import Store
from frvs.video.models import Shot, Sighting, TrackDecision
from frvs.video.processor import StepResult


@dataclass(frozen=True, slots=True)
class EdgeSighting:
    """What a device reports about one ended track."""

    camera: str
    track_id: int
    first_seen: datetime
    last_seen: datetime
    frames: int

    def __post_init__(self) -> None:
        check_time(self.first_seen, "first_seen")
        check_time(self.last_seen, "last_seen")
        if self.last_seen < self.first_seen:
            raise InvalidInputError("last_seen is before first_seen")


@dataclass(frozen=True, slots=True)
class EdgeResult:
    camera: str
    track_id: int
    subject: str | None
    gallery: str | None
    score: float | None

    def as_dict(self) -> dict[str, object]:
        return {"camera": self.camera, "track": self.track_id, "subject": self.subject,
                "gallery": self.gallery,
                "score": None if self.score is None else round(self.score, 6)}


class EdgeIntake:
    """Turns a device's best shot into a sighting (and an alert or attendance event)."""

    def __init__(self, video: VideoServices, store: Store, analyser: FaceAnalyser) -> None:
        self._video = video
        self._store = store
        self._analyser = analyser

    def submit(self, context: AuditContext, report: EdgeSighting, crop: BGRImage,
               crop_bytes: bytes) -> EdgeResult:
        inputs = {"camera": report.camera, "track": report.track_id,
                  "crop_sha256": hashlib.sha256(crop_bytes).hexdigest(),
                  "first_seen": report.first_seen.isoformat(),
                  "last_seen": report.last_seen.isoformat()}
        # Success leaves the sighting's own ``sighting.record`` entry, written with it
        # (and ``alert.raise`` with an alert); a refusal leaves ``sighting.submit``.
        try:
            spec = self._video.cameras.get(report.camera)
            pack = self._video.matcher.pack_for(spec.galleries)
            faces = self._analyser.analyse(crop, pack)
            if not faces:
                raise NoFaceError("the best-shot crop holds no face")
            face = faces[0]
            shot = Shot(report.track_id, 0, 0.0, report.last_seen, face.face.detection,
                        face.face.quality, crop, face.face.detection, 1.0, face.template)
            ranked = self._video.matcher.match([face.template], spec.galleries)[0]
            best = max(ranked, key=lambda c: c.score, default=None)
            decision = None
            if best is not None and best.passes:
                decision = TrackDecision(report.camera, report.track_id, best.gallery,
                                         best.gallery_kind, best.subject, best.score,
                                         best.threshold, 1, 0.0, report.last_seen, shot)
            duration = (report.last_seen - report.first_seen).total_seconds()
            sighting = Sighting(report.camera, report.track_id, report.first_seen,
                                report.last_seen, 0.0, duration, report.frames, shot, best,
                                decision, 1)
            # The device is the caller: an alert it raises is recorded as raised for it.
            self._video.router.handle(spec, StepResult(
                decisions=(decision,) if decision else (), sightings=(sighting,)), context)
        except Exception as exc:
            record_refusal(self._store, context, "sighting.submit", inputs, exc)
            raise
        return EdgeResult(report.camera, report.track_id,
                          decision.subject if decision else None,
                          decision.gallery if decision else None,
                          decision.score if decision else None)
