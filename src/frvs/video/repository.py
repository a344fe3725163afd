"""The video domain's repositories: the only code that turns camera and sighting rows
into records and back (reached as ``uow.repo(CameraRepository)`` and
``uow.repo(SightingRepository)``, inside the caller's transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update
from sqlalchemy.orm import Session

from frvs.storage.repositories import gallery_key
from frvs.storage.schema import GalleryRow
from frvs.video.models import CameraRole, CameraSpec, ExpiredSightings, StoredSighting
from frvs.video.tables import CameraRow, SightingRow


def _spec(row: CameraRow) -> CameraSpec:
    roi = row.roi
    return CameraSpec(row.name, row.source_url, tuple(row.galleries), CameraRole(row.role),
                      row.location, row.sample_fps,
                      (roi[0], roi[1], roi[2], roi[3]) if roi else None,
                      row.retention_days, row.keep_crops, row.enabled)


def _settings(spec: CameraSpec) -> dict[str, object]:
    """A camera's columns but its name and creation time."""
    return {"source_url": spec.source_url, "galleries": list(spec.galleries),
            "role": spec.role.value, "location": spec.location,
            "sample_fps": spec.sample_fps, "roi": list(spec.roi) if spec.roi else None,
            "retention_days": spec.retention_days, "keep_crops": spec.keep_crops,
            "enabled": spec.enabled}


class CameraRepository:
    """Registered cameras, by name."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def exists(self, name: str) -> bool:
        return self._s.scalar(select(CameraRow.id).where(CameraRow.name == name)) is not None

    def add(self, spec: CameraSpec, now: datetime) -> None:
        self._s.add(CameraRow(name=spec.name, created_at=now, **_settings(spec)))

    def get(self, name: str) -> CameraSpec | None:
        row = self._s.scalar(select(CameraRow).where(CameraRow.name == name))
        return None if row is None else _spec(row)

    def registered_at(self, name: str) -> datetime | None:
        """When the camera was registered (None: it is not)."""
        return self._s.scalar(select(CameraRow.created_at).where(CameraRow.name == name))

    def all(self) -> list[CameraSpec]:
        return [_spec(r) for r in self._s.scalars(select(CameraRow).order_by(CameraRow.name))]

    def names_in(self, names: set[str]) -> set[str]:
        """Those of ``names`` that name a registered camera."""
        return set(self._s.scalars(select(CameraRow.name).where(CameraRow.name.in_(names))))

    def update(self, spec: CameraSpec) -> None:
        """Store ``spec``'s settings for the camera it names."""
        self._s.execute(update(CameraRow).where(CameraRow.name == spec.name)
                        .values(**_settings(spec)))

    def delete(self, name: str) -> None:
        self._s.execute(delete(CameraRow).where(CameraRow.name == name))


@dataclass(frozen=True, slots=True)
class NewSighting:
    """A sighting about to be stored: an ended track, what it matched, and its best
    shot's template (``space_key`` and ``vector``) for later probe searches."""

    camera: str
    track_id: int
    first_seen: datetime
    last_seen: datetime
    frames: int
    attempts: int
    quality: float
    space_key: str | None
    vector: bytes | None
    gallery: str | None
    subject: str | None
    score: float | None
    best_subject: str | None
    best_score: float | None
    crop_path: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SightingFilter:
    """Which unexpired sightings a listing or search wants."""

    now: datetime
    camera: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    gallery: str | None = None
    subject: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        found = [SightingRow.expires_at > self.now]
        if self.camera is not None:
            found.append(SightingRow.camera == self.camera)
        if self.since is not None:
            found.append(SightingRow.last_seen >= self.since)
        if self.until is not None:
            found.append(SightingRow.first_seen < self.until)
        if self.gallery is not None:
            found.append(SightingRow.gallery_id == gallery_key(self.gallery))
        if self.subject is not None:
            found.append(SightingRow.subject == self.subject)
        return found


def _stored(r: SightingRow, gallery: str | None) -> StoredSighting:
    # A match is shown with its gallery only: one whose gallery was deleted is no match.
    matched = gallery is not None
    return StoredSighting(r.id, r.camera, r.track_id, r.first_seen, r.last_seen, r.frames,
                          r.quality, gallery, r.subject if matched else None,
                          r.score if matched else None, r.best_subject, r.best_score,
                          r.crop_path, r.expires_at)


def _named() -> Select[SightingRow, str | None]:
    """Sightings with their gallery's name (None: no gallery matched)."""
    return select(SightingRow, GalleryRow.name).outerjoin(
        GalleryRow, GalleryRow.id == SightingRow.gallery_id)


