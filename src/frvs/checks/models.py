"""Records of an identity check: the challenge, the live capture, the policy that
judges it and the result a verifier and the customer see."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from frvs.core.errors import InvalidInputError, InvalidRecordError
from frvs.imaging.decode import BGRImage
from frvs.models.quality import FaceQuality


class Move(StrEnum):
    """A head movement, in the customer's own left and right: what they are told
    ("turn your head to your left"), not what the screen shows."""

    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"


def parse_challenge(text: str) -> tuple[Move, ...]:
    """``"left,right"`` -> (LEFT, RIGHT); a clear error for anything else. One to four
    moves, no move twice in a row (it could not be told apart from holding still)."""
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    known = {m.value for m in Move}
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise InvalidInputError(f"challenge: unknown move(s) {', '.join(map(repr, unknown))}; "
                                "moves are left, right, up and down, comma-separated")
    if not 1 <= len(parts) <= 4:
        raise InvalidInputError(f"challenge: 1 to 4 moves, got {len(parts)}")
    if any(a == b for a, b in itertools.pairwise(parts)):
        raise InvalidInputError("challenge: the same move twice in a row cannot be told apart "
                                "from one; alternate them (left,right)")
    return tuple(Move(p) for p in parts)


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    """A random challenge the server issued to one verifier, to be answered once before
    ``expires_at``."""

    id: str
    moves: tuple[Move, ...]
    issued_at: datetime
    expires_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "moves": [m.value for m in self.moves],
                "issued_at": self.issued_at.isoformat(),
                "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One frame of the live capture: its pixels, its time in seconds from the first
    frame, and a name for messages."""

    image: BGRImage
    time_s: float
    name: str


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    """How checks are judged and what they keep (``checks`` in the configuration)."""

    target_fmr: float = 0.001
    require_calibrated: bool = False
    min_frames: int = 5
    max_frames: int = 60
    time_limit_s: float = 10.0
    turn_deg: float = 25.0
    nod_deg: float = 15.0
    still_motion: float = 0.02
    same_face_min: float = 0.3
    ghost_max_ratio: float = 0.6
    mirrored_capture: bool = False
    moves: tuple[Move, ...] = (Move.LEFT, Move.RIGHT, Move.UP, Move.DOWN)
    challenge_length: int = 2
    require_issued_challenge: bool = True
    challenge_slack_s: float = 30.0
    keep_images: bool = False
    image_retention_days: int = 30
    purpose: str = "identity check at a counter"
    contact: str = "the data protection contact of the organisation that ran this check"

    def __post_init__(self) -> None:
        if not 2 <= self.min_frames <= self.max_frames:
            raise InvalidRecordError(
                f"checks: need 2 <= min_frames <= max_frames, got {self.min_frames}, "
                f"{self.max_frames}")
        if len(set(self.moves)) < 2:
            raise InvalidRecordError("checks.moves: at least two different moves, so that a "
                                     "challenge can alternate them")


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The threshold a match is decided at, the FMR it was declared for, and where it
    comes from."""

    pack: str
    target_fmr: float
    threshold: float
    calibrated: bool
    source: str

    def as_dict(self) -> dict[str, object]:
        return {"pack": self.pack, "target_fmr": self.target_fmr,
                "threshold": self.threshold, "calibrated": self.calibrated,
                "source": self.source}


@dataclass(frozen=True, slots=True)
class FramePose:
    """What liveness reads of one frame: the face's head pose in the customer's own
    directions (yaw > 0: turned to their left; pitch > 0: looking down), and where
    the face sits, for telling a moving flat picture from a turning head."""

    index: int
    time_s: float
    yaw: float
    pitch: float
    roll: float
    centre: tuple[float, float]
    eye_px: float
    landmarks: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Liveness:
    """The challenge-response result: passed only when every move happened in order
    within the time limit and every frame shows one and the same face."""

    passed: bool
    reasons: tuple[str, ...]
    challenge: tuple[Move, ...]
    moves_seen: tuple[Move, ...]
    frames: int
    frames_with_face: int
    yaw_range: tuple[float, float]
    pitch_range: tuple[float, float]
    elapsed_s: float | None
    frame_agreement: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "challenge": [m.value for m in self.challenge],
            "moves_seen": [m.value for m in self.moves_seen],
            "frames": self.frames,
            "frames_with_face": self.frames_with_face,
            "yaw_range_deg": [round(v, 1) for v in self.yaw_range],
            "pitch_range_deg": [round(v, 1) for v in self.pitch_range],
            "elapsed_s": None if self.elapsed_s is None else round(self.elapsed_s, 2),
            "frame_agreement": (None if self.frame_agreement is None
                                else round(self.frame_agreement, 4)),
        }


@dataclass(frozen=True, slots=True)
class DocumentPortrait:
    """The face of the document the check compares: the main portrait, and why."""

    faces_found: int
    quality: FaceQuality
    box: list[float]
    note: str

    def as_dict(self) -> dict[str, object]:
        return {"faces_found": self.faces_found, "box": self.box, "chosen": self.note,
                "quality": self.quality.as_dict()}


@dataclass(frozen=True, slots=True)
class Kept:
    """What the check left behind: always the digests and the decision; the images only
    when the deployment keeps them, until ``images_until``."""

    images: bool
    images_until: datetime | None
    media: str | None = None

    def as_dict(self) -> dict[str, object]:
        stored = ["SHA-256 digests of the document image and of the live capture",
                  "the decision (match, score, threshold, liveness result and reasons)"]
        if self.images:
            stored.append("the document image and the live frames")
        return {"images": self.images,
                "images_until": self.images_until.isoformat() if self.images_until else None,
                "stored": stored,
                "not_stored": [] if self.images else ["images", "face templates"]}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One identity check as the verifier and the customer's receipt see it."""

    id: str
    at: datetime
    verifier: str
    purpose: str
    match: bool
    score: float
    operating_point: OperatingPoint
    liveness: Liveness
    document: DocumentPortrait | None
    live_quality: FaceQuality | None
    document_sha256: str
    capture_sha256: str
    kept: Kept
    contact: str
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """The customer is verified: the face matches the document and is live."""
        return self.match and self.liveness.passed

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "verifier": self.verifier,
            "purpose": self.purpose,
            "passed": self.passed,
            "decision": "verified" if self.passed else "not verified",
            "match": self.match,
            "score": round(self.score, 6),
            "threshold": self.operating_point.threshold,
            "operating_point": self.operating_point.as_dict(),
            "liveness": self.liveness.as_dict(),
            "quality": {
                "document": None if self.document is None else self.document.as_dict(),
                "live": None if self.live_quality is None else self.live_quality.as_dict(),
            },
            "digests": {"document_sha256": self.document_sha256,
                        "capture_sha256": self.capture_sha256},
            "kept": self.kept.as_dict(),
            "contact": self.contact,
            "notes": list(self.notes),
        }
