"""TrackIdentity: a decision needs enough attempts, a clear lead, a steady first place
and a fused score over the threshold; budgets and give-up save embeddings."""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextlib import nullcontext as does_not_raise

import pytest

from frvs.core.errors import InvalidRecordError
from frvs.video.identity import IdentityPolicy, TrackIdentity
from frvs.video.models import GalleryCandidate

THRESHOLD = 0.363  # SFace's published operating point
POLICY = IdentityPolicy()  # 2 attempts (4 under 16 px eyes), lead 0.03, top share 0.6
BIG = 30.0  # eye distance of a well-seen face, px
SMALL = 10.0  # under small_face_eye_px


def scores(**by_subject: float) -> list[GalleryCandidate]:
    return [GalleryCandidate("watch", "watch_list", s, v, THRESHOLD) for s, v in by_subject.items()]


Attempt = tuple[float, list[GalleryCandidate]]  # eye distance, candidates


def decided_after(attempts: list[Attempt], policy: IdentityPolicy = POLICY) -> list[str | None]:
    """After each attempt: the subject newly decided by it, or None."""
    identity = TrackIdentity(policy)
    out: list[str | None] = []
    for eye_px, candidates in attempts:
        fresh = identity.add(1.0, eye_px, candidates)
        out.append(fresh[0].subject if fresh else None)
    return out


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        pytest.param([(BIG, scores(ann=0.6, bob=0.1))] * 3, [None, "ann", None],
                     id="decided-once-after-min-attempts"),
        pytest.param([(BIG, scores(ann=0.50, bob=0.48))] * 4, [None] * 4,
                     id="tie-no-decision"),
        pytest.param([(BIG, scores(ann=0.50, bob=0.46))] * 2, [None, "ann"],
                     id="lead-just-enough"),
        pytest.param([(BIG, scores(ann=0.30, bob=0.1))] * 4, [None] * 4,
                     id="below-threshold"),
        pytest.param([(SMALL, scores(ann=0.6, bob=0.1))] * 5, [None, None, None, "ann", None],
                     id="small-faces-need-4"),
        # Big once, small afterwards: the track is not "all small", 2 attempts suffice.
        pytest.param([(BIG, scores(ann=0.6)), (SMALL, scores(ann=0.6))], [None, "ann"],
                     id="one-big-face-is-enough"),
        # ann leads on the mean but ranks first in only 1 of 2 attempts (share 0.5).
        pytest.param([(BIG, scores(ann=0.9, bob=0.4)), (BIG, scores(ann=0.38, bob=0.45))],
                     [None, None], id="unsteady-first-place"),
    ],
)
def test_decisions(attempts: list[Attempt], expected: list[str | None]) -> None:
    assert decided_after(attempts) == expected


@pytest.mark.parametrize(
    ("attempts", "next_eye_px", "wants"),
    [
        pytest.param([], BIG, True, id="fresh-track"),
        pytest.param([(BIG, scores(ann=0.05))], BIG, True, id="one-attempt-is-not-hopeless"),
        # Two attempts far below the threshold (0.1 < 0.363 - 0.15): a stranger.
        pytest.param([(BIG, scores(ann=0.1))] * 2, BIG, False, id="stranger-given-up"),
        pytest.param([(BIG, scores(ann=0.1))] * 2, 1.5 * BIG, True, id="stranger-came-closer"),
        # Within the give-up margin: keep trying (a known face seen badly so far).
        pytest.param([(BIG, scores(ann=0.25))] * 2, BIG, True, id="doubtful-keeps-trying"),
        pytest.param([(BIG, [])] * 2, BIG, False, id="empty-gallery"),
        pytest.param([(BIG, scores(ann=0.3, bob=0.29))] * 10, 3 * BIG, False,
                     id="budget-spent"),
    ],
)
def test_attempt_budget_and_give_up(attempts: list[Attempt], next_eye_px: float,
                                    wants: bool) -> None:
    identity = TrackIdentity(POLICY)
    for eye_px, candidates in attempts:
        identity.add(1.0, eye_px, candidates)
    assert identity.wants(next_eye_px) is wants


def test_weights_let_a_large_face_outvote_small_ones() -> None:
    identity = TrackIdentity(POLICY)
    identity.add(0.05, SMALL, scores(ann=0.2, bob=0.5))
    identity.add(1.0, BIG, scores(ann=0.7, bob=0.1))
    best = identity.best()
    assert best is not None and best.subject == "ann"
    assert best.score == pytest.approx((0.05 * 0.2 + 0.7) / 1.05)


@pytest.mark.parametrize(
    ("kwargs", "expectation"),
    [
        ({}, does_not_raise()),
        ({"min_attempts": 0}, pytest.raises(InvalidRecordError, match="min_attempts")),
        ({"min_attempts": 3, "max_attempts": 2},
         pytest.raises(InvalidRecordError, match="max_attempts")),
        ({"min_attempts_small": 1, "min_attempts": 2},
         pytest.raises(InvalidRecordError, match="min_attempts_small")),
        ({"min_top_share": 0.0}, pytest.raises(InvalidRecordError, match="min_top_share")),
        ({"retry_growth": 0.5}, pytest.raises(InvalidRecordError, match="retry_growth")),
    ],
)
def test_policy_validates(kwargs: dict[str, float],
                          expectation: AbstractContextManager[object]) -> None:
    with expectation:
        IdentityPolicy(**kwargs)  # type: ignore[arg-type]
