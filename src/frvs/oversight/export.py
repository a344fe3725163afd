"""Data-subject rights: export everything held about a subject as a ZIP, and erase a
subject everywhere, leaving only the audit entries (which record the erasure itself).

Galleries, templates and crops are read here; other concepts that hold records about a
subject (sightings that matched them, alerts, attendance) plug in as ``SubjectRecords``
sources, so this module never needs to know their tables.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from frvs.core.caller import subject_ref
from frvs.core.errors import NotFoundError
from frvs.galleries.models import Subject
from frvs.galleries.service import GalleryService
from frvs.oversight.audit import AuditQuery, AuditTrail
from frvs.oversight.models import AuditContext, Erased
from frvs.storage.store import Store, UnitOfWork

_AUDIT_PAGE = 1000


class SubjectRecords(Protocol):
    """Records about a subject kept by another concept (sightings, alerts, attendance)."""

    @property
    def kind(self) -> str:
        """File stem in the export and key in erasure reports: ``sightings``, ..."""
        ...

    def export(self, gallery: str, external_id: str) -> list[dict[str, Any]]:
        """Every record naming the subject, JSON-ready (no images inline)."""
        ...

    def erase(self, uow: UnitOfWork, gallery: str, external_id: str) -> Erased:
        """Remove the subject from these records in ``uow``'s transaction (delete
        them, or drop the match reference when the record is also about others)."""
        ...


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed, and the audit entry that records it."""

    gallery: str
    subject: str
    templates: int
    crops: int
    records: dict[str, int]
    audit_entry: int

    def as_dict(self) -> dict[str, object]:
        return {"gallery": self.gallery, "subject": self.subject, "templates": self.templates,
                "crops": self.crops, "records": dict(self.records),
                "audit_entry": self.audit_entry}


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode("utf-8")


class SubjectRights:
    """Export and erasure of one subject across every concept that holds them."""

    def __init__(self, store: Store, galleries: GalleryService, trail: AuditTrail,
                 sources: Sequence[SubjectRecords] = ()) -> None:
        self._store = store
        self._galleries = galleries
        self._trail = trail
        self._sources = list(sources)

    def add_source(self, source: SubjectRecords) -> None:
        """Register another concept's records (done once, by the composition root)."""
        self._sources.append(source)

    def _subject(self, gallery: str, external_id: str) -> tuple[dict[str, object], Subject]:
        with self._store.unit() as uow:
            found = uow.galleries.get(gallery)
            subject = uow.subjects.find(found.id, external_id)
            if subject is None:
                raise NotFoundError(f"no subject {external_id!r} in gallery {gallery!r}")
            return found.as_dict(), subject

    def export(self, context: AuditContext, gallery: str, external_id: str) -> bytes:
        """A ZIP of the subject, their templates' metadata and crops, every source's
        records about them, and the audit entries naming them (audited)."""
        ref = subject_ref(gallery, external_id)
        with self._trail.operation(context, "subject.export",
                                   {"gallery": gallery, "subject": external_id}, [ref]) as rec:
            gallery_info, subject = self._subject(gallery, external_id)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("subject.json", _json({"gallery": gallery_info,
                                                        "subject": subject.as_dict()}))
                crops = self._templates(archive, subject)
                counts = {"templates": subject.template_count, "crops": crops}
                for source in self._sources:
                    records = source.export(gallery, external_id)
                    archive.writestr(f"{source.kind}.json", _json(records))
                    counts[source.kind] = len(records)
                audit = self._audit_entries(ref)
                archive.writestr("audit.json", _json(audit))
                counts["audit_entries"] = len(audit)
            rec.result = counts
        return buffer.getvalue()

    def _templates(self, archive: zipfile.ZipFile, subject: Subject) -> int:
        with self._store.unit() as uow:
            templates = uow.templates.of_subject(subject.id)
        described, crops = [], 0
        for t in templates:
            crop_name = None
            if t.crop_path and self._store.media.exists(t.crop_path):
                crop_name = f"crops/{t.id}.jpg"
                archive.write(self._store.media.root / t.crop_path, crop_name)
                crops += 1
            space = t.template.space
            described.append({"id": t.id, "pack": space.pack, "pack_version": space.version,
                              "dimension": space.dimension, "metric": space.metric.value,
                              "quality": t.quality, "image_sha256": t.image_sha256,
                              "source": t.source, "crop": crop_name})
        archive.writestr("templates.json", _json(described))
        return crops

    def _audit_entries(self, ref: str) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        before: int | None = None
        while True:
            page = self._trail.page(AuditQuery(before, _AUDIT_PAGE, subject=ref))
            entries.extend(e.as_dict() for e in page)
            if len(page) < _AUDIT_PAGE:
                return entries[::-1]
            before = page[-1].seq

    def erase(self, context: AuditContext, gallery: str, external_id: str) -> Erasure:
        """Remove the subject from every source, the store, the index and the crops.

        One transaction: every source's records, the subject with its templates and the
        ``subject.erase`` entry naming what went commit together, or nothing does; files
        are removed after the commit.
        """
        ref = subject_ref(gallery, external_id)
        records: dict[str, int] = {}
        files: list[str] = []

        def sources(uow: UnitOfWork) -> dict[str, int]:
            for source in self._sources:
                erased = source.erase(uow, gallery, external_id)
                records[source.kind] = erased.count
                files.extend(erased.files)
            return records

        deleted = self._galleries.delete_subject(context, gallery, external_id,
                                                 action="subject.erase", also=sources)
        self._store.media.remove(list(files))
        last = self._trail.page(AuditQuery(limit=1, subject=ref, action="subject.erase"))
        return Erasure(gallery, external_id, deleted.templates, deleted.crops, records,
                       last[0].seq if last else 0)
