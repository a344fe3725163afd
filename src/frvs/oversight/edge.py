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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from frvs.alerts.models import Alert
from frvs.attendance.service import AttendanceEvent
from frvs.core.caller import record_refusal
from frvs.core.detections import FaceDetection
from frvs.core.errors import (
    FrvsError,
    InvalidInputError,
    ModelSpaceMismatchError,
    NoFaceError,
    NotFoundError,
    PermissionDeniedError,
)
from frvs.core.geometry import Box, Landmarks
from frvs.core.templates import ModelSpace
from frvs.core.times import Clock, check_time
from frvs.galleries.ports import FaceAnalyser
from frvs.imaging.decode import BGRImage
from frvs.imaging.encode import encode_jpeg
from frvs.oversight.keys import KeyService
from frvs.oversight.models import AuditContext, Role
from frvs.oversight.nodes import NodePolicy, NodeRegistry
from frvs.oversight.repository import AcceptedReport, EdgeReportKey, EdgeReportRepository
from frvs.pipeline.events import VideoEvent
from frvs.pipeline.services import VideoServices
from frvs.storage.database import StoreError
from frvs.storage.store import Store
from frvs.video.edge_report import NodeTemplate
from frvs.video.models import GalleryCandidate, Shot, Sighting, TrackDecision
from frvs.video.repository import CameraRepository
from frvs.video.service import CameraSpec, StoredSighting, is_camera_name


