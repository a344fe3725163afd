"""Records of alerts and their reviews."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from frvs.core.errors import InvalidInputError


class AlertStatus(StrEnum):
    NEW = "new"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class Verdict(StrEnum):
    CONFIRM = "confirm"
    DISMISS = "dismiss"


@dataclass(frozen=True, slots=True)
class Review:
    """One person's verdict: ``reviewer`` is how the key was labelled when it reviewed,
    ``holder`` the person it belongs to (what the two-person rule counts)."""

    reviewer: str
    verdict: Verdict
    note: str | None
    at: datetime
    holder: str | None = None

    def __post_init__(self) -> None:
        if not self.reviewer.strip():
            raise InvalidInputError("a review needs a reviewer")

    def as_dict(self) -> dict[str, object]:
        return {"reviewer": self.reviewer, "holder": self.holder,
                "verdict": self.verdict.value, "note": self.note, "at": self.at.isoformat()}


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Per-gallery alert settings: the two-person rule and the repeat window."""

    gallery: str
    two_person: bool
    suppress_seconds: int

    def as_dict(self) -> dict[str, object]:
        return {"gallery": self.gallery, "two_person": self.two_person,
                "suppress_seconds": self.suppress_seconds}


@dataclass(frozen=True, slots=True)
class Alert:
    """A watch-list hit waiting for (or after) human review; evidence included."""

    id: int
    camera: str
    track_id: int
    gallery: str
    subject: str
    score: float
    threshold: float
    attempts: int
    at: datetime
    frame_time: float
    quality: float
    crop_path: str | None
    status: AlertStatus
    two_person: bool
    reviews: tuple[Review, ...] = ()

    def seen_by(self, person: str | None) -> Alert:
        """The alert as a reviewer may see it before it is decided: only their own review,
        so that each reviewer decides independently (the others' verdicts and notes show
        once the alert is decided, and to auditors in the audit trail)."""
        if self.status is not AlertStatus.NEW:
            return self
        return replace(self, reviews=tuple(r for r in self.reviews
                                           if person is not None and r.holder == person))

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "camera": self.camera, "track": self.track_id,
            "gallery": self.gallery, "subject": self.subject, "score": round(self.score, 4),
            "threshold": self.threshold, "attempts": self.attempts, "at": self.at.isoformat(),
            "frame_time": round(self.frame_time, 3), "quality": round(self.quality, 4),
            "crop": self.crop_path, "status": self.status.value,
            "two_person": self.two_person, "reviews": [r.as_dict() for r in self.reviews],
        }
