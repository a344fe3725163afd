"""A gallery's 1:N threshold from its own leave-one-out searches: the arithmetic, and that
it predicts what searches for people who are not enrolled really do."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_faces import face_like, mated

from frvs.core.errors import InvalidInputError
from frvs.galleries.calibration import (
    OpenSetScores,
    calibrate,
    fnir_at,
    fpir_at,
    open_set_scores,
    threshold_for_fpir,
)
from frvs.storage.index.exact import ExactIndex


def _scores(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


@pytest.mark.parametrize(
    ("nonmated", "fpir", "passing"),
    [
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.1, 1),
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.3, 3),
        ([0.5, 0.5, 0.5, 0.1], 0.5, 0),  # a tie cannot be split: fewer pass, never more
        ([0.3, 0.2], 0.99, 1),
    ],
)
def test_threshold_lets_at_most_the_target_share_pass(
    nonmated: list[float], fpir: float, passing: int
) -> None:
    scores = _scores(nonmated)
    threshold = threshold_for_fpir(scores, fpir)
    assert threshold is not None
    assert int(np.sum(scores >= threshold)) == passing
    assert fpir_at(scores, threshold) <= fpir


def test_a_rate_the_searches_cannot_show_has_no_threshold() -> None:
    assert threshold_for_fpir(_scores([0.1] * 99), 0.01) is None
    assert threshold_for_fpir(_scores([0.1] * 100), 0.01) is not None
    with pytest.raises(InvalidInputError, match="needs at least 1000"):
        calibrate("g", OpenSetScores(99, _scores([0.1] * 99), _scores([]), _scores([])),
                  0.001, 0.363)
    # The smallest double: a clear refusal, not an overflow (found by schemathesis).
    with pytest.raises(InvalidInputError, match="needs at least 1000000000000000000"):
        calibrate("g", OpenSetScores(99, _scores([0.1] * 99), _scores([]), _scores([])),
                  5e-324, 0.363)


def test_a_person_enrolled_twice_is_named_not_calibrated_around() -> None:
    nonmated = np.concatenate([_scores([1.0000001, 1.0000001]),
                               np.linspace(0.0, 0.4, 198, dtype=np.float32)])
    scores = OpenSetScores(199, nonmated, _scores([]), _scores([]))
    with pytest.raises(InvalidInputError, match="enrolled under two subject ids"):
        calibrate("g", scores, 0.005, 0.363)
    # At 1% the two duplicates are the two searches allowed to match: no refusal.
    assert 0.4 < calibrate("g", scores, 0.01, 0.363).threshold < 0.41


def test_fnir_counts_misses_below_threshold_and_at_rank_two() -> None:
    scores = OpenSetScores(3, _scores([0.2, 0.2, 0.2]), mated=_scores([0.9, 0.5, 0.3]),
                           mated_rival=_scores([0.2, 0.6, 0.1]))
    # 0.9: found; 0.5: outranked by a 0.6 rival; 0.3: below the threshold.
    assert fnir_at(scores, 0.4) == pytest.approx(2 / 3)
    assert fnir_at(scores, 0.2) == pytest.approx(1 / 3)
    assert fnir_at(OpenSetScores(1, _scores([0.1]), _scores([]), _scores([])), 0.4) is None


def test_leave_one_out_ignores_the_own_subject() -> None:
    vectors = np.eye(3, dtype=np.float32)
    vectors[1] = [0.6, 0.8, 0.0]  # a second template of subject "a"
    best = [{"a": 1.0, "b": 0.1}, {"a": 1.0, "b": 0.3}, {"b": 1.0, "a": 0.3}]
    scores = open_set_scores(["a", "a", "b"], vectors, best)
    assert scores.subjects == 2
    assert scores.nonmated.tolist() == pytest.approx([0.1, 0.3, 0.3])
    assert scores.mated.tolist() == pytest.approx([0.6, 0.6])  # a's two templates
    assert scores.mated_rival.tolist() == pytest.approx([0.1, 0.3])


@pytest.mark.slow
def test_gallery_threshold_predicts_fpir_of_people_not_enrolled() -> None:
    """Calibrated on 20,000 enrolled people, the threshold for FPIR 1% lets through about
    1% of 4,000 searches for people who are not enrolled; the 1:1 threshold, nearly all."""
    rng = np.random.default_rng(8)
    gallery = face_like(rng, 20_000)
    owners = [f"p{i}" for i in range(len(gallery))]
    index = ExactIndex(128)
    index.add(np.arange(len(gallery)), gallery)
    top = index.search(gallery, 2)
    best = [{owners[int(i)]: float(s) for s, i in zip(row_s, row_i, strict=True)}
            for row_s, row_i in zip(top.scores, top.ids, strict=True)]
    result = calibrate("synthetic", open_set_scores(owners, gallery, best), 0.01, 0.363)

    strangers = face_like(rng, 4_000)
    best_stranger = index.search(strangers, 1).scores[:, 0]
    observed = float(np.mean(best_stranger >= result.threshold))
    assert 0.005 <= observed <= 0.018  # 1% +- about 3 standard errors
    assert result.current_fpir > 0.9
    assert float(np.mean(best_stranger >= 0.363)) > 0.9
    # Genuine searches still find their mates at the stricter threshold.
    probes = mated(rng, gallery[:1_000], 0.1)
    found = index.search(probes, 1)
    assert np.mean((found.ids[:, 0] == np.arange(1_000))
                   & (found.scores[:, 0] >= result.threshold)) > 0.9
