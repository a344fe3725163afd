"""Synthetic templates with the default pack's score statistics, for index and threshold
tests: impostor cosines near 0.13 +- 0.1 (a shared direction weighted about 0.36, the
rest random), the shape on which graphs and partitions fail and 1:N thresholds drift."""

from __future__ import annotations

import numpy as np


def face_like(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray:
    """``n`` unit templates of ``n`` different people."""
    s = np.clip(rng.normal(0.355, 0.07, n), 0.0, 0.95).astype(np.float32)
    r = rng.standard_normal((n, dim)).astype(np.float32)
    r[:, 0] = 0.0
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    r *= np.sqrt(1.0 - s**2)[:, None]
    r[:, 0] = s
    return r


def mated(rng: np.random.Generator, mates: np.ndarray, noise: float) -> np.ndarray:
    """Another template of each row's person: noise 0.12 a dimension gives cosine ~0.6."""
    probes = mates + rng.standard_normal(mates.shape).astype(np.float32) * noise
    return probes / np.linalg.norm(probes, axis=1, keepdims=True)
