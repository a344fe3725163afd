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
from frvs.video.models import Candidate


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
    """

    max_attempts: int = 10
    min_attempts: int = 2
    small_face_eye_px: float = 16.0
    min_attempts_small: int = 4
    tie_margin: float = 0.03
    min_top_share: float = 0.6
    attempt_interval: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.min_attempts <= self.max_attempts:
            raise InvalidRecordError("need 1 <= min_attempts <= max_attempts")
        if not self.min_attempts <= self.min_attempts_small <= self.max_attempts:
            raise InvalidRecordError("need min_attempts <= min_attempts_small <= max_attempts")
        if not 0 < self.min_top_share <= 1:
            raise InvalidRecordError("min_top_share must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One embedded shot's candidates, with the weight of that shot."""

    weight: float
    eye_px: float
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class Fused:
    """A subject's weighted-mean score over a track's attempts."""

    gallery: str
    gallery_kind: str
    subject: str
    score: float
    threshold: float
    top_share: float

    def candidate(self) -> Candidate:
        return Candidate(self.gallery, self.gallery_kind, self.subject, self.score,
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

    @property
    def decided(self) -> dict[str, Fused]:
        return dict(self._decided)

    def add(self, weight: float, eye_px: float, candidates: Sequence[Candidate]) -> list[Fused]:
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
            best_in: dict[str, Candidate] = {}
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
