"""Per-group differentials: FMR and FNMR per evaluator-labelled group at one threshold.

Groups come only from the evaluator's data (a ``group`` column); FRVS never infers a
group from a face. The headline figure, as in NIST's demographic studies, is the ratio of
the worst group's error rate to the best group's. An impostor pair belongs to a group
when the evaluator labels it so (same-group impostors are the hard, informative case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from frvs.evaluation.metrics import Decisions


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One group's outcomes at the operating threshold."""

    group: str
    genuine: int
    impostor: int
    decisions: Decisions

    def as_dict(self) -> dict[str, object]:
        return {"group": self.group, "genuine_pairs": self.genuine,
                "impostor_pairs": self.impostor, "fmr": self.decisions.fmr,
                "fnmr": self.decisions.fnmr, "accuracy": self.decisions.accuracy}


@dataclass(frozen=True, slots=True)
class Ratio:
    """Worst-to-best ratio of one error rate; undefined when the best group has no errors."""

    worst_group: str
    best_group: str
    worst: float
    best: float

    @property
    def value(self) -> float | None:
        return self.worst / self.best if self.best > 0 else None

    def as_dict(self) -> dict[str, object]:
        note = None if self.value is not None else (
            "undefined: the best group had no errors at this threshold" if self.worst > 0
            else "no errors in any group")
        return {"ratio": self.value, "worst_group": self.worst_group, "worst": self.worst,
                "best_group": self.best_group, "best": self.best, "note": note}


@dataclass(frozen=True, slots=True)
class GroupDifferentials:
    """Figures per group and the worst/best ratios of FMR and FNMR."""

    threshold: float
    groups: tuple[GroupFigures, ...]
    fmr_ratio: Ratio | None
    fnmr_ratio: Ratio | None
    unlabelled_pairs: int

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "groups": [g.as_dict() for g in self.groups],
            "fmr_worst_to_best": self.fmr_ratio.as_dict() if self.fmr_ratio else None,
            "fnmr_worst_to_best": self.fnmr_ratio.as_dict() if self.fnmr_ratio else None,
            "unlabelled_pairs": self.unlabelled_pairs,
            "labels": "from the evaluator's data; FRVS never infers groups from faces",
        }


def _ratio(figures: Sequence[GroupFigures], rate: str, needs: str) -> Ratio | None:
    usable = [f for f in figures if getattr(f, needs) > 0]
    if len(usable) < 2:
        return None
    ranked = sorted(usable, key=lambda f: getattr(f.decisions, rate))
    best, worst = ranked[0], ranked[-1]
    return Ratio(worst.group, best.group, getattr(worst.decisions, rate),
                 getattr(best.decisions, rate))


def group_differentials(
    scores: Sequence[float], same: Sequence[bool], groups: Sequence[str | None], threshold: float
) -> GroupDifferentials:
    """Per-group FMR/FNMR at ``threshold`` over pairs labelled with a group."""
    s = np.asarray(scores, dtype=np.float64)
    genuine = np.asarray(same, dtype=bool)
    labels = np.asarray([g if g is not None else "" for g in groups], dtype=object)
    figures = []
    for name in sorted({g for g in groups if g is not None}):
        mask = labels == name
        g_scores, i_scores = s[mask & genuine], s[mask & ~genuine]
        tm, fm = int((g_scores >= threshold).sum()), int((i_scores >= threshold).sum())
        counts = Decisions(threshold, tm, g_scores.size - tm, i_scores.size - fm, fm)
        figures.append(GroupFigures(name, int(g_scores.size), int(i_scores.size), counts))
    return GroupDifferentials(threshold, tuple(figures), _ratio(figures, "fmr", "impostor"),
                              _ratio(figures, "fnmr", "genuine"),
                              int(sum(g is None for g in groups)))

