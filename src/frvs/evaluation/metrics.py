"""Error-rate metrics of biometric testing (ISO/IEC 19795-1, NIST FRTE), in pure NumPy.

Conventions every function here shares:

- A score is a similarity: higher means more alike. A comparison *matches* at threshold
  ``t`` when ``score >= t``.
- A comparison whose template could not be made (failure to acquire) has score
  ``-inf``: it never matches, at any threshold. So it counts as an error for a genuine
  pair (a false non-match) and as a correct rejection for an impostor pair. FNMR here
  therefore includes failures to acquire (ISO/IEC 19795-1 calls this the generalised
  false reject rate); the count is also reported on its own.
- Ties: a threshold is a score value, so every comparison with the same score is decided
  the same way. Operating points exist only at the distinct finite scores (plus ``+inf``,
  where nothing matches); no point ever splits a tie.
- FNMR at a target FMR uses the lowest operating threshold whose FMR is at or below the
  target (no interpolation, so the reported FMR is one actually reached). The target is
  *reachable* only when ``impostors * target >= 1``: with fewer impostor comparisons than
  ``1 / target`` a single false match already overshoots it, and "FMR = 0" is not evidence
  of an FMR of ``target``. Unreachable targets are reported as such, never as numbers.
- EER: FMR falls and FNMR rises as the threshold rises. Between the two adjacent
  operating points where ``FMR - FNMR`` changes sign, both rates are interpolated
  linearly and the EER is where the lines cross (threshold interpolated the same way).
  When the rates are equal over a range of thresholds (separable scores: both 0), the
  highest threshold of the range is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from frvs.core.errors import InvalidInputError

Scores = npt.NDArray[np.float64]

DEFAULT_FMR_TARGETS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)


def as_scores(values: Sequence[float] | npt.ArrayLike, name: str) -> Scores:
    """A 1-D float64 array of scores; NaN is refused (use ``-inf`` for "no template")."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(array).any():
        raise InvalidInputError(f"{name}: scores contain NaN; use -inf for a missing template")
    if np.isposinf(array).any():
        raise InvalidInputError(f"{name}: scores contain +inf")
    return array


