"""Each metric against values computed by hand on small score sets (ties, failures to
acquire, unreachable targets included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from frvs.core.errors import InvalidInputError
from frvs.evaluation import metrics as m

INF = float("inf")

# genuine 0.9 0.8 0.6 0.4 / impostor 0.7 0.5 0.3 0.2; see the table in test_roc_points.
A = m.ScoreSets.of([0.9, 0.8, 0.6, 0.4], [0.7, 0.5, 0.3, 0.2])


def test_roc_points() -> None:
    curve = m.roc(A)
    assert curve.thresholds.tolist() == [INF, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    assert curve.fmr.tolist() == [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1.0]
    assert curve.fnmr.tolist() == [1, 0.75, 0.5, 0.5, 0.25, 0.25, 0, 0, 0]


def test_auc_counts_wins() -> None:
    # 0.9 and 0.8 beat all 4 impostors, 0.6 beats 3, 0.4 beats 2: 13 of 16.
    assert m.auc(A) == pytest.approx(13 / 16)


def test_auc_equals_trapezoid_area() -> None:
    curve = m.roc(A)
    x = np.append(curve.fmr, 1.0)
    y = np.append(curve.tmr, 1.0)
    assert m.auc(A) == pytest.approx(float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)))


def test_eer_exact_point() -> None:
    e = m.eer(m.roc(A))
    assert (e.rate, e.threshold) == (pytest.approx(0.25), pytest.approx(0.6))


def test_eer_interpolated_between_points() -> None:
    # At 0.8: FMR 1/2, FNMR 2/3; at 0.6: FMR 1/2, FNMR 1/3 -> cross half-way: 0.5 at 0.7.
    e = m.eer(m.roc(m.ScoreSets.of([0.9, 0.6, 0.5], [0.8, 0.4])))
    assert e.rate == pytest.approx(0.5)
    assert e.threshold == pytest.approx(0.7)


def test_decisions_at_threshold() -> None:
    d = m.decisions(A, 0.55)
    assert (d.true_match, d.false_non_match, d.true_non_match, d.false_match) == (3, 1, 3, 1)
    assert (d.accuracy, d.fmr, d.fnmr) == (0.75, 0.25, 0.25)


def test_ties_are_never_split() -> None:
    s = m.ScoreSets.of([0.5, 0.5, 0.9], [0.5, 0.1])
    curve = m.roc(s)
    assert curve.thresholds.tolist() == [INF, 0.9, 0.5, 0.1]
    assert curve.fmr.tolist() == [0, 0, 0.5, 1.0]
    assert curve.fnmr.tolist() == pytest.approx([1, 2 / 3, 0, 0])
    # 0.9 beats both (2); each 0.5 ties 0.5 (1/2) and beats 0.1 (1): 2 + 1.5 + 1.5 = 5 of 6.
    assert m.auc(s) == pytest.approx(5 / 6)
    d = m.decisions(s, 0.5)  # score == threshold matches
    assert (d.true_match, d.false_match) == (3, 1)


def test_failure_to_acquire_is_a_non_match() -> None:
    s = m.ScoreSets.of([0.9, -INF], [0.2, -INF])
    d = m.decisions(s, 0.5)
    assert (d.true_match, d.false_non_match, d.true_non_match, d.false_match) == (1, 1, 2, 0)
    # Even at the lowest finite threshold the failed genuine pair does not match.
    curve = m.roc(s)
    assert (curve.fmr[-1], curve.fnmr[-1]) == (0.5, 0.5)
    # wins: 0.9>0.2, 0.9>-inf, -inf vs -inf ties (1/2): 2.5 of 4.
    assert m.auc(s) == pytest.approx(0.625)


def test_fnmr_at_reachable_fmr() -> None:
    point = m.fnmr_at_fmr(m.roc(A), 0.25, 4)
    assert point.reachable
    assert (point.threshold, point.fmr, point.fnmr) == (0.6, 0.25, 0.25)


@pytest.mark.parametrize(
    ("impostors", "target", "ok"),
    [(140, 1e-3, False), (140, 1e-2, True), (999, 1e-3, False), (1000, 1e-3, True),
     (4, 0.1, False)],
)
def test_reachability_rule(impostors: int, target: float, ok: bool) -> None:
    assert m.reachable(target, impostors) is ok


@pytest.mark.parametrize(("target", "needed"),
                         [(0.01, 100), (1e-3, 1000), (0.3, 4), (5e-324, 10**18)])
def test_comparisons_needed_never_overflows(target: float, needed: int) -> None:
    assert m.comparisons_needed(target) == needed


def test_unreachable_target_has_no_number() -> None:
    rng = np.random.default_rng(1)
    s = m.ScoreSets.of(rng.uniform(0.5, 1, 140), rng.uniform(0, 0.6, 140))
    points = {p.target_fmr: p for p in m.operating_points(s)}
    assert points[1e-2].reachable and points[1e-2].fnmr is not None
    p = points[1e-3]
    assert not p.reachable
    assert p.fnmr is None and p.threshold is None
    assert "140 impostor" in p.note and "1000" in p.note


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        m.ScoreSets.of([math.nan], [0.1])
    with pytest.raises(InvalidInputError):
        m.ScoreSets.of([], [0.1])
    with pytest.raises(InvalidInputError):
        m.fnmr_at_fmr(m.roc(A), 1.5, 4)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(2)
    s = m.ScoreSets.of(rng.normal(0.7, 0.1, 200), rng.normal(0.3, 0.1, 200))
    opts = m.BootstrapOptions(resamples=200, seed=7)
    a = m.bootstrap(s, 0.5, options=opts)
    assert a == m.bootstrap(s, 0.5, options=opts)
    assert a != m.bootstrap(s, 0.5, options=m.BootstrapOptions(resamples=200, seed=8))
    acc = m.decisions(s, 0.5).accuracy
    assert a["accuracy"].low <= acc <= a["accuracy"].high
    assert "fnmr_at_fmr_0.01" in a and "fnmr_at_fmr_0.001" not in a  # 200 impostors


def test_mated_rank_breaks_ties_against_the_mate() -> None:
    assert m.mated_rank([0.5, 0.7, 0.7], 1) == 2
    assert m.mated_rank([0.5, 0.7, 0.6], 1) == 1
    assert m.mated_rank([0.9, 0.7, 0.8], 1) == 3


def test_cmc() -> None:
    curve = m.cmc([1, 2, INF, 1, 6], 10)
    assert curve[0] == pytest.approx(2 / 5)
    assert curve[4] == pytest.approx(3 / 5)
    assert curve[9] == pytest.approx(4 / 5)


def test_open_set() -> None:
    r = m.open_set([0.9, 0.6, -INF], [0.5, 0.2], 0.55, targets=(0.5,))
    assert (r.fnir, r.fpir) == (pytest.approx(1 / 3), 0.0)
    (p,) = r.at_fpir
    # lowest threshold with FPIR <= 1/2 is 0.5; mates >= 0.5: 0.9 and 0.6 -> FNIR 1/3.
    assert (p.threshold, p.fmr, p.fnmr) == (0.5, 0.5, pytest.approx(1 / 3))


def test_open_set_without_non_mated_searches_says_so() -> None:
    r = m.open_set([0.9], [], 0.5)
    assert r.fpir is None and r.at_fpir == ()
    assert "non-mated" in r.note
