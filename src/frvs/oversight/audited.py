"""Audited façades: the galleries service and the face engine, each operation written
to the audit trail in this one place, whoever calls (CLI, API, pipeline).

The composition root builds them with the local actor (the OS user at the command
line); the API binds each request's key with ``acting_as``. A biometric operation
that fails is audited too, with its error, and the error is re-raised.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from frvs.core.errors import FrvsError
from frvs.faces.models import Verification
from frvs.faces.service import EngineOptions, FaceEngine
from frvs.galleries.calibration import Calibration, ProgressCallback
from frvs.galleries.enrolment import EnrolContext, EnrolItem, OutcomeCallback
from frvs.galleries.models import (
    CrossMatch,
    DeletedSubject,
    EnrolOutcome,
    EnrolReport,
    Gallery,
    GallerySpec,
    Identification,
    OutcomeStatus,
    ReindexReport,
    SubjectSpec,
)
from frvs.galleries.service import GalleryOverview, GalleryService
from frvs.imaging.decode import BGRImage, decode_image
from frvs.models.registry import PackRegistry
from frvs.oversight.audit import AuditTrail, OperationRecord, subject_ref
from frvs.oversight.models import AuditContext
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store

_MAX_NAMED = 1000
"""At most this many subjects are named by one entry (a huge cross-match names the first)."""


def pixels_sha256(image: BGRImage) -> str:
    """A digest of decoded pixels: what the audit records of an image it never stores."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def _matches(gallery: str, result: Identification) -> list[str]:
    return [subject_ref(gallery, f.match) for f in result.faces if f.match]


def _identification_summary(result: Identification) -> dict[str, object]:
    return {"faces": len(result.faces), "threshold": result.threshold, "pack": result.pack,
            "matches": [f.match for f in result.faces if f.match],
            "best_scores": [round(f.candidates[0].score, 4) if f.candidates else None
                            for f in result.faces]}


