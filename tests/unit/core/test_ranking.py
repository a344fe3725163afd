"""Ranking subjects by their best template (core/ranking.py), as every 1:N search does."""

from __future__ import annotations

from frvs.core.ranking import best_per_subject, top_subjects

OWNERS = {0: "ann", 1: "bob", 2: "ann", 3: "cat"}


def test_a_subject_scores_its_best_template_and_unowned_ids_are_skipped() -> None:
    hits = [(0.9, 1), (0.8, 2), (0.95, 0), (0.5, -1), (0.4, 7), (0.3, 3)]
    best = best_per_subject(hits, OWNERS.get)
    assert best == {"bob": 0.9, "ann": 0.95, "cat": 0.3}
    assert list(best) == ["bob", "ann", "cat"]  # first-seen order


def test_more_photos_of_one_subject_never_crowd_out_others() -> None:
    hits = [(0.9, 0), (0.89, 2), (0.88, 1)]
    assert top_subjects(best_per_subject(hits, OWNERS.get), 2) == [("ann", 0.9), ("bob", 0.88)]


def test_ties_keep_first_seen_order_and_top_bounds_the_list() -> None:
    best = {"x": 0.5, "y": 0.7, "z": 0.5}
    assert top_subjects(best, 5) == [("y", 0.7), ("x", 0.5), ("z", 0.5)]
    assert top_subjects(best, 0) == []
