"""Challenge-response liveness from the head pose of each frame.

What it checks, each failure with its own reason:

- **the moves, in order, in time**: a turn to the customer's left is a rise of the yaw
  of at least ``turn_deg`` since the lowest yaw after the previous move, ending left of
  the capture's median yaw (by a quarter of ``turn_deg``), so that coming back to the
  centre after a right turn is not taken for a left turn. Right, up and down likewise
  (pitch with ``nod_deg``). Relative angles, because the five-landmark pose estimate is
  coarse (about +-10 degrees) and biased per face: frontal faces read a pitch of
  +10..+20, and the same person's frontal photos a yaw of -17..+9. The last move must
  be done within ``time_limit_s`` of the first frame.
- **not a still image**: the landmarks must move between frames.
- **not a flat picture moved around**: a photo or a screen that is moved, turned in
  its plane or tilted changes where the face is, its size and its roll, but hardly the
  pose read from the landmarks (a tilt of a flat picture squeezes the eye distance and
  the nose's offset alike, so their ratio, the yaw, stays). Moving without turning is
  reported as a flat picture. Limit: only while the detector reads the foreshortened
  face well. A print tilted by 60-70 degrees (50 with a wide-angle lens) degrades the
  landmarks and its yaw reads like a turn; five landmarks cannot tell the two apart
  (README, "A printed photo tilted steeply fakes a turn").
- **one and the same face throughout**: the templates of all frames must be linked,
  frame to frame, at the match threshold (the weakest link of their maximum spanning
  tree, ``frame_agreement``). A frame-to-frame chain lets a profile frame join through
  its half-turned neighbours; two people make two groups whatever their order.
- **the face that turns is the face compared**: a chain alone can be walked from one
  person to another by a face morph faded in over a few frames (each frame close to the
  next), so that one person does the moves and another's face is matched against the
  document. Every frame must therefore also resemble the frame compared with the
  document directly, at ``same_face_min`` (below the match threshold, since a face
  turned 50 degrees compares worse with its own frontal view: 0.35..0.7 on the real
  footage, while SFace scores of two different people in the shared pairs fall below
  0.31 in 99 of 100 pairs).

Directions: yaw > 0 is a turn to the customer's own left. In a camera image that is
not mirrored (what webcams deliver and what the browser's canvas captures; only the
on-screen preview is mirrored, by CSS) the customer's left is the image's right, which
is where ``estimate_pose`` puts positive yaw. A capture that is mirrored before it
reaches FRVS sets ``checks.mirrored_capture`` and the yaw is negated.

What it does not defend against: a replayed video of the right person turning their
head (any recorded head-shake passes a left/right challenge), a 3-D mask, or a
deepfake fed to the camera. It is not an ISO/IEC 30107-3 presentation attack
detection and is not certified as one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from frvs.checks.models import FramePose, Liveness, Move
from frvs.core.templates import Template

FLAT_SHIFT = 0.25
"""Centre shift (in eye distances) above which a face counts as moved in the frame."""
FLAT_SCALE = 0.15
"""Relative change of the eye distance above which a face counts as moved closer/away."""
FLAT_ROLL_DEG = 10.0
"""Change of roll above which a face counts as turned in the image plane."""


def moves_in_order(poses: Sequence[FramePose], challenge: Sequence[Move], turn_deg: float,
                   nod_deg: float) -> tuple[list[Move], float | None]:
    """The moves of ``challenge`` seen in order, and the time the last of them was
    completed (None when not all were)."""
    if not poses or not challenge:
        return [], None
    mid_yaw = statistics.median(p.yaw for p in poses)
    mid_pitch = statistics.median(p.pitch for p in poses)
    yaw_side, pitch_side = turn_deg / 4, nod_deg / 4
    seen: list[Move] = []
    lo_yaw = hi_yaw = poses[0].yaw
    lo_pitch = hi_pitch = poses[0].pitch
    for pose in poses:
        lo_yaw, hi_yaw = min(lo_yaw, pose.yaw), max(hi_yaw, pose.yaw)
        lo_pitch, hi_pitch = min(lo_pitch, pose.pitch), max(hi_pitch, pose.pitch)
        target = challenge[len(seen)]
        # The pitch read from five landmarks drifts when the head is turned far aside:
        # a nod counts only while the head faces about forward.
        facing = abs(pose.yaw - mid_yaw) < turn_deg
        done = {
            Move.LEFT: pose.yaw - lo_yaw >= turn_deg and pose.yaw >= mid_yaw + yaw_side,
            Move.RIGHT: hi_yaw - pose.yaw >= turn_deg and pose.yaw <= mid_yaw - yaw_side,
            Move.DOWN: (facing and pose.pitch - lo_pitch >= nod_deg
                        and pose.pitch >= mid_pitch + pitch_side),
            Move.UP: (facing and hi_pitch - pose.pitch >= nod_deg
                      and pose.pitch <= mid_pitch - pitch_side),
        }[target]
        if done:
            seen.append(target)
            if len(seen) == len(challenge):
                return seen, pose.time_s
            lo_yaw = hi_yaw = pose.yaw
            lo_pitch = hi_pitch = pose.pitch
    return seen, None


def largest_landmark_shift(poses: Sequence[FramePose]) -> float:
    """The largest shift of any landmark from the first frame, in eye distances."""
    first = np.asarray(poses[0].landmarks)
    eye = max(poses[0].eye_px, 1.0)
    return max(float(np.abs(np.asarray(p.landmarks) - first).max()) for p in poses) / eye


def frame_agreement(templates: Sequence[Template]) -> float:
    """How well the frames' templates hold together: the weakest link of their maximum
    spanning tree (1.0 for a single frame). Below the match threshold, the frames fall
    into groups that are not the same face (``groups_at``)."""
    if len(templates) < 2:
        return 1.0
    vectors = np.stack([t.vector for t in templates]).astype(np.float32)
    sims = vectors @ vectors.T
    # Prim's algorithm on similarities: the weakest edge the tree cannot avoid.
    in_tree = np.zeros(len(templates), bool)
    in_tree[0] = True
    best = sims[0].copy()
    weakest = 1.0
    for _ in range(len(templates) - 1):
        candidates = np.where(in_tree, -np.inf, best)
        j = int(np.argmax(candidates))
        weakest = min(weakest, float(candidates[j]))
        in_tree[j] = True
        best = np.maximum(best, sims[j])
    return weakest


def unlike(templates: Sequence[Template], matched: int, floor: float) -> list[int]:
    """The frames whose face resembles ``templates[matched]`` less than ``floor``."""
    anchor = templates[matched]
    return [i for i, t in enumerate(templates) if t.similarity(anchor) < floor]


def groups_at(templates: Sequence[Template], threshold: float) -> list[list[int]]:
    """Frames linked (directly or through other frames) at ``threshold`` or above,
    largest group first."""
    vectors = np.stack([t.vector for t in templates]).astype(np.float32)
    linked = (vectors @ vectors.T) >= threshold
    groups: list[list[int]] = []
    unseen = set(range(len(templates)))
    while unseen:
        stack = [min(unseen)]
        unseen.discard(stack[0])
        group = []
        while stack:
            i = stack.pop()
            group.append(i)
            for j in [j for j in unseen if linked[i, j]]:
                unseen.discard(j)
                stack.append(j)
        groups.append(sorted(group))
    return sorted(groups, key=len, reverse=True)


def _span(values: Sequence[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (0.0, 0.0)


def _names(moves: Sequence[Move]) -> str:
    return ", ".join(m.value for m in moves) or "no move"


def _frames(indexes: Sequence[int], poses: Sequence[FramePose]) -> str:
    numbers = [poses[i].index + 1 for i in indexes]
    shown = ", ".join(map(str, numbers[:8]))
    return shown + (", ..." if len(numbers) > 8 else "")


def judge(poses: Sequence[FramePose], templates: Sequence[Template], frames: int,
          challenge: Sequence[Move], *, threshold: float, turn_deg: float, nod_deg: float,
          time_limit_s: float, still_motion: float, matched: int = 0,
          same_face_min: float = 0.0) -> Liveness:
    """The liveness of a capture from the pose and template of each frame with a face
    (``poses[i]`` and ``templates[i]`` are of the same frame; ``frames`` counts every
    frame, with a face or not; ``templates[matched]`` is the one compared with the
    document)."""
    reasons: list[str] = []
    yaws, pitches = [p.yaw for p in poses], [p.pitch for p in poses]
    yaw_range, pitch_range = _span(yaws), _span(pitches)
    turned = (yaw_range[1] - yaw_range[0] >= turn_deg
              or pitch_range[1] - pitch_range[0] >= nod_deg)
    shift = largest_landmark_shift(poses)
    if shift < still_motion:
        reasons.append(f"still image: the face did not move between frames (largest "
                       f"landmark shift {shift:.3f} eye distances, needs {still_motion})")
    elif not turned and _moved_flat(poses):
        reasons.append(
            "flat picture: the face moved in the frame but never turned (yaw stayed within "
            f"{yaw_range[0]:+.0f}..{yaw_range[1]:+.0f} deg, pitch within "
            f"{pitch_range[0]:+.0f}..{pitch_range[1]:+.0f} deg): a photo or screen moved "
            "in front of the camera")
    seen, done_at = moves_in_order(poses, challenge, turn_deg, nod_deg)
    if len(seen) < len(challenge):
        missing = challenge[len(seen)]
        reasons.append(
            f"challenge not followed: asked {_names(challenge)}; saw {_names(seen)} "
            f"(no '{missing.value}' move after that; yaw ranged "
            f"{yaw_range[0]:+.0f}..{yaw_range[1]:+.0f} deg, pitch "
            f"{pitch_range[0]:+.0f}..{pitch_range[1]:+.0f} deg)")
    elapsed = None if done_at is None else done_at - poses[0].time_s
    if elapsed is not None and elapsed > time_limit_s:
        reasons.append(f"too slow: the moves took {elapsed:.1f} s, the limit is "
                       f"{time_limit_s:g} s")
    weakest = frame_agreement(templates)
    if weakest < threshold:
        groups = groups_at(templates, threshold)
        reasons.append(
            f"more than one face: frames {_frames(groups[0], poses)} and "
            f"{_frames(groups[1], poses)} are not the same face (weakest link "
            f"{weakest:.3f}, below {threshold:.3f})")
    strangers = unlike(templates, matched, same_face_min)
    if strangers:
        lowest = min(templates[i].similarity(templates[matched]) for i in strangers)
        reasons.append(
            f"more than one face: frames {_frames(strangers, poses)} are not the face "
            f"compared with the document (frame {poses[matched].index + 1}; similarity as "
            f"low as {lowest:.3f}, needs {same_face_min:.3f}): another person's moves, or "
            "a face spliced or morphed in")
    return Liveness(passed=not reasons, reasons=tuple(reasons), challenge=tuple(challenge),
                    moves_seen=tuple(seen), frames=frames, frames_with_face=len(poses),
                    yaw_range=yaw_range, pitch_range=pitch_range, elapsed_s=elapsed,
                    frame_agreement=weakest)


def _moved_flat(poses: Sequence[FramePose]) -> bool:
    """Whether the face moved in the image (position, size or roll changed)."""
    first = poses[0]
    eye = max(first.eye_px, 1.0)
    shift = max(float(np.hypot(p.centre[0] - first.centre[0], p.centre[1] - first.centre[1]))
                for p in poses) / eye
    scale = max(abs(p.eye_px / eye - 1.0) for p in poses)
    roll = max(p.roll for p in poses) - min(p.roll for p in poses)
    return shift > FLAT_SHIFT or scale > FLAT_SCALE or roll > FLAT_ROLL_DEG
