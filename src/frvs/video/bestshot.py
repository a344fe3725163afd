"""Best shots: which faces of a track are worth keeping and embedding.

A track offers one face per analysed frame. We keep the few best by quality (for the
sighting's evidence) and, between two identity attempts, the best face seen since the
last one (the next to embed). Only aligned 112x112 crops are kept, never frames, so a
track's memory is bounded whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass

from frvs.core.errors import InvalidRecordError
from frvs.models.quality import FaceQuality
from frvs.video.models import Shot


@dataclass(frozen=True, slots=True)
class ShotPolicy:
    """Which faces may be embedded, and how much each counts.

    ``min_inter_eye_px``: below this the aligned crop is mostly upsampling blur and
    scores turn to noise; lower finds smaller (more distant) people but lets noise into
    the score history. ``min_detector_score``: faces the detector doubts are not
    embedded. ``full_weight_eye_px``: the eye distance at which a face counts fully in
    the fused score; smaller faces count in proportion. ``keep``: best shots kept per
    track as evidence. ``reembed_gain``: when a track ends, its best shot is embedded
    for the sighting only if its overall quality beats the best shot already embedded
    for an identity attempt by more than this; otherwise that embedded shot is the
    sighting's best shot. Most tracks end with their best face a little sharper than
    the ones their attempts embedded: 8 of 26 embeddings on the benchmark's 720p clip
    went to those end-of-track shots, and this margin spares half of them (26 -> 22,
    about a tenth of a camera's CPU; benchmarks/video.py). 0 embeds any better shot
    again, as before.
    """

    min_inter_eye_px: float = 9.0
    min_detector_score: float = 0.7
    full_weight_eye_px: float = 40.0
    keep: int = 3
    reembed_gain: float = 0.15

    def __post_init__(self) -> None:
        if self.keep < 1 or self.full_weight_eye_px <= 0 or self.reembed_gain < 0:
            raise InvalidRecordError("shot policy needs keep >= 1, full_weight_eye_px > 0 "
                                     f"and reembed_gain >= 0, got {self.keep}, "
                                     f"{self.full_weight_eye_px}, {self.reembed_gain}")

    def eligible(self, quality: FaceQuality) -> bool:
        """May this face be embedded for an identity attempt?"""
        return (quality.inter_eye_px >= self.min_inter_eye_px
                and quality.detector_score >= self.min_detector_score)

    def weight(self, quality: FaceQuality) -> float:
        """How much an attempt on this face counts: its size, then its quality.

        Size dominates because it bounds what the embedder can see at all; the quality
        term (pose, sharpness, exposure) lifts good faces but never zeroes a small one,
        whose overall quality is near zero by construction.
        """
        size = min(1.0, quality.inter_eye_px / self.full_weight_eye_px)
        return max(1e-3, size * (0.25 + 0.75 * quality.overall))


def rank_key(shot: Shot) -> tuple[float, float]:
    """Best shot first: overall quality, then face size."""
    return (shot.quality.overall, shot.quality.inter_eye_px)


class BestShots:
    """The best shots of one track, and the best candidate for the next attempt."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._best: list[Shot] = []
        self._pending: Shot | None = None
        self._embedded: Shot | None = None

    def offer(self, shot: Shot, eligible: bool) -> None:
        """Consider ``shot`` as evidence and, if ``eligible``, for the next attempt."""
        self._best.append(shot)
        self._best.sort(key=rank_key, reverse=True)
        del self._best[self._keep:]
        if eligible and (self._pending is None or rank_key(shot) > rank_key(self._pending)):
            self._pending = shot

    def take_pending(self) -> Shot | None:
        """The shot to embed next (cleared: the next attempt needs a newer face)."""
        shot, self._pending = self._pending, None
        return shot

    @property
    def pending(self) -> Shot | None:
        """The shot the next attempt would embed, left in place."""
        return self._pending

    def replace(self, shot: Shot) -> None:
        """Swap in the embedded version of a kept shot (same frame and track), and
        remember it if it is the best embedded shot so far."""
        self._best = [shot if (s.frame_index == shot.frame_index) else s for s in self._best]
        if shot.template is not None and (
                self._embedded is None or rank_key(shot) > rank_key(self._embedded)):
            self._embedded = shot

    def for_sighting(self, reembed_gain: float) -> Shot | None:
        """The shot a sighting keeps: the best shot, unless a shot already embedded is
        within ``reembed_gain`` of its overall quality (then that one, template and all,
        so the sighting needs no embedding of its own)."""
        best, embedded = self.best, self._embedded
        if best is None or best.template is not None or embedded is None:
            return best
        if best.quality.overall - embedded.quality.overall > reembed_gain:
            return best
        return embedded

    @property
    def best(self) -> Shot | None:
        return self._best[0] if self._best else None

    @property
    def shots(self) -> tuple[Shot, ...]:
        return tuple(self._best)
