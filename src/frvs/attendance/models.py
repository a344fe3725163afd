"""Records of attendance: an entry or exit event of a subject."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from frvs.video.models import CameraRole


@dataclass(frozen=True, slots=True)
class AttendanceEvent:
    gallery: str
    subject: str
    camera: str
    direction: CameraRole
    at: datetime
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"gallery": self.gallery, "subject": self.subject, "camera": self.camera,
                "direction": self.direction.value, "at": self.at.isoformat(),
                "score": round(self.score, 4)}