class SightingRepository:
    """Stored sightings: recorded, listed, searched, expired and erased."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, new: NewSighting) -> StoredSighting:
        gallery_id = None if new.gallery is None else self._s.scalar(
            select(GalleryRow.id).where(GalleryRow.name == new.gallery))
        # A gallery deleted since the match leaves a sighting without its match, as its
        # deletion does to the sightings already stored.
        matched = new.gallery is None or gallery_id is not None
        row = SightingRow(
            camera=new.camera, track_id=new.track_id, first_seen=new.first_seen,
            last_seen=new.last_seen, frames=new.frames, attempts=new.attempts,
            quality=new.quality, space_key=new.space_key, vector=new.vector,
            gallery_id=gallery_id, subject=new.subject if matched else None,
            score=new.score if matched else None,
            best_subject=new.best_subject if matched else None,
            best_score=new.best_score if matched else None,
            crop_path=new.crop_path, expires_at=new.expires_at)
        self._s.add(row)
        self._s.flush()
        return _stored(row, new.gallery if gallery_id is not None else None)

    def get(self, sighting_id: int) -> StoredSighting | None:
        found = self._s.execute(_named().where(SightingRow.id == sighting_id)).first()
        return None if found is None else _stored(*found)

    def oldest_first(self, query: SightingFilter, limit: int) -> list[StoredSighting]:
        """Matching sightings by first seen, oldest first."""
        return [_stored(*r) for r in self._s.execute(
            _named().where(*query.clauses())
            .order_by(SightingRow.first_seen, SightingRow.id).limit(limit))]

    def newest_first(self, query: SightingFilter, limit: int,
                     before_id: int | None = None) -> list[StoredSighting]:
        """Matching sightings by id, newest first, below ``before_id`` when given."""
        stmt = _named().where(*query.clauses())
        if before_id is not None:
            stmt = stmt.where(SightingRow.id < before_id)
        return [_stored(*r) for r in self._s.execute(
            stmt.order_by(SightingRow.id.desc()).limit(limit))]

    def templates(self, query: SightingFilter,
                  space_key: str) -> Iterator[tuple[StoredSighting, bytes]]:
        """Matching sightings with a best-shot template in ``space_key``, and its bytes,
        read in batches."""
        stmt = _named().where(SightingRow.space_key == space_key, *query.clauses())
        for row, gallery in self._s.execute(stmt.execution_options(yield_per=1000)):
            if row.vector is not None:
                yield _stored(row, gallery), row.vector

    def about(self, gallery: str, subject: str) -> list[StoredSighting]:
        """Sightings whose decision or best candidate named the subject, oldest first."""
        return [_stored(*r) for r in self._s.execute(_named().where(
            GalleryRow.name == gallery,
            or_(SightingRow.subject == subject, SightingRow.best_subject == subject))
            .order_by(SightingRow.id))]

    def forget_subject(self, gallery: str, subject: str) -> int:
        """Drop the subject's match references (the sightings stay, as of an unknown
        face, until their own retention): how many sightings named them."""
        key = gallery_key(gallery)
        matched = self._rowcount(self._s.execute(
            update(SightingRow).where(SightingRow.gallery_id == key,
                                      SightingRow.subject == subject)
            .values(subject=None, score=None)))
        best = self._rowcount(self._s.execute(
            update(SightingRow).where(SightingRow.gallery_id == key,
                                      SightingRow.best_subject == subject)
            .values(best_subject=None, best_score=None)))
        self._s.execute(
            update(SightingRow).where(SightingRow.gallery_id == key,
                                      SightingRow.subject.is_(None),
                                      SightingRow.best_subject.is_(None))
            .values(gallery_id=None))
        return max(matched, best)

    def expire(self, now: datetime) -> ExpiredSightings:
        """Delete the sightings expired at ``now``: how many, and their crops (for the
        caller to remove once the deletion commits)."""
        expired = SightingRow.expires_at <= now
        count = self._s.scalar(select(func.count()).select_from(SightingRow)
                               .where(expired)) or 0
        crops = tuple(c for c in self._s.scalars(select(SightingRow.crop_path).where(
            expired, SightingRow.crop_path.is_not(None))) if c)
        self._s.execute(delete(SightingRow).where(expired))
        return ExpiredSightings(int(count), crops)

    def crop_paths(self) -> set[str]:
        """Every crop a stored sighting refers to."""
        return {c for c in self._s.scalars(select(SightingRow.crop_path).where(
            SightingRow.crop_path.is_not(None))) if c}

    @staticmethod
    def _rowcount(result: object) -> int:
        return int(getattr(result, "rowcount", 0) or 0)
