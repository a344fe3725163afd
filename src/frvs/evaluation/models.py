"""Result records of evaluation runs; ``as_dict`` gives the JSON the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from frvs.evaluation.groups import GroupDifferentials
from frvs.evaluation.metrics import (
    Decisions,
    Eer,
    Interval,
    OpenSetResult,
    OperatingPoint,
    Roc,
    Scores,
    ScoreSets,
)


@dataclass(frozen=True, slots=True)
class Failure:
    """An image with no usable face, and the reason (counted as errors, never dropped)."""

    image: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"image": self.image, "reason": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class OperatingThreshold:
    """The threshold decisions used and where it came from (calibration set or source)."""

    value: float
    source: str


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Which pack ran on which data, how long it took."""

    pack: str
    pack_version: str
    dataset: str
    dataset_kind: str
    images: int
    seconds: float
    workers: int


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """Every 1:1 figure of one pack on one pairs file."""

    run: RunInfo
    threshold: OperatingThreshold
    scores: ScoreSets
    pair_scores: Scores
    decisions: Decisions
    roc: Roc
    auc: float
    eer: Eer
    at_fmr: tuple[OperatingPoint, ...]
    intervals: dict[str, Interval]
    failures: tuple[Failure, ...]
    fta_pairs: tuple[int, int]
    groups: GroupDifferentials | None = None

    @property
    def pairs(self) -> int:
        return int(self.pair_scores.size)

    def as_dict(self) -> dict[str, object]:
        return {
            "pack": self.run.pack,
            "pack_version": self.run.pack_version,
            "dataset": self.run.dataset,
            "pairs": self.pairs,
            "genuine_pairs": int(self.scores.genuine.size),
            "impostor_pairs": int(self.scores.impostor.size),
            "images": self.run.images,
            "threshold": self.threshold.value,
            "threshold_source": self.threshold.source,
            "accuracy": self.decisions.accuracy,
            "decisions": self.decisions.as_dict(),
            "auc": self.auc,
            "eer": self.eer.rate,
            "eer_threshold": self.eer.threshold,
            "fnmr_at_fmr": {f"{p.target_fmr:g}": p.as_dict() for p in self.at_fmr},
            "failure_to_acquire": len(self.failures),
            "failure_to_acquire_pairs": {"genuine": self.fta_pairs[0],
                                         "impostor": self.fta_pairs[1]},
            "failures": [f.as_dict() for f in self.failures],
            "failure_rule": "a pair with an image without a usable face is a non-match: an "
                            "error when genuine, a correct rejection when impostor",
            "confidence_intervals_95": {k: v.as_list() for k, v in self.intervals.items()},
            "groups": self.groups.as_dict() if self.groups else None,
            "seconds": round(self.run.seconds, 2),
            "workers": self.run.workers,
        }


@dataclass(frozen=True, slots=True)
class Search:
    """One labelled person in one probe image, searched against the gallery."""

    probe: str
    identity: str
    mated: bool
    rank: float
    mate_score: float | None
    top_identity: str | None
    top_score: float | None

    def as_dict(self) -> dict[str, object]:
        return {"probe": self.probe, "identity": self.identity, "mated": self.mated,
                "rank": None if not np.isfinite(self.rank) else int(self.rank),
                "mate_score": self.mate_score, "top_identity": self.top_identity,
                "top_score": self.top_score}


@dataclass(frozen=True, slots=True)
class IdentificationResult:
    """CMC, open-set figures, failures to enrol/acquire of one pack on one image tree."""

    run: RunInfo
    threshold: OperatingThreshold
    layout: str
    enrolled: tuple[str, ...]
    gallery_templates: int
    searches: tuple[Search, ...]
    cmc: Scores
    open_set: OpenSetResult
    failed_to_enrol: tuple[str, ...]
    failures: tuple[Failure, ...]
    excluded: tuple[Failure, ...] = field(default=())

    def rank(self, k: int) -> float | None:
        return float(self.cmc[k - 1]) if self.cmc.size >= k else None

    def as_dict(self) -> dict[str, object]:
        mated = [s for s in self.searches if s.mated]
        return {
            "pack": self.run.pack,
            "pack_version": self.run.pack_version,
            "dataset": self.run.dataset,
            "layout": self.layout,
            "enrolled": list(self.enrolled),
            "gallery_templates": self.gallery_templates,
            "mated_searches": len(mated),
            "non_mated_searches": len(self.searches) - len(mated),
            "rank_1": self.rank(1),
            "rank_5": self.rank(5),
            "rank_10": self.rank(10),
            "cmc": [float(v) for v in self.cmc],
            "threshold": self.threshold.value,
            "threshold_source": self.threshold.source,
            "open_set": self.open_set.as_dict(),
            "failure_to_enrol": list(self.failed_to_enrol),
            "failure_to_acquire": len(self.failures),
            "failures": [f.as_dict() for f in self.failures],
            "excluded": [f.as_dict() for f in self.excluded],
            "searches": [s.as_dict() for s in self.searches],
            "seconds": round(self.run.seconds, 2),
        }
