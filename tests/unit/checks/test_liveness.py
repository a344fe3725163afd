"""The challenge rules of ``frvs.checks.liveness`` on pose sequences: moves counted in
order, relative to the capture's own centre, returning to the centre not taken for the
opposite move, the time limit; and the challenge parser's refusals. (The real-image
cases, still, flat and two people, are in tests/integration/checks.)"""

from __future__ import annotations

import pytest

from frvs.checks.liveness import moves_in_order
from frvs.checks.models import FramePose, Move, parse_challenge
from frvs.core.errors import InvalidInputError

L, R, U, D = Move.LEFT, Move.RIGHT, Move.UP, Move.DOWN


def poses(yaws: list[float], pitches: list[float] | None = None, fps: float = 5.0
          ) -> list[FramePose]:
    pitches = pitches or [15.0] * len(yaws)
    return [FramePose(i, i / fps, y, p, 0.0, (0.0, 0.0), 50.0, ((0.0, 0.0),) * 5)
            for i, (y, p) in enumerate(zip(yaws, pitches, strict=True))]


def seen(yaws: list[float], challenge: tuple[Move, ...],
         pitches: list[float] | None = None) -> list[Move]:
    return moves_in_order(poses(yaws, pitches), challenge, 25.0, 15.0)[0]


def test_left_then_right_in_order() -> None:
    turn = [0, 10, 25, 30, 15, 0, -15, -30, -28, 0]
    assert seen(turn, (L, R)) == [L, R]
    assert seen(turn, (R, L)) == [R]  # right came after left, never left after right


def test_coming_back_to_the_centre_is_not_the_opposite_move() -> None:
    # Left, then back to the centre: the yaw fell by 30, but never right of centre.
    assert seen([0, 0, 0, 0, 15, 30, 30, 15, 0, 0, 0], (L, R)) == [L]


def test_moves_are_relative_to_the_captures_own_centre() -> None:
    # A face whose frontal pose reads yaw -15 (the estimate is biased per face).
    assert seen([-15, -15, -15, 10, 12, -15, -15, -40, -42, -15], (L, R)) == [L, R]


def test_small_movements_are_not_turns() -> None:
    assert seen([0, 8, -8, 10, -10, 0, 9, -9], (L, R)) == []


def test_nods_count_only_while_facing_forward() -> None:
    pitches = [15, 15, 0, -2, 15, 15, 30, 32, 15, 15, 15, 15]
    assert seen([0] * 12, (U, D), pitches) == [U, D]
    # The same pitch swings while the head is turned far aside are not nods.
    assert seen([0, 0, 60, 60, 0, 0, 60, 60, 0, 0, 0, 0], (U, D), pitches) == []


def test_the_time_the_last_move_was_done() -> None:
    moves, done_at = moves_in_order(poses([0, 30, 0, -30, 0]), (L, R), 25.0, 15.0)
    assert moves == [L, R] and done_at == pytest.approx(0.6)
    assert moves_in_order(poses([0, 30, 0]), (L, R), 25.0, 15.0)[1] is None


@pytest.mark.parametrize(("text", "message"), [
    ("left,sideways", "unknown move(s) 'sideways'"),
    ("left,left", "the same move twice in a row"),
    ("", "1 to 4 moves, got 0"),
    ("left,right,left,right,left", "1 to 4 moves, got 5"),
])
def test_bad_challenges_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_challenge(text)


def test_challenges_are_case_and_space_tolerant() -> None:
    assert parse_challenge(" Left , RIGHT,up ") == (L, R, U)
