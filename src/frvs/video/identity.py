"""Identity per track, not per frame (Frigate's face processor, STYLE lesson 8).

Each track gets a budget of identity attempts; an attempt embeds one best shot and
scores it against the camera's galleries. Scores are fused per subject as a mean
weighted by face size and quality, so one large sharp face outweighs several tiny
ones. A gallery's subject is decided once the fused score passes the gallery's
threshold with enough attempts behind it, a clear lead over the runner-up (no decision
on a tie) and the top place in most attempts. Nothing is decided per frame; the state
is dropped when the track ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from frvs.core.errors import InvalidRecordError
from frvs.video.models import GalleryCandidate


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """How much evidence a decision needs.

    ``max_attempts``: embeddings per track; more gives small faces a chance but costs
    embedder time per person. ``min_attempts``: attempts before any decision; more
    resists a single lucky frame but alerts later. ``small_face_eye_px`` and
    ``min_attempts_small``: a track whose faces are all smaller than this needs more
    attempts, because small faces' scores are noisier. ``tie_margin``: the lead over
    the runner-up in the same gallery below which no one is decided.
    ``min_top_share``: the share of attempts in which the decided subject must rank
    first in its gallery.

    ``attempt_interval``: seconds of media time between two attempts of one track,
    whatever the sampling rate; shorter decides sooner, longer spends the budget over
    more of the track. ``give_up_margin``: after ``min_attempts`` attempts, a track whose
    best fused score in every gallery is further than this below the gallery's
    threshold is not embedded again (a stranger: most tracks of a crowd) unless a face
    ``retry_growth`` times larger (eye distance) than any tried so far turns up, as when
    someone walks towards the camera. A larger margin keeps trying longer on doubtful
    tracks (more embeddings per stranger); a smaller one risks giving up on a known
    face seen badly at first. The margin is in score units: 0.15 of cosine is far for
    SFace (threshold 0.363, strangers of the test clip fuse below 0.2) and never
    triggers for packs whose impostor scores sit near the threshold.
    """

    max_attempts: int = 10
    min_attempts: int = 2
    small_face_eye_px: float = 16.0
    min_attempts_small: int = 4
    tie_margin: float = 0.03
    min_top_share: float = 0.6
    attempt_interval: float = 0.1
    give_up_margin: float = 0.15
    retry_growth: float = 1.5

    def __post_init__(self) -> None:
        if not 1 <= self.min_attempts <= self.max_attempts:
            raise InvalidRecordError("need 1 <= min_attempts <= max_attempts")
        if not self.min_attempts <= self.min_attempts_small <= self.max_attempts:
            raise InvalidRecordError("need min_attempts <= min_attempts_small <= max_attempts")
        if not 0 < self.min_top_share <= 1:
            raise InvalidRecordError("min_top_share must be in (0, 1]")
        if self.attempt_interval < 0 or self.give_up_margin < 0 or self.retry_growth < 1:
            raise InvalidRecordError("need attempt_interval >= 0, give_up_margin >= 0 and "
                                     f"retry_growth >= 1, got {self.attempt_interval}, "
                                     f"{self.give_up_margin}, {self.retry_growth}")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One embedded shot's candidates, with the weight of that shot."""

    weight: float
    eye_px: float
    candidates: tuple[GalleryCandidate, ...]


@dataclass(frozen=True, slots=True)
class Fused:
    """A subject's weighted-mean score over a track's attempts."""

    gallery: str
    gallery_kind: str
    subject: str
    score: float
    threshold: float
    top_share: float

    def candidate(self) -> GalleryCandidate:
        return GalleryCandidate(self.gallery, self.gallery_kind, self.subject, self.score,
                         self.threshold)


class TrackIdentity:
    """The attempts and decisions of one track."""

    def __init__(self, policy: IdentityPolicy) -> None:
        self._policy = policy
        self._attempts: list[Attempt] = []
        self._decided: dict[str, Fused] = {}

    @property
    def attempts(self) -> int:
        return len(self._attempts)

    @property
    def budget_left(self) -> bool:
        return len(self._attempts) < self._policy.max_attempts

    def wants(self, eye_px: float) -> bool:
        """Whether a face with eyes ``eye_px`` apart is worth an attempt: budget left,
        and the track not given up on (or this face much larger than any tried)."""
        if not self.budget_left:
            return False
        if not self._attempts or not self.hopeless():
            return True
        tried = max(a.eye_px for a in self._attempts)
        return eye_px >= self._policy.retry_growth * tried

    def hopeless(self) -> bool:
        """After ``min_attempts``: no gallery has an undecided subject within
        ``give_up_margin`` of its threshold."""
        p = self._policy
        if len(self._attempts) < p.min_attempts:
            return False
        return not any(
            ranked[0].score >= ranked[0].threshold - p.give_up_margin
            for gallery, ranked in self.fused().items()
            if ranked and gallery not in self._decided)

    def add(self, weight: float, eye_px: float,
            candidates: Sequence[GalleryCandidate]) -> list[Fused]:
        """Record an attempt; return the galleries newly decided by it."""
        self._attempts.append(Attempt(weight, eye_px, tuple(candidates)))
        fresh: list[Fused] = []
        for gallery, ranked in self.fused().items():
            if gallery in self._decided or not ranked:
                continue
            if self._decides(ranked):
                self._decided[gallery] = ranked[0]
                fresh.append(ranked[0])
        return fresh

    def fused(self) -> dict[str, list[Fused]]:
        """Per gallery, its subjects by fused score, best first.

        A subject missing from an attempt's candidates scores 0 there: it ranked below
        the candidates returned, and counting it at 0 can only delay a decision.
        """
        total = sum(a.weight for a in self._attempts) or 1.0
        sums: dict[tuple[str, str], float] = {}
        tops: dict[tuple[str, str], int] = {}
        meta: dict[str, tuple[str, float]] = {}
        for attempt in self._attempts:
            best_in: dict[str, GalleryCandidate] = {}
            for c in attempt.candidates:
                key = (c.gallery, c.subject)
                sums[key] = sums.get(key, 0.0) + attempt.weight * c.score
                meta[c.gallery] = (c.gallery_kind, c.threshold)
                if c.gallery not in best_in or c.score > best_in[c.gallery].score:
                    best_in[c.gallery] = c
            for c in best_in.values():
                tops[(c.gallery, c.subject)] = tops.get((c.gallery, c.subject), 0) + 1
        n = max(1, len(self._attempts))
        out: dict[str, list[Fused]] = {}
        for (gallery, subject), weighted in sums.items():
            kind, threshold = meta[gallery]
            out.setdefault(gallery, []).append(Fused(
                gallery, kind, subject, weighted / total, threshold,
                tops.get((gallery, subject), 0) / n))
        for ranked in out.values():
            ranked.sort(key=lambda f: f.score, reverse=True)
        return out

    def _decides(self, ranked: list[Fused]) -> bool:
        p = self._policy
        best = ranked[0]
        small = max(a.eye_px for a in self._attempts) < p.small_face_eye_px
        needed = p.min_attempts_small if small else p.min_attempts
        runner_up = ranked[1].score if len(ranked) > 1 else float("-inf")
        return (len(self._attempts) >= needed
                and best.score >= best.threshold
                and best.score - runner_up >= p.tie_margin
                and best.top_share >= p.min_top_share)

    def best(self) -> Fused | None:
        """The highest fused candidate over all galleries, decided or not."""
        everyone = [r[0] for r in self.fused().values() if r]
        return max(everyone, key=lambda f: f.score) if everyone else None
