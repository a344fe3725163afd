"""Templates: face feature vectors tagged with the model space that made them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from frvs.core.errors import InvalidRecordError, ModelSpaceMismatchError

Vector = npt.NDArray[np.float32]


class Metric(StrEnum):
    """How two templates of a space are compared; scores are always 'higher = more alike'."""

    COSINE = "cosine"


@dataclass(frozen=True, slots=True)
class ModelSpace:
    """The space a template lives in. Templates are comparable only within one space."""

    pack: str
    version: str
    dimension: int
    metric: Metric = Metric.COSINE

    def __post_init__(self) -> None:
        if self.dimension <= 0:
            raise InvalidRecordError(f"dimension must be > 0, got {self.dimension}")

    @property
    def key(self) -> str:
        """A stable string naming the space, used to key stored vectors."""
        return f"{self.pack}@{self.version}/{self.dimension}/{self.metric.value}"


_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """An L2-normalised float32 vector and the model space that produced it."""

    vector: Vector
    space: ModelSpace

    def __post_init__(self) -> None:
        v = self.vector
        if not isinstance(v, np.ndarray) or v.dtype != np.float32 or v.ndim != 1:
            raise InvalidRecordError(
                f"template vector must be a 1-D float32 array, got "
                f"{type(v).__name__} {getattr(v, 'dtype', None)} ndim={getattr(v, 'ndim', None)}"
            )
        if v.shape[0] != self.space.dimension:
            raise InvalidRecordError(
                f"template of {self.space.key} must have {self.space.dimension} values, "
                f"got {v.shape[0]}"
            )
        norm = float(np.linalg.norm(v))
        if abs(norm - 1.0) > _NORM_TOLERANCE:
            raise InvalidRecordError(f"template vector must be L2-normalised, norm is {norm:.4f}")

    @classmethod
    def from_raw(cls, raw: npt.ArrayLike, space: ModelSpace) -> Template:
        """Normalise a raw embedding and wrap it; a zero or non-finite vector is refused."""
        v = np.asarray(raw, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(v))
        if not np.isfinite(norm) or norm == 0.0:
            raise InvalidRecordError(f"cannot normalise an embedding of norm {norm}")
        return cls((v / norm).astype(np.float32), space)

    def similarity(self, other: Template) -> float:
        """Similarity in [-1, 1]; raises when the two come from different spaces."""
        ensure_same_space(self.space, other.space)
        return float(np.dot(self.vector, other.vector))


def ensure_same_space(a: ModelSpace, b: ModelSpace) -> None:
    """Raise ``ModelSpaceMismatchError`` unless ``a`` and ``b`` are the same space."""
    if a != b:
        raise ModelSpaceMismatchError(
            f"templates from different model spaces cannot be compared: {a.key} vs {b.key}"
        )
