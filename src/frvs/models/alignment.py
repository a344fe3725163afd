"""Five-point face alignment onto the canonical 112x112 ArcFace/SFace template."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from frvs.core.geometry import Landmarks
from frvs.imaging.decode import BGRImage

ALIGNED_SIZE = 112

# Where the five landmarks sit in the aligned 112x112 crop (ArcFace's reference points,
# which SFace was trained on), in LANDMARK_NAMES order.
CANONICAL_LANDMARKS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(
    source: npt.NDArray[np.float64], target: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Least-squares similarity transform (rotation, uniform scale, shift) from source to target.

    Umeyama's closed form. Written here because OpenCV's ``estimateAffinePartial2D`` is a
    robust (RANSAC/LMedS) estimator that may drop landmarks; with five trusted points the
    plain least-squares fit is what the embedder was trained with.
    """
    n = source.shape[0]
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    cs, ct = source - mean_s, target - mean_t
    covariance = ct.T @ cs / n
    u, singular, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    variance = (cs**2).sum() / n
    scale = float((singular * d).sum() / variance) if variance > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_t - scale * rotation @ mean_s
    return matrix


def align_face(image: BGRImage, landmarks: Landmarks, size: int = ALIGNED_SIZE) -> BGRImage:
    """Warp ``image`` so the landmarks land on the canonical template, as a size x size crop."""
    target = CANONICAL_LANDMARKS * (size / ALIGNED_SIZE)
    matrix = similarity_transform(landmarks.points.astype(np.float64), target)
    aligned = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return np.asarray(aligned, dtype=np.uint8)
