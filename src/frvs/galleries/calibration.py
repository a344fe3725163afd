"""A gallery's 1:N threshold, measured on the gallery itself.

The 1:1 operating point of a pack is wrong for 1:N: a probe of somebody not enrolled is
compared with every subject, so its best non-mate score rises with the gallery's size. On
the synthetic galleries of ``benchmarks/search.py`` a mate-less probe passes the default
pack's threshold (0.363) 99.9% of the time against 100k subjects.

What a deployer needs is the false positive identification rate (FPIR): how often a
search for someone not enrolled returns a match. The gallery itself can show it without
any outside data: each enrolled template, searched against everybody else, is a search
for a person who is not in the rest of the gallery. The share of those leave-one-out
searches whose best other subject scores at or above a threshold estimates FPIR at that
threshold for a gallery of this size, and the threshold for a target FPIR is read off the
same scores. Subjects with two or more templates give mated searches too (each template
against its subject's other templates, competing with every other subject), which
estimate the false negative identification rate (FNIR) the chosen threshold costs. These
are the FPIR and FNIR of ``frvs eval identification`` (``evaluation.metrics.open_set``),
measured without a labelled probe set.

Two assumptions, stated in the report: every subject is a different person (a person
enrolled twice makes a high non-mate score; ``frvs crossmatch`` finds them), and enrolment
photos stand in for live probes (camera faces are usually of lower quality, which lowers
mated scores more than non-mated ones). Re-measure after the gallery grows: FPIR rises
with its size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from frvs.core.errors import InvalidInputError
from frvs.evaluation.metrics import comparisons_needed, reachable

Scores = npt.NDArray[np.float32]
ProgressCallback = Callable[[int, int], None]  # (probes searched, total)

FPIR_POINTS = (0.1, 0.01, 0.001, 0.0001)
MAX_PROBES = 100_000  # leave-one-out searches at most: enough for FPIR 1e-4, 51 MB of vectors
# Non-mated scores this high are not two people but one enrolled twice.
_DUPLICATE_SCORE = 0.99


@dataclass(frozen=True, slots=True)
class OpenSetScores:
    """Leave-one-out searches of a gallery, one row per enrolled template.

    ``nonmated[i]``: template i's best score against any other subject.
    ``mated[j]``: for templates whose subject has other templates, the best score against
    those (``mated_rival[j]``: the same template's best other subject, for rank 1).
    """

    subjects: int
    nonmated: Scores
    mated: Scores
    mated_rival: Scores


@dataclass(frozen=True, slots=True)
class FpirCalibration:
    """The threshold for a target FPIR and what it costs, from ``OpenSetScores``."""

    gallery: str
    subjects: int
    templates: int
    probes: int
    mated_probes: int
    target_fpir: float
    threshold: float
    current_threshold: float
    current_fpir: float
    fnir: float | None
    current_fnir: float | None
    curve: tuple[tuple[float, float | None], ...]  # (FPIR, threshold or None if unmeasurable)
    applied: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "gallery": self.gallery,
            "subjects": self.subjects,
            "templates": self.templates,
            "probes": self.probes,
            "mated_probes": self.mated_probes,
            "target_fpir": self.target_fpir,
            "threshold": self.threshold,  # unrounded: exactly what --apply stores
            "fnir_at_threshold": _rounded(self.fnir),
            "current_threshold": round(self.current_threshold, 6),
            "current_fpir": round(self.current_fpir, 6),
            "current_fnir": _rounded(self.current_fnir),
            "thresholds_by_fpir": [{"fpir": f, "threshold": _rounded(t)} for f, t in self.curve],
            "applied": self.applied,
            "assumes": "every subject is a different person; enrolment photos stand in for "
                       "live probes; FPIR holds for a gallery of this size",
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def threshold_for_fpir(nonmated: Scores, fpir: float) -> float | None:
    """The lowest threshold at which at most ``fpir`` of the non-mated searches match
    (decisions are ``score >= threshold``), or None when there are too few searches to
    show that rate (fewer than 1/fpir)."""
    n = len(nonmated)
    if n == 0 or not reachable(fpir, n):
        return None
    allowed = math.floor(fpir * n + 1e-9)  # searches that may still match
    ranked = np.sort(nonmated)[::-1]
    if allowed >= n:
        return float(ranked[-1])
    return float(np.nextafter(ranked[allowed], np.float32(np.inf)))


def fpir_at(nonmated: Scores, threshold: float) -> float:
    """The share of non-mated searches that would match at ``threshold``."""
    return float(np.mean(nonmated >= threshold)) if len(nonmated) else 0.0


def fnir_at(scores: OpenSetScores, threshold: float) -> float | None:
    """The share of mated searches not returning their subject at rank 1 at ``threshold``;
    None without mated searches."""
    if len(scores.mated) == 0:
        return None
    found = (scores.mated >= threshold) & (scores.mated > scores.mated_rival)
    return float(1.0 - np.mean(found))


def check_target(gallery: str, target_fpir: float, searches: int) -> None:
    """Refuse a target FPIR outside (0, 1) or one ``searches`` cannot show, before any
    search is made."""
    if not 0.0 < target_fpir < 1.0:
        raise InvalidInputError(f"the target FPIR must be in (0, 1), got {target_fpir}")
    if not reachable(target_fpir, searches):  # the rule ``frvs eval`` applies to FMR targets
        raise InvalidInputError(
            f"gallery {gallery!r} has {searches} templates to search with; an FPIR of "
            f"{target_fpir:g} needs at least {comparisons_needed(target_fpir)}: enrol more "
            "subjects or choose a larger FPIR")


def calibrate(gallery: str, scores: OpenSetScores, target_fpir: float,
              current_threshold: float, templates: int | None = None) -> FpirCalibration:
    """The threshold for ``target_fpir`` and the error rates around it. ``templates``:
    how many the gallery holds, when the searches were a sample of them."""
    check_target(gallery, target_fpir, len(scores.nonmated))
    threshold = threshold_for_fpir(scores.nonmated, target_fpir)
    assert threshold is not None  # check_target applied the same rule
    if threshold > _DUPLICATE_SCORE:
        raise InvalidInputError(
            f"in gallery {gallery!r} the best other subject scores up to "
            f"{float(scores.nonmated.max()):.4f}: some person is enrolled under two subject "
            f"ids. Find them with 'frvs crossmatch {gallery}', merge or delete them, then "
            "calibrate again")
    return FpirCalibration(
        gallery=gallery,
        subjects=scores.subjects,
        templates=len(scores.nonmated) if templates is None else templates,
        probes=len(scores.nonmated),
        mated_probes=len(scores.mated),
        target_fpir=target_fpir,
        threshold=threshold,
        current_threshold=current_threshold,
        current_fpir=fpir_at(scores.nonmated, current_threshold),
        fnir=fnir_at(scores, threshold),
        current_fnir=fnir_at(scores, current_threshold),
        curve=tuple((f, threshold_for_fpir(scores.nonmated, f)) for f in FPIR_POINTS),
        applied=False,
    )


def open_set_scores(owners: Sequence[str], vectors: Scores,
                    best_by_subject: Sequence[dict[str, float]]) -> OpenSetScores:
    """Leave-one-out scores from each template's best score per subject.

    ``best_by_subject[i]`` must hold the best other subject of template i (a search with
    two subjects or more); the template's own subject, if present, is ignored, so a search
    that found template i itself does no harm. Mated scores are computed here exactly,
    subject by subject, from ``vectors``.
    """
    nonmated = np.full(len(owners), -np.inf, dtype=np.float32)
    for i, (owner, best) in enumerate(zip(owners, best_by_subject, strict=True)):
        others = [score for subject, score in best.items() if subject != owner]
        if others:
            nonmated[i] = max(others)
    rows_of: dict[str, list[int]] = {}
    for i, owner in enumerate(owners):
        rows_of.setdefault(owner, []).append(i)
    mated, rival = [], []
    for rows in rows_of.values():
        if len(rows) < 2:
            continue
        own = vectors[rows]
        sims = own @ own.T
        np.fill_diagonal(sims, -np.inf)
        mated.extend(sims.max(axis=1).tolist())
        rival.extend(nonmated[rows].tolist())
    return OpenSetScores(len(rows_of), nonmated[np.isfinite(nonmated)],
                         np.asarray(mated, dtype=np.float32), np.asarray(rival, dtype=np.float32))
