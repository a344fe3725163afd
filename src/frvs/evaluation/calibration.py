"""Threshold calibration: the threshold that reaches a target FMR on the evaluator's data
(``frvs.config.thresholds_file`` writes it into the YAML configuration).

The threshold is the lowest operating point whose FMR on the data is at or below the
target (``metrics.fnmr_at_fmr``): decisions at it reproduce the measured FMR exactly.
A target the data cannot show (``impostors * target < 1``) is refused, not guessed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from frvs.core.errors import InvalidInputError
from frvs.evaluation import metrics


@dataclass(frozen=True, slots=True)
class FmrCalibration:
    """A threshold for a target FMR, what it achieved, and the data it came from."""

    pack: str
    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float
    genuine: int
    impostor: int
    dataset: str
    dataset_sha256: str
    when: datetime

    @property
    def source(self) -> str:
        """The sentence evaluation reports quote for this threshold."""
        return (f"frvs calibrate at FMR {self.target_fmr:g} on {self.dataset} (sha256 "
                f"{self.dataset_sha256[:12]}, {self.genuine} genuine / {self.impostor} "
                f"impostor pairs) on {self.when:%Y-%m-%d}: FMR {self.fmr:.4g}, "
                f"FNMR {self.fnmr:.4g}")

    def as_dict(self) -> dict[str, object]:
        return {"pack": self.pack, "target_fmr": self.target_fmr, "threshold": self.threshold,
                "fmr": self.fmr, "fnmr": self.fnmr, "genuine_pairs": self.genuine,
                "impostor_pairs": self.impostor, "dataset": self.dataset,
                "dataset_sha256": self.dataset_sha256, "source": self.source}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def calibrate(scores: metrics.ScoreSets, target_fmr: float, pack: str,
              dataset: Path) -> FmrCalibration:
    """The threshold for ``target_fmr`` on ``scores``; refuses an unreachable target."""
    point = metrics.fnmr_at_fmr(metrics.roc(scores), target_fmr, scores.impostor.size)
    if not point.reachable or point.threshold is None:
        raise InvalidInputError(f"cannot calibrate: {point.note}")
    if point.fmr is None or point.fnmr is None:  # pragma: no cover - set when reachable
        raise InvalidInputError(f"cannot calibrate: {point.note}")
    return FmrCalibration(pack, target_fmr, point.threshold, point.fmr, point.fnmr,
                       int(scores.genuine.size), int(scores.impostor.size), str(dataset),
                       file_sha256(dataset), datetime.now(UTC))
