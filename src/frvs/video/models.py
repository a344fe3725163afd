"""Records of the video pipeline: Frame -> Shot -> GalleryCandidate ->
TrackDecision / Sighting, the camera's health (CameraStatus), and what the store holds
of cameras (CameraSpec) and sightings (StoredSighting).

Each record validates itself where it is made.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from frvs.core.detections import FaceDetection
from frvs.core.errors import InvalidInputError, InvalidRecordError
from frvs.core.templates import Template
from frvs.imaging.decode import BGRImage
from frvs.models.quality import FaceQuality
from frvs.video.source_policy import describe


class CameraRole(StrEnum):
    """What a camera's sightings mean for attendance."""

    GENERAL = "general"
    ENTRY = "entry"
    EXIT = "exit"


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded picture of a camera.

    ``timestamp`` is media time in seconds from the start of the source (monotonic per
    source); ``captured_at`` is the wall-clock time the frame stands for (for files:
    the source's start time plus ``timestamp``).
    """

    camera: str
    index: int
    timestamp: float
    captured_at: datetime
    image: BGRImage

    def __post_init__(self) -> None:
        shape: tuple[int, ...] = tuple(getattr(self.image, "shape", ()))
        if len(shape) != 3 or shape[2] != 3:
            raise InvalidRecordError(f"frame image must be (H, W, 3) BGR, got shape {shape}")
        if self.captured_at.tzinfo is None:
            raise InvalidRecordError("frame captured_at must be timezone-aware")


@dataclass(frozen=True, slots=True, eq=False)
class Shot:
    """One face of a track kept as a candidate best shot: the face with a margin around
    it (``patch``, the evidence crop and what is embedded later), the detection in the
    patch's coordinates, its quality and where it was seen. ``template`` is set once
    the shot has been embedded."""

    track_id: int
    frame_index: int
    timestamp: float
    captured_at: datetime
    detection: FaceDetection
    quality: FaceQuality
    patch: BGRImage
    patch_detection: FaceDetection
    weight: float
    template: Template | None = None

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise InvalidRecordError(f"shot weight must be > 0, got {self.weight}")


@dataclass(frozen=True, slots=True)
class GalleryCandidate:
    """A gallery subject's score against one probe template."""

    gallery: str
    gallery_kind: str
    subject: str
    score: float
    threshold: float

    @property
    def passes(self) -> bool:
        return self.score >= self.threshold

    def as_dict(self) -> dict[str, object]:
        return {"gallery": self.gallery, "subject": self.subject,
                "score": round(self.score, 4), "threshold": self.threshold}


@dataclass(frozen=True, slots=True)
class TrackDecision:
    """A track identified as ``subject`` of ``gallery``: the fused score over
    ``attempts`` embedded shots passed the gallery's threshold without a tie."""

    camera: str
    track_id: int
    gallery: str
    gallery_kind: str
    subject: str
    score: float
    threshold: float
    attempts: int
    timestamp: float
    captured_at: datetime
    best_shot: Shot

    def as_dict(self) -> dict[str, object]:
        return {
            "camera": self.camera, "track": self.track_id, "gallery": self.gallery,
            "subject": self.subject, "score": round(self.score, 4),
            "threshold": self.threshold, "attempts": self.attempts,
            "frame_time": round(self.timestamp, 3), "at": self.captured_at.isoformat(),
            "quality": round(self.best_shot.quality.overall, 4),
        }


@dataclass(frozen=True, slots=True)
class Sighting:
    """A whole track: when it was seen, its best shot, and its best candidate (if any).

    ``matched`` is the decision (a gallery subject) when the track was identified;
    ``best`` is the highest fused candidate whether or not it passed.
    """

    camera: str
    track_id: int
    first_seen: datetime
    last_seen: datetime
    first_time: float
    last_time: float
    frames: int
    best_shot: Shot
    best: GalleryCandidate | None
    matched: TrackDecision | None
    attempts: int

    def __post_init__(self) -> None:
        if self.last_seen < self.first_seen:
            raise InvalidRecordError("sighting last_seen is before first_seen")

    @property
    def template(self) -> Template | None:
        return self.best_shot.template

    def as_dict(self) -> dict[str, object]:
        return {
            "camera": self.camera, "track": self.track_id,
            "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat(),
            "frames": self.frames, "attempts": self.attempts,
            "quality": round(self.best_shot.quality.overall, 4),
            "subject": self.matched.subject if self.matched else None,
            "gallery": self.matched.gallery if self.matched else None,
            "score": round(self.matched.score, 4) if self.matched else None,
            "best": self.best.as_dict() if self.best else None,
        }


class Health(StrEnum):
    STARTING = "starting"
    ONLINE = "online"
    OFFLINE = "offline"
    ENDED = "ended"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Gap:
    """A span during which a camera delivered no frames (failure or stall)."""

    start: datetime
    end: datetime | None
    reason: str

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()

    def as_dict(self) -> dict[str, object]:
        return {"start": self.start.isoformat(),
                "end": self.end.isoformat() if self.end else None,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A camera's health at one moment, as ``frvs camera status`` shows it."""

    camera: str
    health: Health
    input_fps: float
    processed_fps: float
    frames_read: int
    frames_processed: int
    dropped: int
    lag_seconds: float
    reconnects: int
    last_error: str | None
    gaps: tuple[Gap, ...] = field(default_factory=tuple)
    skipped: int = 0
    """Frames read but not due under the camera's sampling rate (never analysed, by
    design; not drops)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "camera": self.camera, "health": self.health.value,
            "input_fps": round(self.input_fps, 2), "processed_fps": round(self.processed_fps, 2),
            "frames_read": self.frames_read, "frames_processed": self.frames_processed,
            "skipped": self.skipped, "dropped": self.dropped,
            "lag_seconds": round(self.lag_seconds, 3),
            "reconnects": self.reconnects, "last_error": self.last_error,
            "gaps": [g.as_dict() for g in self.gaps],
        }


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def is_camera_name(name: str) -> bool:
    """Whether ``name`` can name a camera (the whole of it: ``re.match`` with ``$`` would
    let a trailing newline through)."""
    return _NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """A camera: where it is, what it means, where its frames come from, how often they
    are analysed, which galleries it is matched against and how long its sightings live.
    """

    name: str
    source_url: str
    galleries: tuple[str, ...] = ()
    role: CameraRole = CameraRole.GENERAL
    location: str | None = None
    sample_fps: float | None = 5.0
    roi: tuple[float, float, float, float] | None = None
    retention_days: int = 7
    keep_crops: bool = False
    enabled: bool = True

    def __post_init__(self) -> None:
        if not is_camera_name(self.name):
            raise InvalidInputError(f"camera name {self.name!r} must be 1-100 letters, digits, "
                                    "'.', '_' or '-'")
        if self.sample_fps is not None and not 0 < self.sample_fps <= 120:
            raise InvalidInputError(f"sampling rate must be in (0, 120], got {self.sample_fps}")
        if self.retention_days < 1:
            raise InvalidInputError("sighting retention must be >= 1 day")
        if self.roi is not None and (
            len(self.roi) != 4 or not all(math.isfinite(v) for v in self.roi)
            or min(self.roi[:2]) < 0 or min(self.roi[2:]) <= 0
        ):
            raise InvalidInputError("region of interest is x, y, width, height in pixels: "
                                    f"finite, x and y >= 0, width and height > 0; got {self.roi}")

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "source": describe(self.source_url),
                "galleries": list(self.galleries), "role": self.role.value,
                "location": self.location, "sample_fps": self.sample_fps,
                "roi": list(self.roi) if self.roi else None,
                "retention_days": self.retention_days, "keep_crops": self.keep_crops,
                "enabled": self.enabled}


@dataclass(frozen=True, slots=True)
class StoredSighting:
    id: int
    camera: str
    track_id: int
    first_seen: datetime
    last_seen: datetime
    frames: int
    quality: float
    gallery: str | None
    subject: str | None
    score: float | None
    best_subject: str | None
    best_score: float | None
    crop_path: str | None
    expires_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "camera": self.camera, "track": self.track_id,
                "first_seen": self.first_seen.isoformat(),
                "last_seen": self.last_seen.isoformat(), "frames": self.frames,
                "quality": round(self.quality, 4), "gallery": self.gallery,
                "subject": self.subject,
                "score": None if self.score is None else round(self.score, 4),
                "best_subject": self.best_subject,
                "best_score": None if self.best_score is None else round(self.best_score, 4),
                "crop": self.crop_path, "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True, slots=True)
class ExpiredSightings:
    """Sightings a retention run deleted: how many, and their crop files (removed once
    the deletion has committed)."""

    count: int
    crops: tuple[str, ...]
