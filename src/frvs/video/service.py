"""Cameras and sightings in the store.

Sightings of unknown people expire with their camera's retention; from then on no listing
or search shows them, and the next retention run (``frvs.oversight.retention``) deletes
them with their crops. They never become subjects. A crop is stored only when the
camera's policy keeps crops.

A camera's settings decide whose faces are matched against which watch list, so adding,
changing and removing one is audited with its caller, in the same transaction as the
change; so is every listing of sightings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from frvs.core.caller import AuditContext, AuditDraft, record_refusal, subject_ref
from frvs.core.errors import ConflictError, InvalidInputError, NotFoundError
from frvs.core.times import Clock
from frvs.imaging.encode import encode_jpeg
from frvs.storage.store import Store, UnitOfWork
from frvs.video.models import (
    CameraSpec,
    ExpiredSightings,
    Sighting,
    StoredSighting,
    is_camera_name,
)
from frvs.video.ports import Matcher
from frvs.video.repository import (
    CameraRepository,
    NewSighting,
    SightingFilter,
    SightingRepository,
)
from frvs.video.source_policy import SourceOrigin, SourcePolicy, describe

# The records stored here are defined in ``frvs.video.models``; importers of this module
# may keep naming them from here.
__all__ = ["CAMERA_UPDATABLE", "CameraService", "CameraSpec", "ExpiredSightings",
           "SightingService", "StoredSighting", "is_camera_name"]



CAMERA_UPDATABLE = frozenset({"source_url", "galleries", "role", "location", "sample_fps",
                              "roi", "retention_days", "keep_crops", "enabled"})


def _described(spec: CameraSpec) -> dict[str, object]:
    """What the audit trail records of a camera: its settings, the source with any
    credentials masked."""
    return {"camera": spec.name, "galleries": list(spec.galleries), "role": spec.role.value,
            "source": describe(spec.source_url), "sample_fps": spec.sample_fps,
            "roi": list(spec.roi) if spec.roi else None,
            "retention_days": spec.retention_days, "keep_crops": spec.keep_crops,
            "enabled": spec.enabled}


class CameraService:
    """Add, list and remove cameras.

    A source is checked against the source policy when it is set, with the caller's
    origin (an API key may name files only under the media roots; nobody FRVS's own
    data), and again whenever it is opened. A camera's galleries must exist and share
    one model pack (``packs`` knows the galleries' packs): checked when they are set.
    """

    def __init__(self, store: Store, clock: Clock, sources: SourcePolicy,
                 packs: Matcher) -> None:
        self._store = store
        self._clock = clock
        self._sources = sources
        self._packs = packs

    def _check_one_pack(self, galleries: Sequence[str]) -> None:
        """``NotFoundError`` for an unknown gallery, ``ModelSpaceMismatchError`` when the
        galleries use different packs. Checked before the operation's audited part, so
        such a refusal is not audited (as when the callers checked it)."""
        if galleries:
            self._packs.pack_for(tuple(galleries))

    def add(self, caller: AuditContext, spec: CameraSpec) -> CameraSpec:
        """Register a camera (audited with its galleries and masked source; a source the
        policy refuses is audited as refused); its galleries must share one pack."""
        self._check_one_pack(spec.galleries)
        inputs = _described(spec)
        try:
            self._sources.check(spec.source_url, SourceOrigin.of(caller))
            with self._store.unit(write=True) as uow:
                cameras = uow.repo(CameraRepository)
                if cameras.exists(spec.name):
                    raise ConflictError(f"camera {spec.name!r} already exists")
                cameras.add(spec, self._clock())
                uow.audit(caller, AuditDraft("camera.create", inputs, {}))
        except Exception as exc:
            record_refusal(self._store, caller, "camera.create", inputs, exc)
            raise
        return spec

    def get(self, name: str) -> CameraSpec:
        with self._store.unit() as uow:
            spec = uow.repo(CameraRepository).get(name)
        if spec is None:
            raise NotFoundError(f"camera {name!r} not found")
        return spec

    def find(self, name: str) -> CameraSpec | None:
        try:
            return self.get(name)
        except NotFoundError:
            return None

    def all(self) -> list[CameraSpec]:
        with self._store.unit() as uow:
            return uow.repo(CameraRepository).all()

    def update(self, caller: AuditContext, name: str,
               changes: Mapping[str, object]) -> CameraSpec:
        """Change a camera's settings (all but its name), validated as a new camera would
        be; a running service restarts the camera with them (``CameraSync``). Audited
        with the settings before and after. New galleries must share one pack."""
        galleries = changes.get("galleries")
        if isinstance(galleries, Sequence) and not isinstance(galleries, str):
            self._check_one_pack(galleries)
        inputs: dict[str, object] = {"camera": name, "changes": sorted(changes)}
        try:
            unknown = sorted(set(changes) - CAMERA_UPDATABLE)
            if unknown:
                raise InvalidInputError(f"cannot change {', '.join(unknown)} of a camera; "
                                        f"changeable: {', '.join(sorted(CAMERA_UPDATABLE))}")
            self._check_new_source(caller, name, changes)
            with self._store.unit(write=True) as uow:
                cameras = uow.repo(CameraRepository)
                before = cameras.get(name)
                if before is None:
                    raise NotFoundError(f"camera {name!r} not found")
                spec = replace(before, **changes)  # type: ignore[arg-type]
                cameras.update(spec)
                uow.audit(caller, AuditDraft("camera.update", inputs, {
                    "before": _described(before), "after": _described(spec)}))
        except Exception as exc:
            record_refusal(self._store, caller, "camera.update", inputs, exc)
            raise
        return spec

    def _check_new_source(self, caller: AuditContext, name: str,
                          changes: Mapping[str, object]) -> None:
        """A changed source passes the policy (before the write transaction: resolving a
        host can take seconds); an unchanged one was checked when it was set."""
        source = changes.get("source_url")
        current = self.find(name) if "source_url" in changes else None
        if current is not None and source != current.source_url:
            self._sources.check(str(source), SourceOrigin.of(caller))

    def remove(self, caller: AuditContext, name: str) -> CameraSpec:
        """Remove a camera (audited with what it was)."""
        inputs = {"camera": name}
        try:
            with self._store.unit(write=True) as uow:
                cameras = uow.repo(CameraRepository)
                found = cameras.get(name)
                if found is None:
                    raise NotFoundError(f"camera {name!r} not found")
                spec = found
                cameras.delete(name)
                uow.audit(caller, AuditDraft("camera.delete", inputs,
                                             {"before": _described(spec)}))
        except Exception as exc:
            record_refusal(self._store, caller, "camera.delete", inputs, exc)
            raise
        return spec






class SightingService:
    """Records, lists and expires sightings."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(self, caller: AuditContext, sighting: Sighting, retention_days: int,
               keep_crop: bool) -> StoredSighting:
        """Store an ended track's sighting and its ``sighting.record`` entry (for the
        caller running the camera, or the device that submitted it) in one transaction;
        a crop written for it is removed if that transaction does not commit."""
        crop_path = None
        if keep_crop:
            crop_path = (f"sightings/{sighting.camera}/"
                         f"{sighting.first_seen:%Y%m%dT%H%M%S}-{sighting.track_id}.jpg")
            self._store.media.write(crop_path, encode_jpeg(sighting.best_shot.patch))
        try:
            with self._store.unit(write=True) as uow:
                stored = self.record_in(uow, caller, sighting, retention_days, crop_path)
        except BaseException:
            if crop_path is not None:
                self._store.media.remove([crop_path])
            raise
        return stored

    def record_in(self, uow: UnitOfWork, caller: AuditContext, sighting: Sighting,
                  retention_days: int, crop_path: str | None) -> StoredSighting:
        """``record`` inside ``uow``'s transaction, with its crop already written to
        ``crop_path`` (removed by the caller if the transaction does not commit)."""
        template = sighting.template
        matched = sighting.matched
        stored = uow.repo(SightingRepository).add(NewSighting(
            camera=sighting.camera, track_id=sighting.track_id,
            first_seen=sighting.first_seen, last_seen=sighting.last_seen,
            frames=sighting.frames, attempts=sighting.attempts,
            quality=sighting.best_shot.quality.overall,
            space_key=template.space.key if template else None,
            vector=template.vector.tobytes() if template else None,
            gallery=matched.gallery if matched else None,
            subject=matched.subject if matched else None,
            score=matched.score if matched else None,
            best_subject=sighting.best.subject if sighting.best else None,
            best_score=sighting.best.score if sighting.best else None,
            crop_path=crop_path,
            expires_at=sighting.last_seen + timedelta(days=retention_days)))
        uow.audit(caller, AuditDraft(
            "sighting.record",
            {"camera": sighting.camera, "track": sighting.track_id,
             "first_seen": sighting.first_seen.isoformat(),
             "last_seen": sighting.last_seen.isoformat(), "frames": sighting.frames},
            {"sighting_id": stored.id, "gallery": stored.gallery,
             "subject": stored.subject,
             "score": None if stored.score is None else round(stored.score, 6),
             "crop": crop_path is not None, "expires_at": stored.expires_at.isoformat()},
            [subject_ref(stored.gallery, stored.subject)]
            if stored.gallery and stored.subject else []))
        return stored

    def stored(self, sighting_id: int) -> StoredSighting | None:
        """One stored sighting by id (None once retention or erasure removed it)."""
        with self._store.unit() as uow:
            return uow.repo(SightingRepository).get(sighting_id)

    def list(self, caller: AuditContext, camera: str | None = None,
             since: datetime | None = None, limit: int = 1000) -> list[StoredSighting]:
        """Unexpired sightings oldest first; the listing is audited (``sightings.list``)
        with the caller's case and purpose when they gave them."""
        query = SightingFilter(self._clock(), camera=camera, since=since)
        with self._store.unit() as uow:
            found = uow.repo(SightingRepository).oldest_first(query, limit)
        self._store.audit(caller, AuditDraft(
            "sightings.list", {"camera": camera, "since": since.isoformat() if since else None,
                               "limit": limit},
            {"sightings": len(found), "matched": sum(1 for s in found if s.subject)}))
        return found

    @staticmethod
    def expire(uow: UnitOfWork, now: datetime) -> ExpiredSightings:
        """Delete the sightings expired at ``now`` in ``uow``'s transaction, whose owner
        (the retention run) writes the audit entry beside the deletion; their crops are
        for the caller to remove once it commits (a crash in between leaves orphan
        files, which the next run sweeps, never a sighting without its picture)."""
        return uow.repo(SightingRepository).expire(now)

    def crop_paths(self) -> set[str]:
        """Every crop a stored sighting refers to (what a sweep of orphans keeps)."""
        with self._store.unit() as uow:
            return uow.repo(SightingRepository).crop_paths()
