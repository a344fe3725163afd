"""``frvs doctor``: does the store agree with its audit trail?

The atomic audit makes two disagreements impossible by construction, and this is where
an auditor checks that they did not happen anyway (an older version, a restored backup, a
hand-edited database):

- a template with no ``enrol`` (or ``reindex.template``) entry naming it;
- an ``ok`` enrolment entry whose template is gone with no later entry that deleted it
  (``subject.delete``, ``subject.erase``, ``purge``, ``gallery.delete``, a ``reindex``
  that switched the gallery);

and it lists enrolment crops on disk that no template refers to (a crash between a
deletion's commit and its file removal leaves them; enrolment removes its own crop when
its transaction does not commit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from frvs.core.caller import subject_ref
from frvs.oversight.tables import AuditEntryRow
from frvs.storage.schema import GalleryRow, SubjectRow, TemplateRow
from frvs.storage.store import Store

_ENROLS = ("enrol", "reindex.template")
_SUBJECT_DELETIONS = ("subject.delete", "subject.erase", "purge")
_GALLERY_DELETIONS = ("gallery.delete", "reindex")
_GALLERY_CROP = re.compile(r"^\d+/")
_LISTED = 100
"""At most this many of each finding are listed (all are counted)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One disagreement: what kind, how many, and the first ones by name."""

    kind: str
    count: int
    examples: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "count": self.count, "examples": list(self.examples)}


@dataclass(frozen=True, slots=True)
class DoctorReport:
    templates: int
    enrolment_entries: int
    findings: tuple[Finding, ...]
    orphan_crops: Finding

    @property
    def ok(self) -> bool:
        """The store and the trail agree (orphan crop files are housekeeping, not a
        disagreement: nothing refers to them)."""
        return not self.findings

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "templates": self.templates,
                "enrolment_entries": self.enrolment_entries,
                "findings": [f.as_dict() for f in self.findings],
                "orphan_crops": self.orphan_crops.as_dict()}


@dataclass
class _Trail:
    """What the audit trail says about templates, read once, oldest first."""

    audited: set[int] = field(default_factory=set)
    enrolled_at: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    subject_cleared: dict[str, int] = field(default_factory=dict)
    gallery_cleared: dict[str, int] = field(default_factory=dict)
    entries: int = 0

    def read(self, row: AuditEntryRow) -> None:
        result: dict[str, Any] = row.result or {}
        inputs: dict[str, Any] = row.inputs or {}
        if row.action in _ENROLS and row.outcome == "ok":
            self.entries += 1
            ids = result.get("template_ids") or (
                [result["template_id"]] if result.get("template_id") is not None else [])
            gallery = str(inputs.get("gallery", ""))
            subject = str(inputs.get("subject", ""))
            for template_id in ids:
                self.audited.add(int(template_id))
                if subject:  # entries of one image name their subject
                    self.enrolled_at[int(template_id)] = (row.seq, gallery, subject)
        elif row.action in _SUBJECT_DELETIONS and row.outcome == "ok":
            for ref in row.subjects or ():
                self.subject_cleared[ref] = row.seq
        elif (row.action in _GALLERY_DELETIONS and row.outcome == "ok"
              and result.get("switched", True)):  # a reindex deletes only once switched
            self.gallery_cleared[str(inputs.get("gallery", ""))] = row.seq


def _finding(kind: str, items: list[str]) -> Finding:
    return Finding(kind, len(items), tuple(items[:_LISTED]))


def examine(store: Store) -> DoctorReport:
    """Compare every template with the trail's enrolment entries, and the media folder
    with the templates."""
    store.open()
    trail = _Trail()
    with store.database.session() as session:
        rows = session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.action.in_(
                (*_ENROLS, *_SUBJECT_DELETIONS, *_GALLERY_DELETIONS)))
            .order_by(AuditEntryRow.seq).execution_options(yield_per=1000))
        for row in rows:
            trail.read(row)
        stored = session.execute(
            select(TemplateRow.id, GalleryRow.name, SubjectRow.external_id, TemplateRow.crop_path)
            .join(SubjectRow, TemplateRow.subject_id == SubjectRow.id)
            .join(GalleryRow, TemplateRow.gallery_id == GalleryRow.id)).all()
    present = {row[0] for row in stored}
    unaudited = [f"template {tid} of {subject_ref(g, s)}" for tid, g, s, _ in stored
                 if tid not in trail.audited]
    vanished = []
    for template_id, (seq, gallery, subject) in sorted(trail.enrolled_at.items()):
        if template_id in present:
            continue
        cleared = max(trail.subject_cleared.get(subject_ref(gallery, subject), 0),
                      trail.gallery_cleared.get(gallery, 0))
        if cleared <= seq:
            vanished.append(f"template {template_id} of {subject_ref(gallery, subject)} "
                            f"(entry {seq})")
    findings = tuple(f for f in (
        _finding("template_without_entry", unaudited),
        _finding("entry_without_template", vanished)) if f.count)
    referenced = {str(crop) for *_, crop in stored if crop}
    orphans: list[str] = []
    root = store.media.root
    if root.is_dir():
        orphans = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg")
                         if _GALLERY_CROP.match(p.relative_to(root).as_posix())
                         and p.relative_to(root).as_posix() not in referenced)
    return DoctorReport(len(stored), trail.entries, findings,
                        _finding("orphan_crop", orphans))
