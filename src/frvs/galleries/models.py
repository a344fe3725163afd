"""Records of the galleries domain: galleries, subjects, templates and search results.

Every record validates itself where it is made. There is deliberately no field for
race, ethnicity, skin colour, religion, political opinion, health, sexual orientation
or emotion, and ``check_metadata`` (``galleries/metadata.py``) refuses free metadata keys
that name them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from frvs.core.errors import InvalidInputError
from frvs.core.galleries import Gallery, GalleryKind, NewTemplate, StoredTemplate, Subject
from frvs.core.geometry import Box
from frvs.galleries.metadata import check_metadata

# Gallery, GalleryKind, Subject, NewTemplate and StoredTemplate are defined in
# ``frvs.core.galleries`` (the store's repositories make them) and named from here too.
__all__ = ["GALLERY_UPDATABLE", "Candidate", "CrossMatch", "CrossMatchPair", "DeletedSubject",
           "EnrolOutcome", "EnrolReport", "FaceIdentification", "Gallery", "GalleryKind",
           "GallerySpec", "Identification", "NewTemplate", "OutcomeStatus", "ReindexReport",
           "StoredTemplate", "Subject", "SubjectSpec", "check_external_id"]


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_EXTERNAL_ID = re.compile(r"^[^\x00-\x1f/\\]{1,200}$")

def check_external_id(external_id: str) -> str:
    """The subject id as given, refusing empty ids, control characters and slashes."""
    if not _EXTERNAL_ID.match(external_id) or not external_id.strip():
        raise InvalidInputError(
            f"subject id {external_id!r} must be 1-200 characters without slashes or control "
            "characters"
        )
    return external_id


@dataclass(frozen=True, slots=True)
class GallerySpec:
    """What ``gallery create`` asks for. NAME alone makes a general gallery that keeps
    subjects until deleted, stores no crops and decides at the pack's default threshold."""

    name: str
    kind: GalleryKind = GalleryKind.GENERAL
    purpose: str | None = None
    legal_basis: str | None = None
    retention_days: int | None = None
    threshold: float | None = None
    fmr_target: float | None = None
    keep_crops: bool = False
    pack: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidInputError(
                f"gallery name {self.name!r} must be 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if self.kind is GalleryKind.WATCH_LIST and not (
            (self.purpose or "").strip() and (self.legal_basis or "").strip()
        ):
            raise InvalidInputError("a watch list requires --purpose and --legal-basis")
        if self.retention_days is not None and self.retention_days < 1:
            raise InvalidInputError(f"retention must be >= 1 day, got {self.retention_days}")
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"threshold must be in [-1, 1], got {self.threshold}")
        if self.fmr_target is not None and not 0.0 < self.fmr_target < 1.0:
            raise InvalidInputError(f"FMR target must be in (0, 1), got {self.fmr_target}")


    @classmethod
    def of(cls, gallery: Gallery) -> GallerySpec:
        """The settings ``gallery`` was made with, as changed since."""
        return cls(gallery.name, gallery.kind, gallery.purpose, gallery.legal_basis,
                   gallery.retention_days, gallery.threshold, gallery.fmr_target,
                   gallery.keep_crops, gallery.pack)


GALLERY_UPDATABLE = frozenset({"purpose", "legal_basis", "retention_days", "threshold",
                               "fmr_target", "keep_crops"})


@dataclass(frozen=True, slots=True)
class SubjectSpec:
    """The subject an enrolment is for; metadata is checked when the spec is made."""

    external_id: str
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_external_id(self.external_id)
        object.__setattr__(self, "metadata", check_metadata(self.metadata))


class OutcomeStatus(StrEnum):
    ENROLLED = "enrolled"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class EnrolOutcome:
    """What happened to one image: enrolled, skipped as a duplicate, or refused and why."""

    image: str
    subject: str
    status: OutcomeStatus
    reason: str | None = None
    error_code: str | None = None
    template_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"image": self.image, "subject": self.subject,
                                   "status": self.status.value}
        if self.reason:
            data["reason"] = self.reason
            data["error"] = self.error_code
        return data


@dataclass(frozen=True, slots=True)
class EnrolReport:
    """The outcomes of one enrolment run, with counts per status."""

    gallery: str
    outcomes: tuple[EnrolOutcome, ...]

    def count(self, status: OutcomeStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    def as_dict(self) -> dict[str, object]:
        return {
            "gallery": self.gallery,
            "enrolled": self.count(OutcomeStatus.ENROLLED),
            "duplicates": self.count(OutcomeStatus.DUPLICATE),
            "refused": self.count(OutcomeStatus.REFUSED),
            "subjects": sorted({o.subject for o in self.outcomes
                                if o.status is not OutcomeStatus.REFUSED}),
            "images": [o.as_dict() for o in self.outcomes],
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A subject and its best template score against one probe face."""

    subject: str
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"subject": self.subject, "score": round(self.score, 6)}


@dataclass(frozen=True, slots=True)
class FaceIdentification:
    """One probe face: where it is, its best candidates, and the decision."""

    box: Box
    quality: float
    candidates: tuple[Candidate, ...]
    match: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "box": self.box.as_list(),
            "quality": round(self.quality, 4),
            "candidates": [c.as_dict() for c in self.candidates],
            "match": self.match,
        }


@dataclass(frozen=True, slots=True)
class Identification:
    """1:N search of every face of a probe image in one gallery at its threshold."""

    gallery: str
    pack: str
    threshold: float
    faces: tuple[FaceIdentification, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "gallery": self.gallery,
            "pack": self.pack,
            "threshold": self.threshold,
            "faces": [f.as_dict() for f in self.faces],
        }


@dataclass(frozen=True, slots=True)
class CrossMatchPair:
    """Two subjects whose best template pair scores at or above the threshold."""

    subject_a: str
    subject_b: str
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"a": self.subject_a, "b": self.subject_b, "score": round(self.score, 6)}


@dataclass(frozen=True, slots=True)
class CrossMatch:
    """N:M cross-match of two galleries (or one against itself for duplicates)."""

    gallery_a: str
    gallery_b: str
    threshold: float
    pairs: tuple[CrossMatchPair, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "gallery_a": self.gallery_a,
            "gallery_b": self.gallery_b,
            "threshold": self.threshold,
            "pairs": [p.as_dict() for p in self.pairs],
        }


@dataclass(frozen=True, slots=True)
class DeletedSubject:
    """A subject removed by deletion or purge, with what went with it."""

    gallery: str
    subject: str
    templates: int
    crops: int

    def as_dict(self) -> dict[str, object]:
        return {"gallery": self.gallery, "subject": self.subject,
                "templates": self.templates, "crops": self.crops}


@dataclass(frozen=True, slots=True)
class ReindexReport:
    """A gallery re-embedded with another pack."""

    gallery: str
    old_pack: str
    new_pack: str
    outcomes: tuple[EnrolOutcome, ...]
    switched: bool

    def as_dict(self) -> dict[str, object]:
        refused = [o.as_dict() for o in self.outcomes if o.status is OutcomeStatus.REFUSED]
        return {"gallery": self.gallery, "old_pack": self.old_pack, "new_pack": self.new_pack,
                "reindexed": len(self.outcomes) - len(refused), "refused": refused,
                "switched": self.switched}