@dataclass(frozen=True, slots=True)
class EdgeSighting:
    """What a device reports about one ended track."""

    camera: str
    track_id: int
    first_seen: datetime
    last_seen: datetime
    frames: int

    def __post_init__(self) -> None:
        # Refused before any lookup: a name no camera can have (NUL, control characters)
        # would otherwise reach the store, where PostgreSQL rejects NUL (a 503 the node
        # would retry for ever).
        if not is_camera_name(self.camera):
            raise InvalidInputError(f"{self.camera!r} is not a camera name (1-100 letters, "
                                    "digits, '.', '_' or '-')")
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
    sighting: int | None = None
    alert: int | None = None
    replayed: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"camera": self.camera, "track": self.track_id, "subject": self.subject,
                "gallery": self.gallery,
                "score": None if self.score is None else round(self.score, 6),
                "sighting": self.sighting, "alert": self.alert, "replayed": self.replayed}


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
        # The node registry shares the device policy's clock-skew limit.
        self.nodes = NodeRegistry(store, keys, video.cameras, clock=clock,
                                  policy=NodePolicy(clock_skew_s=self._policy.clock_skew_s))

    def admit(self, context: AuditContext, report: EdgeSighting) -> CameraSpec:
        """The camera ``report`` is for, if the caller may report for it and its times are
        believable; raises otherwise (403 for a camera the device key is not bound to,
        400 for times, 404 for an unknown camera). Not audited here: ``submit`` audits,
        and so does a route that admits a report before reading its upload."""
        spec, registered = self._camera(context, report.camera)
        self._check_times(report, spec, registered)
        return spec

    def _camera(self, context: AuditContext, camera: str) -> tuple[CameraSpec, datetime]:
        """The camera, if the caller may report for it, and when it was registered."""
        actor = context.actor
        if actor.role is Role.DEVICE and actor.key_id is not None:
            key = self._keys.get(actor.key_id)
            if camera not in key.cameras:
                bound = ", ".join(key.cameras) or "no camera"
                raise PermissionDeniedError(
                    f"device key {key.key_id} may not report for camera {camera!r} "
                    f"(it is bound to {bound}; an admin binds it with 'frvs key update "
                    f"{key.key_id} --camera NAME')")
        elif actor.role is not Role.ADMIN:
            raise PermissionDeniedError("only device keys (and admin) report sightings")
        with self._store.unit() as uow:
            registered = uow.repo(CameraRepository).registered_at(camera)
        if registered is None:
            raise NotFoundError(f"camera {camera!r} not found")
        return self._video.cameras.get(camera), registered

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

    def prior(self, context: AuditContext, report: EdgeSighting) -> EdgeResult | None:
        """The answer given when this report (by its idempotency key) was first accepted,
        or None if it never was. A replay is not a new operation: nothing is audited."""
        return self._priors(context, [report]).get(_key(report))

    def _priors(self, context: AuditContext, reports: Sequence[EdgeSighting]
                ) -> dict[tuple[str, int, datetime], EdgeResult]:
        """``prior`` for many reports in one query."""
        node = node_of(context)
        wanted = {_key(r) for r in reports}
        with self._store.unit() as uow:
            rows = [(r.key.camera, r.key.track_id, r.key.first_seen, r.sighting_id, r.alert_id)
                    for r in uow.repo(EdgeReportRepository).of(
                        node, {EdgeReportKey(node, *k) for k in wanted})]
        found = {}
        for camera, track, first, sighting_id, alert_id in rows:
            if (camera, track, first) not in wanted:
                continue
            stored = None if sighting_id is None else self._video.sightings.stored(sighting_id)
            found[(camera, track, first)] = EdgeResult(
                camera, track, stored.subject if stored else None,
                stored.gallery if stored else None, stored.score if stored else None,
                sighting_id, alert_id, replayed=True)
        return found

    def submit(self, context: AuditContext, report: EdgeSighting, crop: BGRImage | None,
               crop_bytes: bytes | None, template: NodeTemplate | None = None, *,
               admitted: CameraSpec | None = None) -> EdgeResult:
        """Match an ended track's best shot and store its sighting (and alert or
        attendance event), exactly once per idempotency key (node, camera, track, start
        time): the key is stored in the same transaction under a unique constraint, so a
        report sent again, even concurrently, gets the first answer back and adds nothing.

        The node's template is matched directly when its model space is the space of the
        camera's galleries; otherwise the crop is embedded here; with neither, the
        report is refused (409). ``admitted``: the camera ``admit`` already returned for
        this report and caller (the route admits before reading the upload)."""
        inputs: dict[str, object] = {
            "camera": report.camera, "track": report.track_id,
            "first_seen": report.first_seen.isoformat(),
            "last_seen": report.last_seen.isoformat(),
            "crop_sha256": hashlib.sha256(crop_bytes).hexdigest() if crop_bytes else None,
            "space": template.space if template else None}
        # Success leaves the sighting's own ``sighting.record`` entry, written with it
        # (and ``alert.raise`` with an alert); a refusal leaves ``sighting.submit``.
        try:
            spec = admitted or self.admit(context, report)
            first = self.prior(context, report)
            if first is not None:
                return first
            shot = self._shot(spec, report, crop, template)
            assert shot.template is not None  # _shot embeds or takes the node's
            ranked = self._video.matcher.match([shot.template], spec.galleries)[0]
            sighting, decision = self._sighting(report, shot, ranked)
            return self._store_once(context, spec, report, sighting, decision,
                                    has_crop=crop is not None)
        except Exception as exc:
            record_refusal(self._store, context, "sighting.submit", inputs, exc)
            raise

    def submit_batch(self, context: AuditContext,
                     reports: Sequence[tuple[EdgeSighting, NodeTemplate]]
                     ) -> list[EdgeResult | FrvsError]:
        """Template-only reports (no crop) in one write transaction: what a node sends
        when it drains a backlog. Each report is judged as ``submit`` judges it (binding,
        times, model space; a refusal audited and answered for that report alone) and is
        stored exactly once by the same idempotency key; the new ones of the batch are
        matched per camera in one call and stored, with their alerts, attendance events,
        audit entries and keys, in one transaction. If the store refuses it (a duplicate
        raced in, even within the batch), each report is submitted on its own instead."""
        out: list[EdgeResult | FrvsError | None] = [None] * len(reports)
        cameras: dict[str, tuple[CameraSpec, datetime] | FrvsError] = {}
        fresh: dict[str, list[tuple[int, EdgeSighting, NodeTemplate, Shot]]] = {}
        priors = self._priors(context, [r for r, _ in reports])
        spaces: dict[str, ModelSpace] = {}
        for i, (report, template) in enumerate(reports):
            try:
                spec = self._batch_camera(context, report, cameras)
                first = priors.get(_key(report))
                if first is not None:
                    out[i] = first
                    continue
                if spec.name not in spaces:
                    spaces[spec.name] = self._space(spec)
                shot = self._shot(spec, report, None, template, spaces[spec.name])
                fresh.setdefault(spec.name, []).append((i, report, template, shot))
            except FrvsError as exc:
                record_refusal(self._store, context, "sighting.submit", {
                    "camera": report.camera, "track": report.track_id,
                    "first_seen": report.first_seen.isoformat(),
                    "last_seen": report.last_seen.isoformat(), "space": template.space}, exc)
                out[i] = exc
        planned: list[tuple[int, CameraSpec, EdgeSighting, Sighting, TrackDecision | None]] = []
        for name, items in fresh.items():
            known = cameras[name]
            assert not isinstance(known, FrvsError)  # refused reports are not fresh
            spec = known[0]
            templates = [shot.template for *_, shot in items if shot.template is not None]
            ranked = self._video.matcher.match(templates, spec.galleries)
            for (i, report, _, shot), candidates in zip(items, ranked, strict=True):
                sighting, decision = self._sighting(report, shot, candidates)
                planned.append((i, spec, report, sighting, decision))
        try:
            stored = self._store_all(context, planned)
        except StoreError:
            for i, spec, report, _, _ in planned:
                template = reports[i][1]
                try:
                    out[i] = self.submit(context, report, None, None, template, admitted=spec)
                except FrvsError as exc:
                    out[i] = exc
            stored = []
        for i, result in stored:
            out[i] = result
        assert all(o is not None for o in out)
        return [o for o in out if o is not None]

    def _batch_camera(self, context: AuditContext, report: EdgeSighting,
                      cameras: dict[str, tuple[CameraSpec, datetime] | FrvsError]
                      ) -> CameraSpec:
        """``admit`` for a batch: each camera's binding and registration looked up once."""
        known = cameras.get(report.camera)
        if known is None:
            try:
                known = self._camera(context, report.camera)
            except FrvsError as exc:
                known = exc
            cameras[report.camera] = known
        if isinstance(known, FrvsError):
            raise known
        spec, registered = known
        self._check_times(report, spec, registered)
        return spec

    def _store_all(self, context: AuditContext,
                   planned: Sequence[tuple[int, CameraSpec, EdgeSighting, Sighting,
                                           TrackDecision | None]]
                   ) -> list[tuple[int, EdgeResult]]:
        if not planned:
            return []
        done: list[tuple[int, CameraSpec, StoredSighting, Alert | None,
                         AttendanceEvent | None]] = []
        with self._store.unit(write=True) as uow:
            for i, spec, report, sighting, decision in planned:
                alert = attendance = None
                if decision is not None:
                    alert = self._video.alerts.raise_in(uow, context, decision)
                    attendance = self._video.attendance.record_in(uow, decision, spec.role)
                row = self._video.sightings.record_in(uow, context, sighting,
                                                      spec.retention_days, None)
                uow.repo(EdgeReportRepository).add(AcceptedReport(
                    _report_key(context, report), row.id, alert.id if alert else None),
                    self._clock())
                done.append((i, spec, row, alert, attendance))  # keys flush with the next
        results = []
        for i, spec, row, alert, attendance in done:
            self._announce(spec, row, alert, attendance)
            results.append((i, EdgeResult(row.camera, row.track_id, row.subject, row.gallery,
                                          row.score, row.id, alert.id if alert else None)))
        return results

    def _sighting(self, report: EdgeSighting, shot: Shot, ranked: Sequence[GalleryCandidate]
                  ) -> tuple[Sighting, TrackDecision | None]:
        """The sighting of a report's best shot, and its decision when a candidate passed."""
        best = max(ranked, key=lambda c: c.score, default=None)
        decision = None
        if best is not None and best.passes:
            decision = TrackDecision(report.camera, report.track_id, best.gallery,
                                     best.gallery_kind, best.subject, best.score,
                                     best.threshold, 1, 0.0, report.last_seen, shot)
        duration = (report.last_seen - report.first_seen).total_seconds()
        return Sighting(report.camera, report.track_id, report.first_seen, report.last_seen,
                        0.0, duration, report.frames, shot, best, decision, 1), decision

    def _announce(self, spec: CameraSpec, stored: StoredSighting, alert: Alert | None,
                  attendance: AttendanceEvent | None) -> None:
        """After the commit: notifiers and the event stream hear what was stored."""
        router = self._video.router
        if alert is not None:
            self._video.alerts.announce(alert)
            router.publish(VideoEvent("alert", spec.name, alert.subject, alert.as_dict()))
        if attendance is not None:
            router.publish(VideoEvent("attendance", spec.name, attendance.subject,
                                      attendance.as_dict()))
        router.publish(VideoEvent("sighting", spec.name, stored.subject, stored.as_dict()))

    def _space(self, spec: CameraSpec) -> ModelSpace:
        """The model space of the camera's galleries."""
        return self._analyser.packs.info(self._video.matcher.pack_for(spec.galleries)).space

    def _shot(self, spec: CameraSpec, report: EdgeSighting, crop: BGRImage | None,
              template: NodeTemplate | None, space: ModelSpace | None = None) -> Shot:
        space = space or self._space(spec)
        if template is not None and template.space == space.key:
            probe = template.as_template(space)
            patch = crop if crop is not None else np.zeros((1, 1, 3), np.uint8)
            h, w = patch.shape[:2]
            quality = template.face_quality()
            detection = FaceDetection(Box(0, 0, float(w), float(h)),
                                      Landmarks(np.zeros((5, 2), np.float32)),
                                      min(1.0, max(0.0, quality.detector_score)))
            return Shot(report.track_id, 0, 0.0, report.last_seen, detection, quality,
                        patch, detection, 1.0, probe)
        if crop is None:
            sent = template.space if template else "none"
            raise ModelSpaceMismatchError(
                f"camera {spec.name!r} matches in {space.key}; the report's template is in "
                f"{sent} and it carries no crop to embed here: run the node with the "
                "galleries' pack or let it ship crops")
        faces = self._analyser.analyse(crop, self._video.matcher.pack_for(spec.galleries))
        if not faces:
            raise NoFaceError("the best-shot crop holds no face")
        face = faces[0]
        return Shot(report.track_id, 0, 0.0, report.last_seen, face.face.detection,
                    face.face.quality, crop, face.face.detection, 1.0, face.template)

    def _store_once(self, context: AuditContext, spec: CameraSpec, report: EdgeSighting,
                    sighting: Sighting, decision: TrackDecision | None,
                    *, has_crop: bool) -> EdgeResult:
        """One transaction: alert, attendance event, sighting, their audit entries and
        the report's idempotency key; the crops are written first and removed if it does
        not commit."""
        media = self._store.media
        alert_crop = sighting_crop = None
        if has_crop and decision is not None and decision.gallery_kind == "watch_list":
            alert_crop = (f"alerts/{report.camera}/{report.last_seen:%Y%m%dT%H%M%S%f}-"
                          f"{report.track_id}-{node_of(context)}.jpg")
            media.write(alert_crop, encode_jpeg(sighting.best_shot.patch))
        if has_crop and spec.keep_crops:
            sighting_crop = (f"sightings/{report.camera}/{report.first_seen:%Y%m%dT%H%M%S}-"
                             f"{report.track_id}-{node_of(context)}.jpg")
            media.write(sighting_crop, encode_jpeg(sighting.best_shot.patch))
        written: list[str | None] = [c for c in (alert_crop, sighting_crop) if c]
        try:
            with self._store.unit(write=True) as uow:
                alert = None
                if decision is not None:
                    alert = self._video.alerts.raise_in(uow, context, decision, alert_crop)
                    attendance = self._video.attendance.record_in(uow, decision, spec.role)
                else:
                    attendance = None
                stored = self._video.sightings.record_in(uow, context, sighting,
                                                         spec.retention_days, sighting_crop)
                reports = uow.repo(EdgeReportRepository)
                reports.add(AcceptedReport(_report_key(context, report), stored.id,
                                           alert.id if alert else None), self._clock())
                reports.flush()
        except StoreError:
            media.remove(written)
            # Another delivery of the same report won the race (the unique key refused
            # this one): its answer is this one's.
            first = self.prior(context, report)
            if first is not None:
                return first
            raise
        except BaseException:
            media.remove(written)
            raise
        if alert_crop is not None and alert is None:
            media.remove([alert_crop])  # suppressed as a repeat: no evidence to keep
        self._announce(spec, stored, alert, attendance)
        return EdgeResult(report.camera, report.track_id, stored.subject, stored.gallery,
                          stored.score, stored.id, alert.id if alert else None)


def _key(report: EdgeSighting) -> tuple[str, int, datetime]:
    return report.camera, report.track_id, report.first_seen


def node_of(context: AuditContext) -> str:
    """The node part of a report's idempotency key: the device key that sent it."""
    actor = context.actor
    return actor.key_id or f"{actor.kind}:{actor.name}"[:32]


def _report_key(context: AuditContext, report: EdgeSighting) -> EdgeReportKey:
    return EdgeReportKey(node_of(context), *_key(report))
