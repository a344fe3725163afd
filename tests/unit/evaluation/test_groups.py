"""Per-group differentials by hand."""

from __future__ import annotations

import pytest

from frvs.evaluation.groups import group_differentials


def test_per_group_rates_and_worst_to_best() -> None:
    scores = [0.9, 0.3, 0.6, 0.8, 0.2, 0.7, 0.95]
    same = [True, True, False, True, False, False, True]
    groups = ["A", "A", "A", "B", "B", "B", None]
    d = group_differentials(scores, same, groups, 0.5)
    by = {g.group: g for g in d.groups}
    assert (by["A"].decisions.fnmr, by["A"].decisions.fmr) == (0.5, 1.0)
    assert (by["B"].decisions.fnmr, by["B"].decisions.fmr) == (0.0, 0.5)
    assert d.fmr_ratio is not None and d.fmr_ratio.value == pytest.approx(2.0)
    assert d.fmr_ratio.worst_group == "A"
    assert d.fnmr_ratio is not None and d.fnmr_ratio.value is None  # best group: no errors
    assert "undefined" in str(d.fnmr_ratio.as_dict()["note"])
    assert d.unlabelled_pairs == 1
    assert "never infers" in str(d.as_dict()["labels"])
