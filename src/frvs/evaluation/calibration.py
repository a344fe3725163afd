"""Threshold calibration: the threshold that reaches a target FMR on the evaluator's data,
and writing it into the YAML configuration for one pack.

The threshold is the lowest operating point whose FMR on the data is at or below the
target (``metrics.fnmr_at_fmr``): decisions at it reproduce the measured FMR exactly.
A target the data cannot show (``impostors * target < 1``) is refused, not guessed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from frvs.config.settings import load_settings
from frvs.core.errors import ConfigurationError, InvalidInputError
from frvs.evaluation import metrics


@dataclass(frozen=True, slots=True)
class Calibration:
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
              dataset: Path) -> Calibration:
    """The threshold for ``target_fmr`` on ``scores``; refuses an unreachable target."""
    point = metrics.fnmr_at_fmr(metrics.roc(scores), target_fmr, scores.impostor.size)
    if not point.reachable or point.threshold is None:
        raise InvalidInputError(f"cannot calibrate: {point.note}")
    if point.fmr is None or point.fnmr is None:  # pragma: no cover - set when reachable
        raise InvalidInputError(f"cannot calibrate: {point.note}")
    return Calibration(pack, target_fmr, point.threshold, point.fmr, point.fnmr,
                       int(scores.genuine.size), int(scores.impostor.size), str(dataset),
                       file_sha256(dataset), datetime.now(UTC))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read configuration {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{path}: the configuration must be a mapping")
    return loaded


def write_calibration(config: Path, calibration: Calibration, as_default: bool = False) -> None:
    """Put the threshold under ``thresholds.<pack>.by_fmr`` (and ``default`` if asked) in
    ``config``, creating it if needed. The result is validated before it replaces the
    file, atomically; other keys are kept (YAML comments are not)."""
    document = _read_yaml(config)
    thresholds = document.setdefault("thresholds", {})
    if not isinstance(thresholds, dict):
        raise ConfigurationError(f"{config}: 'thresholds' must be a mapping")
    entry = thresholds.setdefault(calibration.pack, {})
    entry.setdefault("by_fmr", {})[calibration.target_fmr] = calibration.threshold
    if as_default:
        entry["default"] = calibration.threshold
    entry["source"] = calibration.source
    config.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".frvs-", suffix=".yaml", dir=config.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(document, f, sort_keys=False, allow_unicode=True)
        load_settings(Path(tmp))  # refuse to write a configuration FRVS cannot load
        os.replace(tmp, config)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
