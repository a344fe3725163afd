"""Exact search in memory with NumPy: the embedded default.

Vectors live in one preallocated float32 matrix that grows by doubling; removal swaps
the last row into the hole so the matrix stays dense and a query is one matrix product.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from frvs.storage.index.base import IdArray, Matrix, SearchResult, check_vectors

_QUERY_BLOCK = 256
_ROW_BLOCK = 32_768


class ExactIndex:
    """Brute-force inner-product search; exact, thread-safe, O(n) per query."""

    def __init__(self, dimension: int, capacity: int = 1024) -> None:
        self._dimension = dimension
        self._vectors = np.zeros((max(1, capacity), dimension), dtype=np.float32)
        self._ids = np.zeros(max(1, capacity), dtype=np.int64)
        self._size = 0
        self._row_of: dict[int, int] = {}
        self._lock = threading.RLock()

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, ids: Sequence[int] | IdArray, vectors: Matrix) -> None:
        vecs = check_vectors(vectors, self._dimension)
        id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        if len(id_list) != len(vecs):
            raise ValueError(f"{len(id_list)} ids for {len(vecs)} vectors")
        with self._lock:
            self.remove([i for i in id_list if i in self._row_of])
            self._reserve(self._size + len(id_list))
            start = self._size
            self._vectors[start : start + len(id_list)] = vecs
            self._ids[start : start + len(id_list)] = id_list
            for offset, ident in enumerate(id_list):
                self._row_of[ident] = start + offset
            self._size += len(id_list)

    def remove(self, ids: Sequence[int] | IdArray) -> None:
        with self._lock:
            for raw in np.asarray(ids, dtype=np.int64).reshape(-1):
                row = self._row_of.pop(int(raw), None)
                if row is None:
                    continue
                last = self._size - 1
                if row != last:
                    self._vectors[row] = self._vectors[last]
                    moved = int(self._ids[last])
                    self._ids[row] = moved
                    self._row_of[moved] = row
                self._size = last

    def search(self, queries: Matrix, k: int) -> SearchResult:
        q = check_vectors(queries, self._dimension, "queries")
        n = q.shape[0]
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        with self._lock:
            size = self._size
            if size == 0 or k <= 0:
                return SearchResult(scores, ids)
            take = min(k, size)
            for start in range(0, n, _QUERY_BLOCK):
                rows = slice(start, start + _QUERY_BLOCK)
                best, scores[rows, :take] = self._top(q[rows], take)
                # Rows move on removal, so ids are read under the lock.
                ids[rows, :take] = self._ids[best]
        return SearchResult(scores, ids)

    def _top(self, q: Matrix, take: int) -> tuple[IdArray, Matrix]:
        """Rows and scores of the ``take`` best templates for each query, best first.

        The gallery is scored in blocks of rows, keeping the best ``take`` of each: the
        score matrix stays small (at most 8M scores, 32 MB) however large the
        gallery, and each block is read once for all the queries of a batch. One query
        over 1M x 128 still reads 512 MB: memory bandwidth, not arithmetic, bounds it.
        """
        size = self._size
        best_rows = np.empty((len(q), 0), dtype=np.int64)
        best_scores = np.empty((len(q), 0), dtype=np.float32)
        # Fewer queries, longer blocks: one query scores the whole gallery in one call.
        rows = _ROW_BLOCK * _QUERY_BLOCK // len(q)
        for start in range(0, size, rows):
            block = self._vectors[start : min(size, start + rows)]
            sims = (block @ q[0])[None, :] if len(q) == 1 else q @ block.T
            if take < sims.shape[1]:
                # The best ``take`` land at the end: no negated copy of ``sims``.
                cut = sims.shape[1] - take
                part = np.argpartition(sims, cut, axis=1)[:, cut:]
                sims = np.take_along_axis(sims, part, axis=1)
            else:
                part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
            best_rows = np.concatenate([best_rows, part + start], axis=1)
            best_scores = np.concatenate([best_scores, sims], axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")[:, :take]
        return np.take_along_axis(best_rows, order, axis=1), np.take_along_axis(
            best_scores, order, axis=1
        )

    def count(self) -> int:
        with self._lock:
            return self._size

    def ids(self) -> IdArray:
        with self._lock:
            return self._ids[: self._size].copy()

    def _reserve(self, needed: int) -> None:
        capacity = self._vectors.shape[0]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        vectors = np.zeros((capacity, self._dimension), dtype=np.float32)
        vectors[: self._size] = self._vectors[: self._size]
        ids = np.zeros(capacity, dtype=np.int64)
        ids[: self._size] = self._ids[: self._size]
        self._vectors, self._ids = vectors, ids
