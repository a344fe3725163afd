"""Audited intake of sightings from edge nodes (``device`` keys).

An edge node tracks faces itself and sends, per ended track, its best-shot crop and the
track's times. The service embeds the crop with the pack of the camera's galleries,
matches it there, and hands the result to the same event router the local camera
pipelines use, so alerts, attendance and sighting retention behave the same. Each
submission is an identification and is audited (camera, track, crop digest, result).

A device key reports only for the cameras it is bound to (``KeyService``; 403
otherwise), and only times the server can believe: none later than its clock plus the
allowed skew, none before the camera was registered, none so old that the camera's
retention has already passed. Refusals are audited (``sighting.submit``, ``refused``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from frvs.core.caller import record_refusal
from frvs.core.errors import (
    InvalidInputError,
    NoFaceError,
    NotFoundError,
    PermissionDeniedError,
)
from frvs.core.times import check_time
from frvs.galleries.ports import Clock, FaceAnalyser
from frvs.imaging.decode import BGRImage
from frvs.oversight.keys import KeyService
from frvs.oversight.models import AuditContext, Role
from frvs.pipeline.services import VideoServices
from frvs.storage.store import Store
from frvs.video.models import Shot, Sighting, TrackDecision
from frvs.video.processor import StepResult
from frvs.video.service import CameraSpec
from frvs.video.tables import CameraRow


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


@dataclass(frozen=True, slots=True)
class DevicePolicy:
    """What the centre believes of a device's report: its times may run ahead of the
    server's clock by at most ``clock_skew_s`` (and start no earlier than that before
    the camera was registered)."""

    clock_skew_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0 <= self.clock_skew_s <= 86_400:
            raise InvalidInputError(f"clock skew must be in [0, 86400] s, got {self.clock_skew_s}")


class EdgeIntake:
    """Turns a device's best shot into a sighting (and an alert or attendance event)."""

    def __init__(self, video: VideoServices, store: Store, analyser: FaceAnalyser,
                 keys: KeyService, *, clock: Clock, policy: DevicePolicy | None = None
                 ) -> None:
        self._video = video
        self._store = store
        self._analyser = analyser
        self._keys = keys
        self._clock = clock
        self._policy = policy or DevicePolicy()

    def admit(self, context: AuditContext, report: EdgeSighting) -> CameraSpec:
        """The camera ``report`` is for, if the caller may report for it and its times are
        believable; raises otherwise (403 for a camera the device key is not bound to,
        400 for times, 404 for an unknown camera). Not audited here: ``submit`` audits,
        and so does a route that admits a report before reading its upload."""
        actor = context.actor
        if actor.role is Role.DEVICE and actor.key_id is not None:
            key = self._keys.get(actor.key_id)
            if report.camera not in key.cameras:
                bound = ", ".join(key.cameras) or "no camera"
                raise PermissionDeniedError(
                    f"device key {key.key_id} may not report for camera {report.camera!r} "
                    f"(it is bound to {bound}; an admin binds it with 'frvs key update "
                    f"{key.key_id} --camera NAME')")
        elif actor.role is not Role.ADMIN:
            raise PermissionDeniedError("only device keys (and admin) report sightings")
        with self._store.unit() as uow:
            row = uow.session.scalar(select(CameraRow).where(CameraRow.name == report.camera))
            if row is None:
                raise NotFoundError(f"camera {report.camera!r} not found")
            registered = row.created_at
        spec = self._video.cameras.get(report.camera)
        self._check_times(report, spec, registered)
        return spec

    def _check_times(self, report: EdgeSighting, spec: CameraSpec,
                     registered: datetime) -> None:
        now = self._clock()
        skew = timedelta(seconds=self._policy.clock_skew_s)
        if report.last_seen > now + skew:
            raise InvalidInputError(
                f"last_seen {report.last_seen.isoformat()} is ahead of the server's clock "
                f"({now.isoformat(timespec='seconds')}) by more than the allowed "
                f"{self._policy.clock_skew_s:.0f} s: check the node's clock (NTP)")
        if report.first_seen < registered - skew:
            raise InvalidInputError(
                f"first_seen {report.first_seen.isoformat()} is before camera {spec.name!r} "
                f"was registered ({registered.isoformat(timespec='seconds')})")
        if report.last_seen + timedelta(days=spec.retention_days) <= now:
            raise InvalidInputError(
                f"last_seen {report.last_seen.isoformat()} is older than camera "
                f"{spec.name!r}'s sighting retention ({spec.retention_days} days): it would "
                "be deleted as soon as it was stored")

    def submit(self, context: AuditContext, report: EdgeSighting, crop: BGRImage,
               crop_bytes: bytes) -> EdgeResult:
        inputs = {"camera": report.camera, "track": report.track_id,
                  "crop_sha256": hashlib.sha256(crop_bytes).hexdigest(),
                  "first_seen": report.first_seen.isoformat(),
                  "last_seen": report.last_seen.isoformat()}
        # Success leaves the sighting's own ``sighting.record`` entry, written with it
        # (and ``alert.raise`` with an alert); a refusal leaves ``sighting.submit``.
        try:
            spec = self.admit(context, report)
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
