"""The liveness rules against attacks, on pose and template sequences (the real-image
attacks are in tests/integration/checks/test_attacks.py): a face walked from one person
to another in small steps, the moves done in the wrong order or mirrored, frames whose
client times claim a fast capture of a slow one."""

from __future__ import annotations

import numpy as np

from frvs.checks.liveness import frame_agreement, judge, unlike
from frvs.checks.models import FramePose, Move
from frvs.core.templates import ModelSpace, Template

SPACE = ModelSpace("test", "1", 2)
L, R = Move.LEFT, Move.RIGHT
TURN = [0, 10, 25, 30, 15, 0, -15, -30, -28, 0]


def face(angle_deg: float) -> Template:
    """A unit vector at ``angle_deg``: two faces' similarity is the cosine of the angle
    between them."""
    a = np.radians(angle_deg)
    return Template(np.array([np.cos(a), np.sin(a)], np.float32), SPACE)


def poses(yaws: list[float], fps: float = 5.0) -> list[FramePose]:
    return [FramePose(i, i / fps, y, 15.0, 0.0, (100.0 + 10 * i, 100.0), 50.0,
                      ((float(i), 0.0),) * 5) for i, y in enumerate(yaws)]


def run(yaws: list[float], templates: list[Template], challenge: tuple[Move, ...],
        matched: int, fps: float = 5.0) -> list[str]:
    return list(judge(poses(yaws, fps), templates, len(yaws), challenge, threshold=0.363,
                      turn_deg=25.0, nod_deg=15.0, time_limit_s=10.0, still_motion=0.02,
                      matched=matched, same_face_min=0.3).reasons)


def test_a_face_walked_to_another_in_small_steps_is_caught() -> None:
    # Person A (angle 0) does the turn; the last frames walk to person B (angle 85,
    # similarity 0.09 to A) ten degrees at a time: every neighbour is at 0.98.
    walk = [face(0)] * 10 + [face(a) for a in range(10, 90, 10)] + [face(85)] * 2
    yaws = TURN + [0.0] * 10
    assert frame_agreement(walk) > 0.9  # the chain alone holds together
    matched = len(walk) - 1  # B's face is the one compared with the document
    assert unlike(walk, matched, 0.3)[:1] == [0]
    reasons = run(yaws, walk, (L, R), matched)
    assert any("not the face compared with the document" in r for r in reasons), reasons


def test_one_face_turning_keeps_its_profile_frames() -> None:
    # A turned face compares worse with its frontal view (0.35 on the real footage):
    # still above the floor.
    templates = [face(0), face(30), face(65), face(69), face(40), face(0), face(40),
                 face(69), face(65), face(0)]
    assert run(TURN, templates, (L, R), matched=0) == []


def test_the_moves_in_the_wrong_order_or_mirrored_fail() -> None:
    same = [face(0)] * len(TURN)
    assert any(r.startswith("challenge not followed") for r in run(TURN, same, (R, L), 0))
    mirrored = [-y for y in TURN]
    assert any(r.startswith("challenge not followed")
               for r in run(mirrored, same, (L, R), 0))


def test_times_that_claim_a_slow_capture_was_fast_are_the_clients_word() -> None:
    # The rules read the times they are given: 10 frames claimed 0.1 s apart pass,
    # whatever they took. Hence issued challenges by default: the server's clock
    # bounds the whole answer (time_limit_s + challenge_slack_s).
    same = [face(0)] * len(TURN)
    assert run(TURN, same, (L, R), 0, fps=10.0) == []
    slow = run(TURN, same, (L, R), 0, fps=0.5)
    assert any(r.startswith("too slow") for r in slow), slow
