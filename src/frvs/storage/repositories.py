"""Repositories: the only code that turns rows into domain records and back.

Each works inside the caller's session (one unit of work = one transaction), so an
enrolment's subject, template and gallery revision commit together or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy import ScalarSelect, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from frvs.core.errors import ConflictError, InvalidRecordError, NotFoundError
from frvs.core.galleries import Gallery, GalleryKind, NewTemplate, StoredTemplate, Subject
from frvs.core.templates import Metric, ModelSpace, Template
from frvs.storage.index.base import IdArray, Matrix
from frvs.storage.schema import GalleryRow, IndexChangeRow, SubjectRow, TemplateRow


class GallerySettings(Protocol):
    """What a gallery is created or changed with (``frvs.galleries.models.GallerySpec``,
    validated where it is made)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> GalleryKind: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def legal_basis(self) -> str | None: ...
    @property
    def retention_days(self) -> int | None: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def fmr_target(self) -> float | None: ...
    @property
    def keep_crops(self) -> bool: ...


class SubjectSettings(Protocol):
    """Who an enrolment is for (``frvs.galleries.models.SubjectSpec``, validated where
    it is made)."""

    @property
    def external_id(self) -> str: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...

_VECTOR_DTYPE = np.dtype("<f4")
_PAGE = 65_536
_ID_CHUNK = 10_000


def gallery_key(name: str) -> ScalarSelect[int]:
    """The id of the gallery named ``name``, inside a statement: how the other concepts'
    tables, which refer to galleries by key, are queried by a gallery's name."""
    return select(GalleryRow.id).where(GalleryRow.name == name).scalar_subquery()


def _gallery(row: GalleryRow) -> Gallery:
    return Gallery(
        id=row.id, name=row.name, kind=GalleryKind(row.kind), purpose=row.purpose,
        legal_basis=row.legal_basis, retention_days=row.retention_days,
        threshold=row.threshold, fmr_target=row.fmr_target, keep_crops=row.keep_crops,
        pack=row.pack, created_at=row.created_at, revision=row.revision,
    )


def _subject(row: SubjectRow, template_count: int = 0) -> Subject:
    return Subject(
        id=row.id, gallery_id=row.gallery_id, external_id=row.external_id,
        display_name=row.display_name, metadata=dict(row.attributes or {}),
        created_at=row.created_at, expires_at=row.expires_at, template_count=template_count,
    )


def _counted() -> Select[SubjectRow, int]:
    """Subjects with their template counts (counted per subject, by its index)."""
    templates = (select(func.count()).select_from(TemplateRow)
                 .where(TemplateRow.subject_id == SubjectRow.id).scalar_subquery())
    return select(SubjectRow, templates)


def _decoded(rows: Sequence[Any], space: ModelSpace) -> VectorBatch:
    """(id, blob, dimension) rows as one batch; the blobs are joined and read at once."""
    width = space.dimension * _VECTOR_DTYPE.itemsize
    for tid, blob, dimension in rows:
        if dimension != space.dimension:
            raise InvalidRecordError(f"template {tid} has dimension {dimension} in "
                                     f"space {space.key}")
        if len(blob) != width:
            decode_vector(blob, dimension, tid)  # raises with the details
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=_VECTOR_DTYPE)
    return VectorBatch(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                       matrix.reshape(len(rows), space.dimension).astype(np.float32))


def decode_vector(blob: bytes, dimension: int, template_id: int) -> Matrix:
    """A stored vector, checked against its recorded dimension."""
    vector = np.frombuffer(blob, dtype=_VECTOR_DTYPE)
    if vector.shape[0] != dimension:
        raise InvalidRecordError(
            f"template {template_id}: stored vector has {vector.shape[0]} values, "
            f"its row says {dimension}"
        )
    return vector.astype(np.float32)


def _stored(row: TemplateRow) -> StoredTemplate:
    space = ModelSpace(row.pack, row.pack_version, row.dimension, Metric(row.metric))
    return StoredTemplate(
        id=row.id, subject_id=row.subject_id,
        template=Template(decode_vector(row.vector, row.dimension, row.id), space),
        quality=row.quality, image_sha256=row.image_sha256, source=row.source,
        crop_path=row.crop_path,
    )


class GalleryRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, spec: GallerySettings, pack: str, now: datetime) -> Gallery:
        row = GalleryRow(
            name=spec.name, kind=spec.kind.value, purpose=spec.purpose,
            legal_basis=spec.legal_basis, retention_days=spec.retention_days,
            threshold=spec.threshold, fmr_target=spec.fmr_target, keep_crops=spec.keep_crops,
            pack=pack, revision=0, created_at=now,
        )
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError as exc:
            raise ConflictError(f"gallery {spec.name!r} already exists") from exc
        return _gallery(row)

    def _row(self, name: str) -> GalleryRow:
        row = self._s.scalar(select(GalleryRow).where(GalleryRow.name == name))
        if row is None:
            raise NotFoundError(f"no gallery named {name!r}")
        return row

    def get(self, name: str) -> Gallery:
        return _gallery(self._row(name))

    def find(self, name: str) -> Gallery | None:
        """The gallery named ``name``, or None."""
        row = self._s.scalar(select(GalleryRow).where(GalleryRow.name == name))
        return None if row is None else _gallery(row)

    def all(self) -> list[Gallery]:
        return [_gallery(r) for r in self._s.scalars(select(GalleryRow).order_by(GalleryRow.name))]

    def counts(self, gallery_id: int) -> tuple[int, int]:
        """(subjects, templates) in the gallery."""
        subjects = self._s.scalar(
            select(func.count()).select_from(SubjectRow).where(SubjectRow.gallery_id == gallery_id)
        )
        templates = self._s.scalar(
            select(func.count()).select_from(TemplateRow)
            .where(TemplateRow.gallery_id == gallery_id)
        )
        return int(subjects or 0), int(templates or 0)

    def delete(self, gallery_id: int) -> None:
        self._s.execute(delete(GalleryRow).where(GalleryRow.id == gallery_id))

    def bump_revision(self, gallery_id: int) -> None:
        self._s.execute(
            update(GalleryRow).where(GalleryRow.id == gallery_id)
            .values(revision=GalleryRow.revision + 1)
        )

    def revision(self, gallery_id: int) -> int | None:
        """The gallery's revision, or None when it no longer exists."""
        value = self._s.scalar(select(GalleryRow.revision).where(GalleryRow.id == gallery_id))
        return None if value is None else int(value)

    def set_pack(self, gallery_id: int, pack: str) -> None:
        self._s.execute(update(GalleryRow).where(GalleryRow.id == gallery_id).values(pack=pack))

    def update(self, gallery_id: int, spec: GallerySettings) -> None:
        """Store the settings a gallery may change after creation (see ``GALLERY_UPDATABLE``)."""
        self._s.execute(update(GalleryRow).where(GalleryRow.id == gallery_id).values(
            purpose=spec.purpose, legal_basis=spec.legal_basis,
            retention_days=spec.retention_days, threshold=spec.threshold,
            fmr_target=spec.fmr_target, keep_crops=spec.keep_crops))


class SubjectRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def find(self, gallery_id: int, external_id: str) -> Subject | None:
        row = self._s.scalar(select(SubjectRow).where(
            SubjectRow.gallery_id == gallery_id, SubjectRow.external_id == external_id))
        return None if row is None else _subject(row)

    def get_or_add(self, gallery: Gallery, spec: SubjectSettings, now: datetime) -> Subject:
        """The subject ``spec`` names, created on first enrolment."""
        existing = self.find(gallery.id, spec.external_id)
        if existing is not None:
            return existing
        row = SubjectRow(
            gallery_id=gallery.id, external_id=spec.external_id,
            display_name=spec.display_name, attributes=dict(spec.metadata), created_at=now,
            expires_at=gallery.expiry_for(now),
        )
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            # Another process created it between our read and our insert (PostgreSQL).
            again = self.find(gallery.id, spec.external_id)
            if again is None:
                raise
            return again
        return _subject(row)

    def display_names(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The display names of the (gallery name, external id) pairs given that have one."""
        if not keys:
            return {}
        rows = self._s.execute(
            select(GalleryRow.name, SubjectRow.external_id, SubjectRow.display_name)
            .join(SubjectRow, SubjectRow.gallery_id == GalleryRow.id)
            .where(SubjectRow.external_id.in_({s for _, s in keys}),
                   SubjectRow.display_name.is_not(None)))
        return {(g, s): str(n) for g, s, n in rows if (g, s) in keys}

    def in_gallery(self, gallery_id: int) -> list[Subject]:
        counts = (
            select(TemplateRow.subject_id, func.count().label("n"))
            .group_by(TemplateRow.subject_id).subquery()
        )
        rows = self._s.execute(
            select(SubjectRow, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.subject_id == SubjectRow.id)
            .where(SubjectRow.gallery_id == gallery_id).order_by(SubjectRow.external_id)
        ).all()
        return [_subject(row, int(n)) for row, n in rows]

    def page(self, gallery_id: int, after: str | None, limit: int) -> list[Subject]:
        """Up to ``limit`` of the gallery's subjects whose external id sorts after
        ``after`` (all from the first without it), with their template counts, in code
        point order (as Python sorts strings, whatever the database's collation)."""
        key = SubjectRow.external_id
        if self._s.get_bind().dialect.name == "postgresql":
            key = key.collate("C")  # type: ignore[assignment]  # byte order of UTF-8
        stmt = _counted().where(SubjectRow.gallery_id == gallery_id).order_by(key).limit(limit)
        if after is not None:
            stmt = stmt.where(key > after)
        return [_subject(row, int(n)) for row, n in self._s.execute(stmt).all()]

    def find_counted(self, gallery_id: int, external_id: str) -> Subject | None:
        """``find`` with the subject's template count."""
        found = self._s.execute(_counted().where(
            SubjectRow.gallery_id == gallery_id, SubjectRow.external_id == external_id)).first()
        return None if found is None else _subject(found[0], int(found[1]))

    def expired(self, now: datetime) -> list[tuple[Gallery, Subject]]:
        """Subjects past their expiry, with their gallery, oldest first."""
        rows = self._s.execute(
            select(SubjectRow, GalleryRow).join(GalleryRow)
            .where(SubjectRow.expires_at.is_not(None), SubjectRow.expires_at <= now)
            .order_by(SubjectRow.expires_at)
        ).all()
        return [(_gallery(g), _subject(s)) for s, g in rows]

    def ids_in(self, gallery_id: int) -> IdArray:
        """The ids of the gallery's subjects, ascending."""
        found = self._s.scalars(select(SubjectRow.id).where(SubjectRow.gallery_id == gallery_id)
                                .order_by(SubjectRow.id)).all()
        return np.fromiter(found, dtype=np.int64, count=len(found))

    def reset_expiry(self, gallery: Gallery) -> int:
        """Recompute every subject's expiry from the gallery's retention, in pages of
        10,000 subjects; returns how many."""
        done, last = 0, 0
        while True:
            rows = self._s.execute(
                select(SubjectRow.id, SubjectRow.created_at)
                .where(SubjectRow.gallery_id == gallery.id, SubjectRow.id > last)
                .order_by(SubjectRow.id).limit(10_000)).all()
            if not rows:
                return done
            self._s.execute(update(SubjectRow), [
                {"id": sid, "expires_at": gallery.expiry_for(created)} for sid, created in rows])
            done, last = done + len(rows), rows[-1][0]

    def delete(self, subject_id: int) -> None:
        """Delete the subject with its templates (their removal logged for the indexes)."""
        rows = self._s.execute(select(TemplateRow.id, TemplateRow.gallery_id,
                                      TemplateRow.space_key)
                               .where(TemplateRow.subject_id == subject_id)).all()
        log_changes(self._s, rows, added=False)
        self._s.execute(delete(SubjectRow).where(SubjectRow.id == subject_id))


@dataclass(frozen=True, slots=True)
class IndexChange:
    """One entry of a gallery's index change log."""

    id: int
    template_id: int
    space_key: str
    added: bool


def log_changes(session: Session, rows: Iterable[Any], *, added: bool) -> None:
    """Log templates (id, gallery id, space key) as added or removed, in the caller's
    transaction. Each gallery's revision is bumped first: its row stays locked until
    commit, so a gallery's changes take their ids in commit order (see
    ``IndexChangeRow``)."""
    by_gallery: dict[int, list[tuple[int, str]]] = {}
    for template_id, gallery_id, space_key in rows:
        by_gallery.setdefault(int(gallery_id), []).append((int(template_id), str(space_key)))
    for gallery_id in sorted(by_gallery):  # one lock order for every writer: no deadlock
        session.execute(update(GalleryRow).where(GalleryRow.id == gallery_id)
                        .values(revision=GalleryRow.revision + 1))
        session.execute(insert(IndexChangeRow), [
            {"gallery_id": gallery_id, "template_id": template_id, "space_key": space_key,
             "added": added, "nonce": secrets.randbits(63)}
            for template_id, space_key in by_gallery[gallery_id]])


@dataclass(frozen=True, slots=True)
class VectorBatch:
    """Template ids and their vectors, as an index wants them."""

    ids: IdArray
    vectors: Matrix


class TemplateRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def find_duplicate(
        self, gallery_id: int, external_id: str, space: ModelSpace, sha256: str
    ) -> int | None:
        """The id of the template this image already gave this subject, if any."""
        value = self._s.scalar(
            select(TemplateRow.id).join(SubjectRow).where(
                TemplateRow.gallery_id == gallery_id, SubjectRow.external_id == external_id,
                TemplateRow.space_key == space.key, TemplateRow.image_sha256 == sha256,
            )
        )
        return None if value is None else int(value)

    def add(self, subject: Subject, new: NewTemplate, now: datetime) -> int | None:
        """Store ``new`` for ``subject``; None when the same image is already there."""
        space = new.template.space
        row = TemplateRow(
            subject_id=subject.id, gallery_id=subject.gallery_id, space_key=space.key,
            pack=space.pack, pack_version=space.version, dimension=space.dimension,
            metric=space.metric.value,
            vector=new.template.vector.astype(_VECTOR_DTYPE).tobytes(),
            quality=new.quality, image_sha256=new.image_sha256, source=new.source,
            box=new.box.as_list(), crop_path=new.crop_path, created_at=now,
        )
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            return None
        log_changes(self._s, [(row.id, row.gallery_id, row.space_key)], added=True)
        return row.id

    def record_added(self, gallery_id: int, space_key: str, ids: Sequence[int]) -> None:
        """Log templates written in bulk (not through ``add``) for the indexes."""
        log_changes(self._s, [(i, gallery_id, space_key) for i in ids], added=True)

    def changes_since(self, gallery_id: int, position: int,
                      limit: int = 100_000) -> list[IndexChange]:
        """The gallery's index changes after ``position``, oldest first."""
        rows = self._s.execute(
            select(IndexChangeRow.id, IndexChangeRow.template_id, IndexChangeRow.space_key,
                   IndexChangeRow.added)
            .where(IndexChangeRow.gallery_id == gallery_id, IndexChangeRow.id > position)
            .order_by(IndexChangeRow.id).limit(limit)).all()
        return [IndexChange(int(i), int(t), str(k), bool(a)) for i, t, k, a in rows]

    def change_head(self, gallery_id: int) -> int:
        """The id of the gallery's newest index change (0 when none)."""
        value = self._s.scalar(select(func.max(IndexChangeRow.id))
                               .where(IndexChangeRow.gallery_id == gallery_id))
        return int(value or 0)

    def vector_pages(self, gallery_id: int, space: ModelSpace, after_id: int = 0,
                     page: int = _PAGE) -> Iterator[VectorBatch]:
        """The gallery's vectors in ``space`` with ids above ``after_id``, in id order and
        pages of ``page`` rows, so that loading 10M templates never holds them all as
        Python objects (a row costs about ten times its 512 bytes of vector that way)."""
        last = after_id
        while True:
            rows = self._s.execute(
                select(TemplateRow.id, TemplateRow.vector, TemplateRow.dimension).where(
                    TemplateRow.gallery_id == gallery_id, TemplateRow.space_key == space.key,
                    TemplateRow.id > last,
                ).order_by(TemplateRow.id).limit(page)
            ).all()
            if not rows:
                return
            yield _decoded(rows, space)
            last = rows[-1][0]

    def vectors_of(self, ids: IdArray, space: ModelSpace) -> Iterator[VectorBatch]:
        """The vectors of ``ids`` in ``space`` (those still stored), in pages."""
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = [int(i) for i in ids[start : start + _ID_CHUNK]]
            rows = self._s.execute(
                select(TemplateRow.id, TemplateRow.vector, TemplateRow.dimension).where(
                    TemplateRow.id.in_(chunk), TemplateRow.space_key == space.key,
                ).order_by(TemplateRow.id)
            ).all()
            if rows:
                yield _decoded(rows, space)

    def of_subjects(self, subject_ids: Sequence[int],
                    space: ModelSpace) -> tuple[list[str], Matrix]:
        """Every template of ``subject_ids`` in ``space``: their subjects' external ids and
        vectors, in template id order."""
        rows = self._s.execute(
            select(TemplateRow.id, TemplateRow.vector, TemplateRow.dimension,
                   SubjectRow.external_id).join(SubjectRow)
            .where(TemplateRow.subject_id.in_([int(i) for i in subject_ids]),
                   TemplateRow.space_key == space.key).order_by(TemplateRow.id)
        ).all()
        if not rows:
            return [], np.empty((0, space.dimension), dtype=np.float32)
        return [r[3] for r in rows], _decoded([r[:3] for r in rows], space).vectors

    def ids(self, gallery_id: int, space: ModelSpace) -> IdArray:
        """The ids of the gallery's templates in ``space``, ascending."""
        found = self._s.scalars(select(TemplateRow.id).where(
            TemplateRow.gallery_id == gallery_id, TemplateRow.space_key == space.key,
        ).order_by(TemplateRow.id)).all()
        return np.fromiter(found, dtype=np.int64, count=len(found))

    def count(self, gallery_id: int, space: ModelSpace) -> int:
        value = self._s.scalar(select(func.count()).select_from(TemplateRow).where(
            TemplateRow.gallery_id == gallery_id, TemplateRow.space_key == space.key))
        return int(value or 0)

    def owners(self, ids: Iterable[int]) -> dict[int, str]:
        """Template id -> subject external id, for the ids that still exist."""
        wanted = sorted({int(i) for i in ids if i >= 0})
        if not wanted:
            return {}
        rows = self._s.execute(
            select(TemplateRow.id, SubjectRow.external_id).join(SubjectRow)
            .where(TemplateRow.id.in_(wanted))
        ).all()
        return {int(tid): str(ext) for tid, ext in rows}

    def of_subject(self, subject_id: int) -> list[StoredTemplate]:
        rows = self._s.scalars(select(TemplateRow).where(TemplateRow.subject_id == subject_id))
        return [_stored(r) for r in rows]

    def in_space(self, gallery_id: int, space_key: str | None = None) -> list[StoredTemplate]:
        """The gallery's templates, of one space when ``space_key`` is given."""
        query = select(TemplateRow).where(TemplateRow.gallery_id == gallery_id)
        if space_key is not None:
            query = query.where(TemplateRow.space_key == space_key)
        return [_stored(r) for r in self._s.scalars(query.order_by(TemplateRow.id))]

    def other_spaces(self, gallery_id: int, keep: ModelSpace) -> list[StoredTemplate]:
        query = select(TemplateRow).where(
            TemplateRow.gallery_id == gallery_id, TemplateRow.space_key != keep.key)
        return [_stored(r) for r in self._s.scalars(query)]

    def crop_paths(self) -> set[str]:
        """Every crop path the store refers to."""
        rows = self._s.scalars(select(TemplateRow.crop_path).where(
            TemplateRow.crop_path.is_not(None)))
        return {str(r) for r in rows}

    def delete(self, ids: Sequence[int]) -> None:
        """Delete templates (their removal logged for the indexes)."""
        if ids:
            rows = self._s.execute(select(TemplateRow.id, TemplateRow.gallery_id,
                                          TemplateRow.space_key)
                                   .where(TemplateRow.id.in_(list(ids)))).all()
            log_changes(self._s, rows, added=False)
            self._s.execute(delete(TemplateRow).where(TemplateRow.id.in_(list(ids))))