class AuditedGalleryService(GalleryService):
    """``GalleryService`` whose every write and search is on the audit trail."""

    def __init__(self, store: Store, catalog: IndexCatalog, context: EnrolContext,
                 trail: AuditTrail, audit_context: AuditContext) -> None:
        super().__init__(store, catalog, context)
        self._trail = trail
        self.audit_context = audit_context

    def acting_as(self, audit_context: AuditContext) -> AuditedGalleryService:
        """The same service (same indexes) acting for someone else."""
        clone = copy.copy(self)
        clone.audit_context = audit_context
        return clone

    def _op(self, action: str, inputs: Mapping[str, object],
            subjects: Sequence[str] = ()) -> AbstractContextManager[OperationRecord]:
        return self._trail.operation(self.audit_context, action, inputs, subjects)

    def _searching(self, action: str) -> None:
        # Searches through the API need a case and a purpose; at the command line they
        # are recorded when given (FRVS_CASE_REFERENCE / FRVS_PURPOSE), not required.
        if self.audit_context.actor.kind == "key":
            self.audit_context.require_case(action)

    # -- galleries ------------------------------------------------------------------

    def create(self, spec: GallerySpec) -> Gallery:
        inputs = {"gallery": spec.name, "kind": spec.kind.value, "purpose": spec.purpose,
                  "legal_basis": spec.legal_basis, "retention_days": spec.retention_days,
                  "pack": spec.pack}
        with self._op("gallery.create", inputs) as rec:
            gallery = super().create(spec)
            rec.result = {"gallery_id": gallery.id, "pack": gallery.pack}
        return gallery

    def update(self, name: str, changes: Mapping[str, object]) -> GalleryOverview:
        with self._op("gallery.update", {"gallery": name, "changes": dict(changes)}) as rec:
            before = self.get(name).as_dict()
            overview = super().update(name, changes)
            rec.result = {"before": {k: before[k] for k in changes if k in before}}
        return overview

    def delete(self, name: str) -> GalleryOverview:
        with self._op("gallery.delete", {"gallery": name}) as rec:
            overview = super().delete(name)
            rec.result = {"subjects": overview.subjects, "templates": overview.templates}
        return overview

    # -- enrolment ------------------------------------------------------------------

    def enrol(self, gallery_name: str, items: Sequence[EnrolItem],
              on_outcome: OutcomeCallback | None = None) -> EnrolReport:
        inputs = {"gallery": gallery_name, "images": len(items),
                  "subjects": len({i.subject for i in items})}
        with self._op("enrol", inputs) as rec:
            report = super().enrol(gallery_name, items, on_outcome)
            self._enrol_result(rec, gallery_name, report.outcomes)
        return report

    def enrol_images(self, gallery_name: str, spec: SubjectSpec,
                     images: Sequence[tuple[str, bytes]]) -> EnrolReport:
        """Enrol uploaded images (name, bytes) of one subject; no source path is kept,
        so a later ``reindex`` cannot re-embed them (it refuses them, and says so)."""
        digests = [hashlib.sha256(data).hexdigest() for _, data in images]
        inputs = {"gallery": gallery_name, "subject": spec.external_id, "images": len(images),
                  "image_sha256": digests}
        with self._op("enrol", inputs, [subject_ref(gallery_name, spec.external_id)]) as rec:
            gallery = self.get(gallery_name)
            outcomes = [self._enrol_upload(gallery, spec, name, data, digest)
                        for (name, data), digest in zip(images, digests, strict=True)]
            self._enrol_result(rec, gallery_name, outcomes)
        return EnrolReport(gallery.name, tuple(outcomes))

    def _enrol_upload(self, gallery: Gallery, spec: SubjectSpec, name: str, data: bytes,
                      digest: str) -> EnrolOutcome:
        space = self._ctx.analyser.packs.info(gallery.pack).space
        with self._store.unit() as uow:
            duplicate = uow.templates.find_duplicate(gallery.id, spec.external_id, space, digest)
        if duplicate is not None:
            return EnrolOutcome(name, spec.external_id, OutcomeStatus.DUPLICATE,
                                template_id=duplicate)
        try:
            image = decode_image(data, self._ctx.limits, name)
            outcome = self._enroller.store_face(gallery, spec, image, (digest, None))
        except FrvsError as exc:
            return EnrolOutcome(name, spec.external_id, OutcomeStatus.REFUSED, exc.message,
                                exc.code)
        # store_face names an upload by its digest; the caller knows it by its file name.
        return EnrolOutcome(name, outcome.subject, outcome.status, outcome.reason,
                            outcome.error_code, outcome.template_id)

    @staticmethod
    def _enrol_result(rec: OperationRecord, gallery: str,
                      outcomes: Sequence[EnrolOutcome]) -> None:
        rec.result = {
            status.value: sum(1 for o in outcomes if o.status is status)
            for status in OutcomeStatus
        } | {"template_ids": [o.template_id for o in outcomes if o.template_id is not None]}
        rec.subjects = [subject_ref(gallery, o.subject) for o in outcomes
                        if o.status is not OutcomeStatus.REFUSED][:_MAX_NAMED]

    # -- search ---------------------------------------------------------------------

    def identify(self, gallery_name: str, image: Path, top: int = 5) -> Identification:
        self._searching("identify")
        # Hash only what the search itself will accept to read (it enforces the limit).
        readable = image.is_file() and image.stat().st_size <= self._ctx.limits.max_bytes
        digest = hashlib.sha256(image.read_bytes()).hexdigest() if readable else None
        inputs = {"gallery": gallery_name, "probe_sha256": digest, "top": top}
        with self._op("identify", inputs) as rec:
            result = super().identify(gallery_name, image, top)
            rec.result = _identification_summary(result)
            rec.subjects = _matches(gallery_name, result)
        return result

    def identify_image(self, gallery_name: str, image: BGRImage, probe_sha256: str,
                       top: int = 5) -> Identification:
        """1:N search of an already decoded probe (an upload); ``probe_sha256`` is the
        digest of its bytes, for the audit trail."""
        self._searching("identify")
        inputs = {"gallery": gallery_name, "probe_sha256": probe_sha256, "top": top}
        with self._op("identify", inputs) as rec:
            result = self._searcher.identify(self.get(gallery_name), image, top)
            rec.result = _identification_summary(result)
            rec.subjects = _matches(gallery_name, result)
        return result

    def crossmatch(self, name_a: str, name_b: str | None = None,
                   threshold: float | None = None, top: int = 10) -> CrossMatch:
        self._searching("crossmatch")
        inputs = {"gallery_a": name_a, "gallery_b": name_b or name_a, "threshold": threshold,
                  "top": top}
        with self._op("crossmatch", inputs) as rec:
            result = super().crossmatch(name_a, name_b, threshold, top)
            rec.result = {"pairs": len(result.pairs), "threshold": result.threshold}
            rec.subjects = [ref for p in result.pairs[: _MAX_NAMED // 2] for ref in
                            (subject_ref(result.gallery_a, p.subject_a),
                             subject_ref(result.gallery_b, p.subject_b))]
        return result

    def calibrate(self, name: str, fpir: float, apply: bool = False,
                  on_progress: ProgressCallback | None = None) -> Calibration:
        with self._op("gallery.calibrate", {"gallery": name, "fpir": fpir,
                                            "apply": apply}) as rec:
            before = self.get(name)
            result = super().calibrate(name, fpir, apply, on_progress)
            rec.result = {"threshold": result.threshold, "probes": result.probes,
                          "applied": result.applied,
                          # as stored, so that an applied calibration can be undone
                          "previous_threshold": before.threshold,
                          "previous_fmr_target": before.fmr_target}
        return result

    # -- deletion and retention ---------------------------------------------------

    def delete_subject(self, gallery_name: str, external_id: str) -> DeletedSubject:
        ref = subject_ref(gallery_name, external_id)
        with self._op("subject.delete", {"gallery": gallery_name, "subject": external_id},
                      [ref]) as rec:
            deleted = super().delete_subject(gallery_name, external_id)
            rec.result = {"templates": deleted.templates, "crops": deleted.crops}
        return deleted

    def purge(self) -> list[DeletedSubject]:
        with self._op("purge", {}) as rec:
            deleted = super().purge()
            rec.result = {"subjects": len(deleted),
                          "templates": sum(d.templates for d in deleted)}
            rec.subjects = [subject_ref(d.gallery, d.subject) for d in deleted][:_MAX_NAMED]
        return deleted

    def reindex(self, gallery_name: str, pack: str,
                on_outcome: OutcomeCallback | None = None) -> ReindexReport:
        with self._op("reindex", {"gallery": gallery_name, "pack": pack}) as rec:
            report = super().reindex(gallery_name, pack, on_outcome)
            rec.result = {"switched": report.switched, "templates": len(report.outcomes)}
        return report


class AuditedFaceEngine(FaceEngine):
    """``FaceEngine`` whose 1:1 verifications are audited (detection is not biometric
    identification and is not)."""

    def __init__(self, packs: PackRegistry, options: EngineOptions, trail: AuditTrail,
                 audit_context: AuditContext) -> None:
        super().__init__(packs, options)
        self._trail = trail
        self.audit_context = audit_context

    def acting_as(self, audit_context: AuditContext) -> AuditedFaceEngine:
        clone = copy.copy(self)
        clone.audit_context = audit_context
        return clone

    def verify(self, images: tuple[BGRImage, BGRImage], names: tuple[str, str] = ("a", "b"),
               pack: str | None = None, threshold: float | None = None) -> Verification:
        inputs = {"pixels_sha256": [pixels_sha256(i) for i in images], "pack": pack,
                  "threshold": threshold}
        with self._trail.operation(self.audit_context, "verify", inputs) as rec:
            result = super().verify(images, names, pack, threshold)
            rec.result = {"score": round(result.score, 6), "threshold": result.threshold,
                          "same": result.same, "pack": result.pack}
        return result