@dataclass(frozen=True, slots=True)
class ScoreSets:
    """Genuine (same person) and impostor (different people) comparison scores."""

    genuine: Scores
    impostor: Scores

    def __post_init__(self) -> None:
        if self.genuine.size == 0 or self.impostor.size == 0:
            raise InvalidInputError(
                f"need genuine and impostor scores, got {self.genuine.size} genuine and "
                f"{self.impostor.size} impostor"
            )

    @classmethod
    def of(cls, genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> ScoreSets:
        return cls(as_scores(genuine, "genuine"), as_scores(impostor, "impostor"))


@dataclass(frozen=True, slots=True)
class Roc:
    """Operating points, threshold descending: ``fmr`` falls to 0 and ``fnmr`` rises to 1
    as the threshold rises. The first point is ``+inf`` (nothing matches)."""

    thresholds: Scores
    fmr: Scores
    fnmr: Scores

    @property
    def tmr(self) -> Scores:
        """True match rate, ``1 - FNMR`` (the ROC's y axis)."""
        return 1.0 - self.fnmr


def _rate_at_or_above(sorted_scores: Scores, thresholds: Scores) -> Scores:
    """Share of ``sorted_scores`` (ascending) that are ``>= t`` for each threshold."""
    below = np.searchsorted(sorted_scores, thresholds, side="left")
    return (sorted_scores.size - below) / sorted_scores.size


def roc(scores: ScoreSets) -> Roc:
    """FMR and FNMR at ``+inf`` and at every distinct finite score, threshold descending."""
    g = np.sort(scores.genuine)
    i = np.sort(scores.impostor)
    both = np.concatenate([g, i])
    distinct = np.unique(both[np.isfinite(both)])[::-1]
    thresholds = np.concatenate([[np.inf], distinct])
    fmr = _rate_at_or_above(i, thresholds)
    fnmr = 1.0 - _rate_at_or_above(g, thresholds)
    return Roc(thresholds, fmr, fnmr)


def auc(scores: ScoreSets) -> float:
    """Area under the ROC: P(genuine > impostor) + 0.5 P(genuine == impostor).

    This Mann-Whitney form equals the trapezoid area under the ROC closed at (1, 1); a
    tie (including two ``-inf`` failures) counts one half.
    """
    g = np.sort(scores.genuine)
    i = np.sort(scores.impostor)
    below = np.searchsorted(i, g, side="left")
    at_or_below = np.searchsorted(i, g, side="right")
    wins = below.sum() + 0.5 * (at_or_below - below).sum()
    return float(wins / (g.size * i.size))


@dataclass(frozen=True, slots=True)
class Eer:
    """Equal error rate and the (interpolated) threshold where FMR = FNMR."""

    rate: float
    threshold: float


def eer(curve: Roc) -> Eer:
    """The EER by linear interpolation between the operating points that bracket it."""
    diff = curve.fmr - curve.fnmr  # <= 0 at +inf, grows as the threshold falls
    exact = np.flatnonzero(diff == 0)
    if exact.size:
        k = int(exact[0])
        return Eer(float(curve.fmr[k]), float(curve.thresholds[k]))
    crossing = np.flatnonzero(diff > 0)
    if crossing.size == 0:
        # Even accepting every finite score, FNMR exceeds FMR (many failures to acquire).
        k = diff.size - 1
        return Eer(float(max(curve.fmr[k], curve.fnmr[k])), float(curve.thresholds[k]))
    b = int(crossing[0])
    a = b - 1
    alpha = -diff[a] / (diff[b] - diff[a])
    rate = curve.fmr[a] + alpha * (curve.fmr[b] - curve.fmr[a])
    ta, tb = curve.thresholds[a], curve.thresholds[b]
    threshold = tb if not np.isfinite(ta) else ta + alpha * (tb - ta)
    return Eer(float(rate), float(threshold))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """FNMR at a target FMR, or why the target cannot be reached with this data."""

    target_fmr: float
    reachable: bool
    threshold: float | None
    fmr: float | None
    fnmr: float | None
    note: str

    def as_dict(self) -> dict[str, object]:
        return {
            "target_fmr": self.target_fmr,
            "reachable": self.reachable,
            "threshold": self.threshold,
            "fmr": self.fmr,
            "fnmr": self.fnmr,
            "note": self.note,
        }


def reachable(target: float, impostors: int) -> bool:
    """Whether ``impostors`` comparisons can show an FMR of ``target``: ``n * target >= 1``."""
    return impostors * target >= 1.0


def comparisons_needed(target: float) -> int:
    """The fewest comparisons that can show a rate of ``target`` (capped at 1e18, so a
    target like 5e-324 gets an answer rather than an overflow)."""
    return 10**18 if target <= 1e-18 else int(np.ceil(1.0 / target))


def fnmr_at_fmr(curve: Roc, target: float, impostors: int) -> OperatingPoint:
    """FNMR at the lowest threshold whose FMR is at or below ``target``."""
    if not 0.0 < target < 1.0:
        raise InvalidInputError(f"target FMR must be in (0, 1), got {target}")
    if not reachable(target, impostors):
        needed = comparisons_needed(target)
        return OperatingPoint(
            target, False, None, None, None,
            f"not reachable with {impostors} impostor comparisons: FMR {target:g} needs at "
            f"least {needed} (one false match would already be FMR {1 / impostors:.3g})",
        )
    ok = np.flatnonzero(curve.fmr <= target)
    k = int(ok[-1])  # thresholds descend, so the last qualifying point is the lowest one
    return OperatingPoint(
        target, True, float(curve.thresholds[k]), float(curve.fmr[k]), float(curve.fnmr[k]),
        f"lowest threshold with FMR <= {target:g} over {impostors} impostor comparisons",
    )


@dataclass(frozen=True, slots=True)
class Decisions:
    """Counts of the four outcomes at one threshold; failures to acquire are non-matches."""

    threshold: float
    true_match: int
    false_non_match: int
    true_non_match: int
    false_match: int

    @property
    def total(self) -> int:
        return self.true_match + self.false_non_match + self.true_non_match + self.false_match

    @property
    def accuracy(self) -> float:
        return (self.true_match + self.true_non_match) / self.total

    @property
    def fmr(self) -> float:
        impostors = self.true_non_match + self.false_match
        return self.false_match / impostors if impostors else 0.0

    @property
    def fnmr(self) -> float:
        genuine = self.true_match + self.false_non_match
        return self.false_non_match / genuine if genuine else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "true_match": self.true_match,
            "false_non_match": self.false_non_match,
            "true_non_match": self.true_non_match,
            "false_match": self.false_match,
            "accuracy": self.accuracy,
            "fmr": self.fmr,
            "fnmr": self.fnmr,
        }


def decisions(scores: ScoreSets, threshold: float) -> Decisions:
    """Outcomes at ``threshold`` (match when ``score >= threshold``)."""
    tm = int((scores.genuine >= threshold).sum())
    fm = int((scores.impostor >= threshold).sum())
    return Decisions(
        threshold, tm, scores.genuine.size - tm, scores.impostor.size - fm, fm
    )


def operating_points(
    scores: ScoreSets, targets: Sequence[float] = DEFAULT_FMR_TARGETS
) -> list[OperatingPoint]:
    """FNMR at each target FMR (see ``fnmr_at_fmr``)."""
    curve = roc(scores)
    return [fnmr_at_fmr(curve, t, scores.impostor.size) for t in targets]


