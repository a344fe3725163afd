"""Face quality: the measurable reasons a face may be unfit to enrol or compare.

The overall score is a product of saturating sub-scores, so one very bad factor (a
blurred, tiny or profile face) pulls it down whatever the others say.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from frvs.core.detections import FaceDetection
from frvs.imaging.decode import BGRImage


@dataclass(frozen=True, slots=True)
class PoseEstimate:
    """Head pose in degrees, estimated from the five landmarks (coarse, about +-10 deg)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """Per-face quality measurements and the overall score in [0, 1]."""

    detector_score: float
    face_size_px: float
    inter_eye_px: float
    sharpness: float
    brightness: float
    contrast: float
    pose: PoseEstimate
    overall: float

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in data.items()} | {
            "pose": {k: round(v, 1) for k, v in asdict(self.pose).items()}
        }


@dataclass(frozen=True, slots=True)
class QualityMinimums:
    """Thresholds below which a face is refused for enrolment (and flagged elsewhere)."""

    detector_score: float = 0.7
    face_size_px: float = 40.0
    inter_eye_px: float = 16.0
    sharpness: float = 15.0
    max_abs_yaw: float = 50.0
    max_abs_pitch: float = 40.0
    overall: float = 0.25


def estimate_pose(face: FaceDetection) -> PoseEstimate:
    """Yaw, pitch and roll from the landmark geometry of a frontal-template face.

    Yaw: how far the nose sits from the eyes' midline, relative to the eye distance.
    Pitch: where the nose sits between the eye line and the mouth line (about 0.45 frontal).
    Roll: the angle of the eye line.
    """
    p = face.landmarks.points.astype(np.float64)
    right_eye, left_eye, nose, mouth_r, mouth_l = p
    eye_mid = (right_eye + left_eye) / 2
    mouth_mid = (mouth_r + mouth_l) / 2
    eye_vec = left_eye - right_eye
    eye_dist = float(np.linalg.norm(eye_vec)) or 1.0
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    axis = eye_vec / eye_dist
    lateral = float(np.dot(nose - eye_mid, axis)) / eye_dist
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * lateral))))
    normal = np.array([-axis[1], axis[0]])
    face_height = float(np.dot(mouth_mid - eye_mid, normal)) or 1.0
    ratio = float(np.dot(nose - eye_mid, normal)) / face_height
    pitch = (ratio - 0.45) * 120.0
    return PoseEstimate(yaw=yaw, pitch=pitch, roll=roll)


def _ramp(value: float, low: float, high: float) -> float:
    """0 at ``low`` or below, 1 at ``high`` or above, linear between."""
    if high <= low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


def assess_quality(face: FaceDetection, aligned: BGRImage) -> FaceQuality:
    """Measure ``face`` (as detected) and its aligned crop."""
    gray = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    # Only the central part of the crop: the corners are background or warp padding.
    h, w = gray.shape
    core = gray[h // 6 : h - h // 8, w // 6 : w - w // 6]
    sharpness = float(cv2.Laplacian(core, cv2.CV_64F).var())
    brightness = float(core.mean())
    contrast = float(core.std())
    size = float(min(face.box.w, face.box.h))
    eyes = face.landmarks.inter_eye_distance
    pose = estimate_pose(face)
    frontal = 1.0 - _ramp(max(abs(pose.yaw), abs(pose.pitch) * 1.2), 20.0, 70.0)
    exposure = 1.0 - _ramp(abs(brightness - 128.0), 70.0, 120.0)
    overall = (
        _ramp(face.score, 0.5, 0.9)
        * _ramp(eyes, 8.0, 40.0)
        * _ramp(sharpness, 5.0, 80.0) ** 0.5
        * _ramp(contrast, 8.0, 35.0) ** 0.5
        * frontal
        * exposure
    )
    return FaceQuality(
        detector_score=face.score,
        face_size_px=size,
        inter_eye_px=eyes,
        sharpness=sharpness,
        brightness=brightness,
        contrast=contrast,
        pose=pose,
        overall=overall,
    )


def quality_shortfalls(quality: FaceQuality, minimums: QualityMinimums) -> list[str]:
    """Human-readable reasons ``quality`` falls below ``minimums``; empty when it passes."""
    checks = [
        (quality.detector_score < minimums.detector_score, "detector score",
         quality.detector_score, f">= {minimums.detector_score}"),
        (quality.face_size_px < minimums.face_size_px, "face size",
         quality.face_size_px, f">= {minimums.face_size_px} px"),
        (quality.inter_eye_px < minimums.inter_eye_px, "inter-eye distance",
         quality.inter_eye_px, f">= {minimums.inter_eye_px} px"),
        (quality.sharpness < minimums.sharpness, "sharpness",
         quality.sharpness, f">= {minimums.sharpness}"),
        (abs(quality.pose.yaw) > minimums.max_abs_yaw, "yaw",
         quality.pose.yaw, f"within +-{minimums.max_abs_yaw} deg"),
        (abs(quality.pose.pitch) > minimums.max_abs_pitch, "pitch",
         quality.pose.pitch, f"within +-{minimums.max_abs_pitch} deg"),
        (quality.overall < minimums.overall, "overall quality",
         quality.overall, f">= {minimums.overall}"),
    ]
    return [f"{name} {value:.2f} (needs {need})" for failed, name, value, need in checks if failed]
