"""Records of the feature database that every layer shares: a gallery, a subject
enrolled in it, and a template as stored or about to be. The store's repositories make
and take them (``frvs.storage.repositories``); the galleries' use cases, which also
define what may be asked for (``frvs.galleries.models``: ``GallerySpec``,
``SubjectSpec``), build on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from frvs.core.geometry import Box
from frvs.core.templates import Template


class GalleryKind(StrEnum):
    """What a gallery is for; a watch list needs a stated purpose and legal basis."""

    WATCH_LIST = "watch_list"
    ATTENDANCE = "attendance"
    VERIFICATION = "verification"
    GENERAL = "general"

    @classmethod
    def _missing_(cls, value: object) -> GalleryKind | None:
        """Accept the spellings people type: 'watchlist', 'Watch-List', 'watch list'."""
        if isinstance(value, str):
            folded = value.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
            for kind in cls:
                if kind.value.replace("_", "") == folded:
                    return kind
        return None


@dataclass(frozen=True, slots=True)
class Gallery:
    """A stored gallery. ``pack`` names the model pack its templates are made with."""

    id: int
    name: str
    kind: GalleryKind
    purpose: str | None
    legal_basis: str | None
    retention_days: int | None
    threshold: float | None
    fmr_target: float | None
    keep_crops: bool
    pack: str
    created_at: datetime
    revision: int = 0

    def expiry_for(self, created_at: datetime) -> datetime | None:
        """When a subject enrolled at ``created_at`` falls out of retention."""
        if self.retention_days is None:
            return None
        return created_at + timedelta(days=self.retention_days)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "retention_days": self.retention_days,
            "threshold": self.threshold,
            "fmr_target": self.fmr_target,
            "keep_crops": self.keep_crops,
            "pack": self.pack,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Subject:
    """A person enrolled in a gallery, known by the caller's ``external_id``."""

    id: int
    gallery_id: int
    external_id: str
    display_name: str | None
    metadata: Mapping[str, str]
    created_at: datetime
    expires_at: datetime | None
    template_count: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "subject": self.external_id,
            "name": self.display_name,
            "metadata": dict(self.metadata),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "templates": self.template_count,
        }


@dataclass(frozen=True, slots=True)
class NewTemplate:
    """A template about to be stored: vector, quality, and where it came from."""

    template: Template
    quality: float
    image_sha256: str
    source: str | None
    box: Box
    crop_path: str | None = None


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    """A template as the store holds it."""

    id: int
    subject_id: int
    template: Template
    quality: float
    image_sha256: str
    source: str | None
    crop_path: str | None
