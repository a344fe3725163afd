"""The vector index port. Every implementation passes ``tests/contract/test_vector_index.py``.

An index holds L2-normalised float32 vectors of one model space, keyed by int64 ids
(the store's template ids), and answers inner-product (= cosine) top-k queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from frvs.core.errors import InvalidRecordError

Matrix = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Top-k for each query: (n, k) scores, best first, and ids; -1 pads missing entries."""

    scores: Matrix
    ids: IdArray


class VectorIndex(Protocol):
    """Add, remove, search, count. Writes are visible to the next search."""

    @property
    def dimension(self) -> int: ...

    def add(self, ids: Sequence[int] | IdArray, vectors: Matrix) -> None:
        """Insert vectors; re-adding an existing id replaces its vector."""
        ...

    def remove(self, ids: Sequence[int] | IdArray) -> None:
        """Delete vectors by id; unknown ids are ignored."""
        ...

    def search(self, queries: Matrix, k: int) -> SearchResult:
        """The k most similar vectors for each row of ``queries``."""
        ...

    def count(self) -> int:
        """How many vectors the index holds."""
        ...

    def ids(self) -> IdArray:
        """Every id the index holds, in no particular order (for catching up with the
        store by difference instead of rebuilding)."""
        ...


def check_vectors(vectors: Matrix, dimension: int, what: str = "vectors") -> Matrix:
    """Validate an (n, dimension) float32 matrix; raise with expected-versus-actual."""
    arr = np.asarray(vectors)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dimension:
        raise InvalidRecordError(f"{what} must have shape (n, {dimension}), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)