# --- bootstrap -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """A percentile bootstrap confidence interval."""

    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True, slots=True)
class BootstrapOptions:
    """Resamples, confidence level and seed; the same seed gives the same intervals."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


def bootstrap(
    scores: ScoreSets,
    threshold: float,
    targets: Sequence[float] = DEFAULT_FMR_TARGETS,
    options: BootstrapOptions | None = None,
) -> dict[str, Interval]:
    """Percentile intervals for accuracy, AUC, EER and each reachable FNMR@FMR.

    Genuine and impostor scores are resampled separately (stratified), keeping their
    counts. Comparisons that share an image or a person are not independent, so these
    intervals are narrower than the truth on data with few people.
    """
    opts = options or BootstrapOptions()
    rng = np.random.default_rng(opts.seed)
    live = [t for t in targets if reachable(t, scores.impostor.size)]
    names = ["accuracy", "auc", "eer", *(f"fnmr_at_fmr_{t:g}" for t in live)]
    samples = np.empty((opts.resamples, len(names)))
    g, i = scores.genuine, scores.impostor
    for r in range(opts.resamples):
        s = ScoreSets(rng.choice(g, g.size), rng.choice(i, i.size))
        curve = roc(s)
        fnmrs = [fnmr_at_fmr(curve, t, i.size).fnmr for t in live]
        samples[r] = [decisions(s, threshold).accuracy, auc(s), eer(curve).rate, *fnmrs]
    tail = (1.0 - opts.confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    return {n: Interval(float(lo), float(hi)) for n, lo, hi in zip(names, low, high, strict=True)}


# --- identification ----------------------------------------------------------------------


def mated_rank(identity_scores: npt.ArrayLike, mate: int) -> int:
    """1-based rank of identity ``mate`` among per-identity scores (best template each).

    Ties are broken against the mate: every other identity scoring at least as high
    ranks before it, so a tie never flatters the system.
    """
    s = np.asarray(identity_scores, dtype=np.float64)
    others = np.delete(s, mate)
    return 1 + int((others >= s[mate]).sum())


def cmc(ranks: Sequence[float], max_rank: int) -> Scores:
    """Cumulative match characteristic: share of mated searches with rank <= k, k = 1..max.

    A search whose mate could not be ranked (no face in the probe) has rank ``inf`` and
    counts as a miss at every rank.
    """
    r = np.asarray(ranks, dtype=np.float64)
    if r.size == 0:
        raise InvalidInputError("CMC needs at least one mated search")
    ks = np.arange(1, max_rank + 1, dtype=np.float64)
    return np.asarray((r[None, :] <= ks[:, None]).mean(axis=1), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class OpenSetResult:
    """FNIR at a threshold and at target FPIRs (rank-1 candidate lists, NIST style)."""

    mated: int
    non_mated: int
    threshold: float
    fnir: float
    fpir: float | None
    at_fpir: tuple[OperatingPoint, ...]
    note: str

    def as_dict(self) -> dict[str, object]:
        return {
            "mated_searches": self.mated,
            "non_mated_searches": self.non_mated,
            "threshold": self.threshold,
            "fnir": self.fnir,
            "fpir": self.fpir,
            "fnir_at_fpir": [
                p.as_dict() | {"target_fpir": p.target_fmr, "fnir": p.fnmr, "fpir": p.fmr}
                for p in self.at_fpir
            ],
            "note": self.note,
        }


def open_set(
    mated_top: Sequence[float],
    non_mated_top: Sequence[float],
    threshold: float,
    targets: Sequence[float] = DEFAULT_FMR_TARGETS,
) -> OpenSetResult:
    """FNIR/FPIR from each mated search's mate score when it ranked first (``-inf``
    otherwise) and each non-mated search's top score.

    FNIR(t) = share of mated searches whose mate is not at rank 1 with score >= t;
    FPIR(t) = share of non-mated searches whose top candidate scores >= t. These are
    FNMR and FMR of those two score sets, so the same tie and reachability rules apply.
    """
    mated = as_scores(mated_top, "mated")
    non_mated = as_scores(non_mated_top, "non-mated")
    fnir = float((mated < threshold).mean()) if mated.size else 0.0
    if non_mated.size == 0 or mated.size == 0:
        missing = "non-mated searches (probes of people not enrolled)" if mated.size else (
            "mated searches")
        return OpenSetResult(mated.size, non_mated.size, threshold, fnir, None, (),
                             f"FPIR and FNIR@FPIR need {missing}; the data has none")
    sets = ScoreSets(mated, non_mated)
    return OpenSetResult(
        mated.size, non_mated.size, threshold, fnir,
        float((non_mated >= threshold).mean()), tuple(operating_points(sets, targets)),
        "rank-1 candidate lists; FNIR includes probes with no usable face",
    )
