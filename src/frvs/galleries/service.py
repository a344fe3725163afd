"""The galleries use cases: galleries, enrolment, identify, cross-match, deletion,
retention purge and reindexing. The CLI and API are thin shells over ``GalleryService``.

Every use case takes its caller explicitly and leaves an audit entry: operations that
write do so in the same transaction as their writes (``UnitOfWork.audit``), searches in
a transaction of their own before the result is returned, and refusals (an unknown
gallery, a bad image, a missing case reference) with their reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from frvs.core.caller import AuditContext, AuditDraft, record_refusal, subject_ref
from frvs.core.errors import ConflictError, InvalidInputError, NotFoundError
from frvs.galleries.calibration import (
    MAX_PROBES,
    FpirCalibration,
    ProgressCallback,
    calibrate,
    check_target,
)
from frvs.galleries.enrolment import (
    EnrolContext,
    EnrolItem,
    Enroller,
    OutcomeCallback,
    image_sha256,
    plan_folder,
    read_bytes,
)
from frvs.galleries.models import (
    GALLERY_UPDATABLE,
    CrossMatch,
    DeletedSubject,
    EnrolReport,
    Gallery,
    GallerySpec,
    Identification,
    OutcomeStatus,
    ReindexReport,
    Subject,
)
from frvs.galleries.search import Searcher, decision_threshold
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store, UnitOfWork

logger = logging.getLogger(__name__)

_MAX_NAMED = 1000
"""At most this many subjects are named by one entry (a huge cross-match names the first)."""


def _identification_summary(result: Identification) -> dict[str, object]:
    return {"faces": len(result.faces), "threshold": result.threshold, "pack": result.pack,
            "matches": [f.match for f in result.faces if f.match],
            "best_scores": [round(f.candidates[0].score, 4) if f.candidates else None
                            for f in result.faces]}


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

    def save_snapshots(self) -> None:
        """Snapshot every large index that changed since its snapshot, so the next start
        loads it and re-applies nothing (at shutdown)."""
        self._catalog.save_snapshots()

    @contextmanager
    def _refusals(self, caller: AuditContext, action: str, inputs: Mapping[str, Any],
                  subjects: Sequence[str] = ()) -> Iterator[None]:
        """Audit the block's error as a refusal (or failure), then re-raise it."""
        try:
            yield
        except Exception as exc:
            record_refusal(self._store, caller, action, inputs, exc, subjects=subjects)
            raise

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

    def create(self, caller: AuditContext, spec: GallerySpec) -> Gallery:
        inputs = {"gallery": spec.name, "kind": spec.kind.value, "purpose": spec.purpose,
                  "legal_basis": spec.legal_basis, "retention_days": spec.retention_days,
                  "pack": spec.pack}
        with self._refusals(caller, "gallery.create", inputs):
            pack = spec.pack or self._ctx.analyser.packs.default_name
            self._ctx.analyser.packs.info(pack)  # unknown pack -> ConfigurationError now
            with self._store.unit(write=True) as uow:
                gallery = uow.galleries.add(spec, pack, self._ctx.clock())
                uow.audit(caller, AuditDraft("gallery.create", inputs,
                                             {"gallery_id": gallery.id, "pack": gallery.pack}))
            return gallery

    def update(self, caller: AuditContext, name: str,
               changes: Mapping[str, object]) -> GalleryOverview:
        """Change a gallery's purpose, legal basis, retention, threshold, FMR target or crop
        policy; the result is validated as a new gallery would be (a watch list keeps its
        purpose and legal basis). A new retention re-dates every subject's expiry."""
        inputs = {"gallery": name, "changes": dict(changes)}
        with self._refusals(caller, "gallery.update", inputs):
            if not changes:
                raise InvalidInputError("nothing to change: name at least one setting")
            unknown = sorted(set(changes) - GALLERY_UPDATABLE)
            if unknown:
                raise InvalidInputError(f"cannot change {', '.join(unknown)} of a gallery; "
                                        f"changeable: {', '.join(sorted(GALLERY_UPDATABLE))}")
            with self._store.unit(write=True) as uow:
                gallery = uow.galleries.get(name)
                spec = replace(GallerySpec.of(gallery), **changes)  # type: ignore[arg-type]
                uow.galleries.update(gallery.id, spec)
                updated = uow.galleries.get(name)
                if updated.retention_days != gallery.retention_days:
                    redated = uow.subjects.reset_expiry(updated)
                    logger.info("gallery %s: retention %s -> %s days, %d subjects re-dated",
                                name, gallery.retention_days, updated.retention_days, redated)
                before = gallery.as_dict()
                uow.audit(caller, AuditDraft("gallery.update", inputs, {
                    "before": {k: before[k] for k in changes if k in before}}))
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

    def subjects(self, name: str, after: str | None, limit: int) -> list[Subject]:
        """A page of gallery ``name``'s subjects: up to ``limit`` whose id sorts after
        ``after`` (code point order), with their template counts."""
        with self._store.unit() as uow:
            return uow.subjects.page(uow.galleries.get(name).id, after, limit)

    def subject(self, name: str, external_id: str) -> Subject:
        """One subject of gallery ``name``, with its template count."""
        with self._store.unit() as uow:
            found = uow.subjects.find_counted(uow.galleries.get(name).id, external_id)
        if found is None:
            raise NotFoundError(f"no subject {external_id!r} in gallery {name!r}")
        return found

    def photo(self, caller: AuditContext, gallery_name: str, external_id: str, *,
              context: Mapping[str, Any] | None = None) -> bytes:
        """The aligned face crop of the subject's first kept enrolment photo, as JPEG
        bytes; each download is audited (``subject.photo``), with ``context`` (what the
        photo is shown for, e.g. ``{"alert_id": 7}``) among the entry's inputs."""
        ref = subject_ref(gallery_name, external_id)
        inputs = {**(context or {}), "gallery": gallery_name, "subject": external_id}
        with self._refusals(caller, "subject.photo", inputs, [ref]):
            with self._store.unit() as uow:
                found = uow.subjects.find(uow.galleries.get(gallery_name).id, external_id)
                if found is None:
                    raise NotFoundError(f"no subject {external_id!r} in gallery "
                                        f"{gallery_name!r}")
                crops = [t.crop_path for t in uow.templates.of_subject(found.id)
                         if t.crop_path]
            data = next((d for d in map(self._store.media.read, crops) if d is not None),
                        None)
            if data is None:
                raise NotFoundError(
                    f"gallery {gallery_name!r} keeps no enrolment crops for {external_id!r} "
                    "(create it with keep_crops to show enrolled photos)")
            self._store.audit(caller, AuditDraft("subject.photo", inputs,
                                                 {"bytes": len(data)}, [ref]))
        return data

    def delete(self, caller: AuditContext, name: str) -> GalleryOverview:
        """Delete a gallery with its subjects, templates, crops and indexes."""
        with (self._refusals(caller, "gallery.delete", {"gallery": name}),
              self._store.unit(write=True) as uow):
            gallery = uow.galleries.get(name)
            overview = self.overview(gallery, uow)
            uow.galleries.delete(gallery.id)
            uow.audit(caller, AuditDraft("gallery.delete", {"gallery": name}, {
                "subjects": overview.subjects, "templates": overview.templates}))
        self._catalog.drop(gallery.id)
        self._store.media.remove_gallery(gallery.id)
        return overview

    # -- enrolment ------------------------------------------------------------------

    def enrol(self, caller: AuditContext, gallery_name: str, items: Sequence[EnrolItem],
              on_outcome: OutcomeCallback | None = None) -> EnrolReport:
        """Enrol images (``EnrolItem``: files or uploaded bytes), each image with its own
        audit entry in its own transaction; see ``frvs.galleries.enrolment``."""
        with self._refusals(caller, "enrol", {"gallery": gallery_name, "images": len(items)}):
            gallery = self.get(gallery_name)
        outcomes = self._enroller.enrol(caller, gallery, items, on_outcome)
        return EnrolReport(gallery.name, tuple(outcomes))

    def plan_folder(self, root: Path) -> list[EnrolItem]:
        return plan_folder(root)

    # -- search ---------------------------------------------------------------------

    @staticmethod
    def _searching(caller: AuditContext, action: str) -> None:
        # Searches through the API need a case and a purpose; at the command line they
        # are recorded when given (FRVS_CASE_REFERENCE / FRVS_PURPOSE), not required.
        if caller.actor.kind == "key":
            caller.require_case(action)

    def identify(self, caller: AuditContext, gallery_name: str, image: Path | bytes,
                 top: int = 5, name: str | None = None) -> Identification:
        """1:N search of every face of a probe (a file or uploaded bytes), audited with
        the probe's digest, the gallery, the matches and the caller's case and purpose."""
        label = str(image) if isinstance(image, Path) else (name or "probe")
        inputs: dict[str, Any] = {"gallery": gallery_name, "probe_sha256": None, "top": top}
        with self._refusals(caller, "identify", inputs):
            self._searching(caller, "identify")
            data = read_bytes(image, self._ctx.limits) if isinstance(image, Path) else image
            inputs["probe_sha256"] = image_sha256(data)
            gallery = self.get(gallery_name)
            with self._ctx.budget.decode([(data, label)], self._ctx.limits) as (probe,):
                result = self._searcher.identify(gallery, probe, top)
            self._store.audit(caller, AuditDraft(
                "identify", inputs, _identification_summary(result),
                [subject_ref(gallery_name, f.match) for f in result.faces if f.match]))
        return result

    def crossmatch(self, caller: AuditContext, name_a: str, name_b: str | None = None,
                   threshold: float | None = None, top: int = 10) -> CrossMatch:
        inputs = {"gallery_a": name_a, "gallery_b": name_b or name_a, "threshold": threshold,
                  "top": top}
        with self._refusals(caller, "crossmatch", inputs):
            self._searching(caller, "crossmatch")
            a = self.get(name_a)
            b = a if name_b is None or name_b == name_a else self.get(name_b)
            result = self._searcher.crossmatch(a, b, threshold, top)
            self._store.audit(caller, AuditDraft(
                "crossmatch", inputs, {"pairs": len(result.pairs),
                                       "threshold": result.threshold},
                [ref for p in result.pairs[: _MAX_NAMED // 2] for ref in
                 (subject_ref(result.gallery_a, p.subject_a),
                  subject_ref(result.gallery_b, p.subject_b))]))
        return result

    def calibrate(self, caller: AuditContext, name: str, fpir: float, apply: bool = False,
                  on_progress: ProgressCallback | None = None) -> FpirCalibration:
        """The 1:N threshold for a target FPIR, measured on the gallery's own subjects
        (``frvs.galleries.calibration``); with ``apply``, it becomes the gallery's."""
        inputs = {"gallery": name, "fpir": fpir, "apply": apply}
        with self._refusals(caller, "gallery.calibrate", inputs):
            gallery = self.get(name)
            info = self._ctx.analyser.packs.info(gallery.pack)
            with self._store.unit() as uow:
                templates = uow.templates.count(gallery.id, info.space)
            check_target(gallery.name, fpir, min(templates, MAX_PROBES))  # before any search
            result = calibrate(gallery.name, self._searcher.open_set(gallery, on_progress),
                               fpir, decision_threshold(gallery, info), templates)
            if apply:
                result = replace(result, applied=True)
            with self._store.unit(write=True) as uow:
                # As read now (not before the search), through the gallery's validation.
                now = uow.galleries.get(name)
                if apply:
                    uow.galleries.update(now.id, replace(GallerySpec.of(now),
                                                         threshold=result.threshold))
                uow.audit(caller, AuditDraft("gallery.calibrate", inputs, {
                    "threshold": result.threshold, "probes": result.probes,
                    "applied": result.applied,
                    # as stored, so that an applied calibration can be undone
                    "previous_threshold": now.threshold,
                    "previous_fmr_target": now.fmr_target}))
        if apply:
            logger.info("gallery %s: threshold %.4f for FPIR %g (was %.4f)", gallery.name,
                        result.threshold, fpir, result.current_threshold)
        return result

    # -- deletion and retention ---------------------------------------------------

    def delete_subject(self, caller: AuditContext, gallery_name: str, external_id: str, *,
                       action: str = "subject.delete",
                       also: Callable[[UnitOfWork], Mapping[str, int]] | None = None
                       ) -> DeletedSubject:
        """Delete a subject with its templates, crops and index entries, for real.

        ``also`` runs in the same transaction (an erasure removes the subject from other
        concepts' records there) and its counts join the ``action`` entry's result.
        """
        ref = subject_ref(gallery_name, external_id)
        inputs = {"gallery": gallery_name, "subject": external_id}
        with (self._refusals(caller, action, inputs, [ref]),
              self._store.unit(write=True) as uow):
            gallery = uow.galleries.get(gallery_name)
            subject = uow.subjects.find(gallery.id, external_id)
            if subject is None:
                raise NotFoundError(f"no subject {external_id!r} in gallery {gallery_name!r}")
            extra = dict(also(uow)) if also is not None else {}
            ids, crops = self._delete_subject(uow, gallery, subject)
            uow.audit(caller, AuditDraft(action, inputs, {
                "templates": len(ids), "crops": sum(1 for c in crops if c), **extra}, [ref]))
        return self._after_delete(gallery, subject, ids, crops)

    def purge(self, caller: AuditContext) -> list[DeletedSubject]:
        """Delete every subject past its gallery's retention, as of the clock's now."""
        now = self._ctx.clock()
        deleted = []
        with self._refusals(caller, "purge", {}), self._store.unit(write=True) as uow:
            doomed = [(g, s, *self._delete_subject(uow, g, s))
                      for g, s in uow.subjects.expired(now)]
            uow.audit(caller, AuditDraft("purge", {}, {
                "subjects": len(doomed), "templates": sum(len(d[2]) for d in doomed)},
                [subject_ref(g.name, s.external_id) for g, s, _, _ in doomed][:_MAX_NAMED]))
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

    def reindex(self, caller: AuditContext, gallery_name: str, pack: str,
                on_outcome: OutcomeCallback | None = None) -> ReindexReport:
        """Re-embed every template's source image with ``pack`` and switch the gallery.

        New templates are added beside the old ones (resumable, idempotent; each with its
        ``reindex.template`` entry); only when every source re-embedded does one
        transaction switch the gallery's pack, delete the old space's templates and
        write the ``reindex`` entry. Sources that moved or changed are refused (their
        SHA-256 must match) and the gallery stays on its old pack.
        """
        inputs = {"gallery": gallery_name, "pack": pack}
        with self._refusals(caller, "reindex", inputs):
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
            outcome = self._enroller.reembed(caller, target, subjects[template.subject_id],
                                    template.source, template.image_sha256)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        switched = all(o.status is not OutcomeStatus.REFUSED for o in outcomes)
        with self._store.unit(write=True) as uow:
            old = []
            if switched:
                old = uow.templates.other_spaces(gallery.id, self._ctx.analyser.packs.info(
                    pack).space)
                uow.templates.delete([t.id for t in old])
                uow.galleries.set_pack(gallery.id, pack)
                uow.galleries.bump_revision(gallery.id)
            uow.audit(caller, AuditDraft("reindex", inputs, {
                "switched": switched, "templates": len(outcomes),
                "refused": sum(1 for o in outcomes if o.status is OutcomeStatus.REFUSED)}))
        if switched:
            self._catalog.drop(gallery.id)
            self._store.media.remove([t.crop_path for t in old])
        return ReindexReport(gallery.name, gallery.pack, pack, tuple(outcomes), switched)


def _with_pack(gallery: Gallery, pack: str) -> Gallery:
    return replace(gallery, pack=pack)
