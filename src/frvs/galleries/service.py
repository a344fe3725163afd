"""The galleries use cases: galleries, enrolment, identify, cross-match, deletion,
retention purge and reindexing. The CLI and API are thin shells over ``GalleryService``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from frvs.core.errors import ConflictError, FrvsError, InvalidInputError, NotFoundError
from frvs.galleries.calibration import (
    MAX_PROBES,
    Calibration,
    ProgressCallback,
    calibrate,
    check_target,
)
from frvs.galleries.enrolment import (
    EnrolContext,
    EnrolItem,
    Enroller,
    OutcomeCallback,
    plan_folder,
    read_bytes,
)
from frvs.galleries.models import (
    GALLERY_UPDATABLE,
    CrossMatch,
    DeletedSubject,
    EnrolOutcome,
    EnrolReport,
    Gallery,
    GallerySpec,
    Identification,
    OutcomeStatus,
    ReindexReport,
    Subject,
)
from frvs.galleries.search import Searcher, decision_threshold
from frvs.imaging.decode import decode_image
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store, UnitOfWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GalleryOverview:
    """A gallery with its counts and decision threshold, for list/show."""

    gallery: Gallery
    subjects: int
    templates: int
    threshold: float

    def as_dict(self) -> dict[str, object]:
        return self.gallery.as_dict() | {"subjects": self.subjects, "templates": self.templates,
                                         "decision_threshold": self.threshold}


class GalleryService:
    """Use cases over one store, one set of indexes and one face analyser."""

    def __init__(self, store: Store, catalog: IndexCatalog, context: EnrolContext) -> None:
        self._store = store
        self._catalog = catalog
        self._ctx = context
        self._enroller = Enroller(store, catalog, context)
        self._searcher = Searcher(store, catalog, context.analyser)

    def warm(self) -> int:
        """Build every gallery's index from the store (at start); returns templates loaded."""
        with self._store.unit() as uow:
            galleries = uow.galleries.all()
        loaded = 0
        for gallery in galleries:
            space = self._ctx.analyser.packs.info(gallery.pack).space
            loaded += self._catalog.fresh(gallery.id, space).count()
        logger.info("indexes rebuilt from the store: %d galleries, %d templates",
                    len(galleries), loaded)
        return loaded

    # -- galleries ------------------------------------------------------------------

    def create(self, spec: GallerySpec) -> Gallery:
        pack = spec.pack or self._ctx.analyser.packs.default_name
        self._ctx.analyser.packs.info(pack)  # unknown pack -> ConfigurationError now
        with self._store.unit(write=True) as uow:
            return uow.galleries.add(spec, pack, self._ctx.clock())

    def update(self, name: str, changes: Mapping[str, object]) -> GalleryOverview:
        """Change a gallery's purpose, legal basis, retention, threshold, FMR target or crop
        policy; the result is validated as a new gallery would be (a watch list keeps its
        purpose and legal basis). A new retention re-dates every subject's expiry."""
        if not changes:
            raise InvalidInputError("nothing to change: name at least one setting")
        unknown = sorted(set(changes) - GALLERY_UPDATABLE)
        if unknown:
            raise InvalidInputError(f"cannot change {', '.join(unknown)} of a gallery; "
                                    f"changeable: {', '.join(sorted(GALLERY_UPDATABLE))}")
        with self._store.unit(write=True) as uow:
            gallery = uow.galleries.get(name)
            spec = replace(gallery.spec(), **changes)  # type: ignore[arg-type]
            uow.galleries.update(gallery.id, spec)
            updated = uow.galleries.get(name)
            if updated.retention_days != gallery.retention_days:
                redated = uow.subjects.reset_expiry(updated)
                logger.info("gallery %s: retention %s -> %s days, %d subjects re-dated", name,
                            gallery.retention_days, updated.retention_days, redated)
            return self.overview(updated, uow)

    def get(self, name: str) -> Gallery:
        with self._store.unit() as uow:
            return uow.galleries.get(name)

    def overview(self, gallery: Gallery, uow: UnitOfWork) -> GalleryOverview:
        subjects, templates = uow.galleries.counts(gallery.id)
        threshold = decision_threshold(gallery, self._ctx.analyser.packs.info(gallery.pack))
        return GalleryOverview(gallery, subjects, templates, threshold)

    def all(self) -> list[GalleryOverview]:
        with self._store.unit() as uow:
            return [self.overview(g, uow) for g in uow.galleries.all()]

    def show(self, name: str) -> tuple[GalleryOverview, list[Subject]]:
        with self._store.unit() as uow:
            gallery = uow.galleries.get(name)
            return self.overview(gallery, uow), uow.subjects.in_gallery(gallery.id)

    def delete(self, name: str) -> GalleryOverview:
        """Delete a gallery with its subjects, templates, crops and indexes."""
        with self._store.unit(write=True) as uow:
            gallery = uow.galleries.get(name)
            overview = self.overview(gallery, uow)
            uow.galleries.delete(gallery.id)
        self._catalog.drop(gallery.id)
        self._store.media.remove_gallery(gallery.id)
        return overview

    # -- enrolment ------------------------------------------------------------------

    def enrol(self, gallery_name: str, items: Sequence[EnrolItem],
              on_outcome: OutcomeCallback | None = None) -> EnrolReport:
        """Enrol images (``EnrolItem``s); see ``frvs.galleries.enrolment``."""
        gallery = self.get(gallery_name)
        outcomes = self._enroller.enrol(gallery, items, on_outcome)
        return EnrolReport(gallery.name, tuple(outcomes))

    def plan_folder(self, root: Path) -> list[EnrolItem]:
        return plan_folder(root)

    # -- search ---------------------------------------------------------------------

    def identify(self, gallery_name: str, image: Path, top: int = 5) -> Identification:
        gallery = self.get(gallery_name)
        data = read_bytes(image, self._ctx.limits)
        return self._searcher.identify(gallery, decode_image(data, self._ctx.limits, str(image)),
                                       top)

    def crossmatch(self, name_a: str, name_b: str | None = None,
                   threshold: float | None = None, top: int = 10) -> CrossMatch:
        a = self.get(name_a)
        b = a if name_b is None or name_b == name_a else self.get(name_b)
        return self._searcher.crossmatch(a, b, threshold, top)

    def calibrate(self, name: str, fpir: float, apply: bool = False,
                  on_progress: ProgressCallback | None = None) -> Calibration:
        """The 1:N threshold for a target FPIR, measured on the gallery's own subjects
        (``frvs.galleries.calibration``); with ``apply``, it becomes the gallery's."""
        gallery = self.get(name)
        info = self._ctx.analyser.packs.info(gallery.pack)
        with self._store.unit() as uow:
            templates = uow.templates.count(gallery.id, info.space)
        check_target(gallery.name, fpir, min(templates, MAX_PROBES))  # before any search
        result = calibrate(gallery.name, self._searcher.open_set(gallery, on_progress), fpir,
                           decision_threshold(gallery, info), templates)
        if apply:
            with self._store.unit(write=True) as uow:
                # As read now (not before the search), through the gallery's validation.
                now = uow.galleries.get(name)
                uow.galleries.update(now.id, replace(now.spec(), threshold=result.threshold))
            result = replace(result, applied=True)
            logger.info("gallery %s: threshold %.4f for FPIR %g (was %.4f)", gallery.name,
                        result.threshold, fpir, result.current_threshold)
        return result

    # -- deletion and retention ---------------------------------------------------

    def delete_subject(self, gallery_name: str, external_id: str) -> DeletedSubject:
        """Delete a subject with its templates, crops and index entries, for real."""
        with self._store.unit(write=True) as uow:
            gallery = uow.galleries.get(gallery_name)
            subject = uow.subjects.find(gallery.id, external_id)
            if subject is None:
                raise NotFoundError(f"no subject {external_id!r} in gallery {gallery_name!r}")
            ids, crops = self._delete_subject(uow, gallery, subject)
        return self._after_delete(gallery, subject, ids, crops)

    def purge(self) -> list[DeletedSubject]:
        """Delete every subject past its gallery's retention, as of the clock's now."""
        now = self._ctx.clock()
        deleted = []
        with self._store.unit(write=True) as uow:
            doomed = [(g, s, *self._delete_subject(uow, g, s))
                      for g, s in uow.subjects.expired(now)]
        for gallery, subject, ids, crops in doomed:
            deleted.append(self._after_delete(gallery, subject, ids, crops))
        if deleted:
            logger.info("purge deleted %d subject(s) past retention", len(deleted))
        self.sweep_orphan_crops()
        return deleted

    def sweep_orphan_crops(self, grace_seconds: float = 600.0) -> int:
        """Remove crop files no template refers to (a crash mid-deletion leaves them)."""
        with self._store.unit() as uow:
            referenced = uow.templates.crop_paths()
        cutoff = time.time() - grace_seconds
        removed = self._store.media.sweep(referenced, cutoff)
        if removed:
            logger.warning("removed %d orphan face crop(s)", removed)
        return removed

    @staticmethod
    def _delete_subject(uow: UnitOfWork, gallery: Gallery,
                        subject: Subject) -> tuple[list[int], list[str | None]]:
        templates = uow.templates.of_subject(subject.id)
        uow.subjects.delete(subject.id)
        uow.galleries.bump_revision(gallery.id)
        return [t.id for t in templates], [t.crop_path for t in templates]

    def _after_delete(self, gallery: Gallery, subject: Subject, ids: list[int],
                      crops: list[str | None]) -> DeletedSubject:
        # After the commit: a crash in between leaves orphan crop files, never rows.
        self._catalog.removed(gallery.id, ids)
        removed = self._store.media.remove(crops)
        return DeletedSubject(gallery.name, subject.external_id, len(ids), removed)

    # -- reindex --------------------------------------------------------------------

    def reindex(self, gallery_name: str, pack: str,
                on_outcome: OutcomeCallback | None = None) -> ReindexReport:
        """Re-embed every template's source image with ``pack`` and switch the gallery.

        New templates are added beside the old ones (resumable, idempotent); only when
        every source re-embedded does one transaction switch the gallery's pack and
        delete the old space's templates. Sources that moved or changed are refused
        (their SHA-256 must match) and the gallery stays on its old pack.
        """
        gallery = self.get(gallery_name)
        if pack == gallery.pack:
            raise ConflictError(f"gallery {gallery_name!r} already uses pack {pack!r}")
        old_space = self._ctx.analyser.packs.info(gallery.pack).space
        self._ctx.analyser.packs.info(pack)
        target = _with_pack(gallery, pack)
        with self._store.unit() as uow:
            subjects = {s.id: s for s in uow.subjects.in_gallery(gallery.id)}
            stored = uow.templates.in_space(gallery.id, old_space.key)
        outcomes = []
        for template in stored:
            outcome = self._reembed(target, subjects[template.subject_id], template.source,
                                    template.image_sha256)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        switched = all(o.status is not OutcomeStatus.REFUSED for o in outcomes)
        if switched:
            with self._store.unit(write=True) as uow:
                old = uow.templates.other_spaces(gallery.id, self._ctx.analyser.packs.info(
                    pack).space)
                uow.templates.delete([t.id for t in old])
                uow.galleries.set_pack(gallery.id, pack)
                uow.galleries.bump_revision(gallery.id)
            self._catalog.drop(gallery.id)
            self._store.media.remove([t.crop_path for t in old])
        return ReindexReport(gallery.name, gallery.pack, pack, tuple(outcomes), switched)

    def _reembed(self, gallery: Gallery, subject: Subject, source: str | None,
                 digest: str) -> EnrolOutcome:
        name = source or digest[:12]
        refused = OutcomeStatus.REFUSED
        if source is None:
            return EnrolOutcome(name, subject.external_id, refused, "no source image recorded",
                                "not_found")
        try:
            data = read_bytes(Path(source), self._ctx.limits)
        except OSError as exc:
            return EnrolOutcome(name, subject.external_id, refused,
                                f"{name}: cannot read ({exc.strerror or exc})", "file_not_found")
        if hashlib.sha256(data).hexdigest() != digest:
            return EnrolOutcome(name, subject.external_id, refused,
                                f"{name}: the file changed since enrolment", "conflict")
        try:
            image = decode_image(data, self._ctx.limits, name)
            return self._enroller.store_face(gallery, subject, image, (digest, source))
        except FrvsError as exc:
            return EnrolOutcome(name, subject.external_id, refused, exc.message, exc.code)


def _with_pack(gallery: Gallery, pack: str) -> Gallery:
    return replace(gallery, pack=pack)
