"""Ranking subjects by their best template: the one rule every 1:N search follows.

A subject's score is its best template's score, so enrolling more photos of someone can
only help them be found, never crowd out other candidates. Used by the galleries' search
(``galleries/search.py``, owners read from the store) and the in-memory matcher
(``video/memory_matcher.py``, owners held in a list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np


def best_per_subject(hits: Iterable[tuple[float, int]],
                     owner: Callable[[int], str | None]) -> dict[str, float]:
    """The best score of each subject among ``hits`` (score, template id) of one query;
    ids without an owner (padding, deleted since) are skipped. Subjects keep the order
    in which they first appear."""
    best: dict[str, float] = {}
    for score, ident in hits:
        subject = owner(int(ident))
        if subject is not None and score > best.get(subject, -np.inf):
            best[subject] = float(score)
    return best


def top_subjects(best: Mapping[str, float], top: int) -> list[tuple[str, float]]:
    """The ``top`` best (subject, score) pairs, highest first (ties in first-seen order)."""
    return sorted(best.items(), key=lambda kv: -kv[1])[:top]
