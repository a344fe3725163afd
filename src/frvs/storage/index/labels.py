"""Which id each position (label) of an append-only FAISS index holds, and which are alive.

FAISS's HNSW and fast-scan indexes cannot delete in place, so both FAISS-backed indexes
tombstone: a removed or replaced vector keeps its label, marked dead, until a rebuild
compacts the live ones. Ids are kept in a NumPy array indexed by label rather than a
dict: a dict costs about 100 bytes an entry (1 GB at 10M), the array 8. Finding the label
of an id is then a vectorised scan (milliseconds at 10M), needed only by ``remove`` and by
re-adding an id not above every id seen so far; the store hands out increasing ids, so a
fresh enrolment never scans.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from frvs.core.errors import InvalidRecordError
from frvs.storage.index.base import IdArray, Matrix, SearchResult, check_vectors

BoolArray = npt.NDArray[np.bool_]


def positive(what: str, value: int) -> int:
    """``value`` if it is at least 1: the check of every query-time knob."""
    if value < 1:
        raise InvalidRecordError(f"{what} must be positive, got {value}")
    return value


def last_of_each_id(ids: Sequence[int] | IdArray, vectors: Matrix) -> tuple[IdArray, Matrix]:
    """Drop earlier rows of an id repeated within one batch, as if added one by one."""
    id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(id_arr) != len(vectors):
        raise InvalidRecordError(f"{len(id_arr)} ids for {len(vectors)} vectors")
    _, last_first = np.unique(id_arr[::-1], return_index=True)
    keep = np.sort(len(id_arr) - 1 - last_first)
    return id_arr[keep], vectors[keep]


class LabelTable:
    """Label -> id, and a live mask, for an index whose labels are 0, 1, 2... in add order."""

    def __init__(self) -> None:
        self._id_of_label = np.zeros(1024, dtype=np.int64)
        self._alive = np.zeros(1024, dtype=bool)
        self.total = 0  # labels handed out, dead ones included
        self.live = 0
        self._max_id = np.iinfo(np.int64).min

    @classmethod
    def restored(cls, ids: IdArray, alive: BoolArray) -> LabelTable:
        """A table holding ``ids`` at labels 0.. with the live mask ``alive`` (a snapshot)."""
        if ids.shape != alive.shape or ids.ndim != 1:
            raise InvalidRecordError(f"{ids.shape} ids for a live mask of {alive.shape}")
        table = cls()
        table._reserve(len(ids))
        table._id_of_label[: len(ids)] = ids
        table._alive[: len(ids)] = alive
        table.total, table.live = len(ids), int(np.count_nonzero(alive))
        if len(ids):
            table._max_id = int(ids.max())
        return table

    @property
    def id_of_label(self) -> IdArray:
        """The id at every label handed out, dead ones included (a view)."""
        return self._id_of_label[: self.total]

    @property
    def alive(self) -> BoolArray:
        """The live mask of every label handed out (a view: do not keep it across writes)."""
        return self._alive[: self.total]

    def ids_of(self, labels: IdArray) -> IdArray:
        """The ids held at ``labels`` (which must be valid labels)."""
        return self._id_of_label[labels]

    def append(self, ids: IdArray) -> int:
        """Tombstone earlier labels of ``ids``, then label them anew; returns the first label."""
        if len(ids) and int(ids.min()) <= self._max_id:
            self.kill(self.labels_of(ids))
        start = self.total
        self._reserve(start + len(ids))
        self._id_of_label[start : start + len(ids)] = ids
        self._alive[start : start + len(ids)] = True
        self.total += len(ids)
        self.live += len(ids)
        if len(ids):
            self._max_id = max(self._max_id, int(ids.max()))
        return start

    def live_ids(self) -> IdArray:
        """The ids of every live label."""
        return self._id_of_label[np.flatnonzero(self.alive)]

    def labels_of(self, ids: IdArray) -> IdArray:
        """Live labels holding any of ``ids`` (a vectorised scan, see the module notes)."""
        hits = np.isin(self._id_of_label[: self.total], ids) & self.alive
        return np.flatnonzero(hits).astype(np.int64)

    def kill(self, labels: IdArray) -> None:
        """Mark live ``labels`` dead."""
        if len(labels) == 0:
            return
        self._alive[labels] = False
        self.live -= len(labels)

    def dead_share(self) -> float:
        """Dead labels as a share of all labels handed out."""
        return 0.0 if self.total == 0 else (self.total - self.live) / self.total

    def compact(self) -> IdArray:
        """Relabel the live entries 0..live-1 in order; returns their old labels."""
        live_labels = np.flatnonzero(self.alive).astype(np.int64)
        id_of_label = np.zeros(max(1024, len(live_labels)), dtype=np.int64)
        id_of_label[: len(live_labels)] = self._id_of_label[live_labels]
        alive = np.zeros(len(id_of_label), dtype=bool)
        alive[: len(live_labels)] = True
        self._id_of_label, self._alive = id_of_label, alive
        self.total = self.live = len(live_labels)
        return live_labels

    def nbytes(self) -> int:
        """Bytes held by the two arrays."""
        return int(self._id_of_label.nbytes + self._alive.nbytes)

    def _reserve(self, needed: int) -> None:
        capacity = len(self._id_of_label)
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        id_of_label = np.zeros(capacity, dtype=np.int64)
        id_of_label[: self.total] = self._id_of_label[: self.total]
        alive = np.zeros(capacity, dtype=bool)
        alive[: self.total] = self._alive[: self.total]
        self._id_of_label, self._alive = id_of_label, alive


class TombstoneOptions(BaseModel):
    """The option every tombstoning index has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rebuild_ratio: float = Field(
        0.25,
        gt=0.0,
        le=1.0,
        title="Tombstone share that triggers a rebuild",
        description="Removed or replaced vectors stay as tombstones until they exceed this "
        "share of the index. Lower keeps queries and memory lean after many deletions but "
        "rebuilds more often; a rebuild (a full HNSW build, or a fast-scan compaction and "
        "re-encode: about 15 s at 10M) blocks writes and searches of this gallery.",
    )


class TombstoneIndex:
    """What the FAISS-backed indexes share: a lock, the label table, count and ids,
    removal by tombstone, and a rebuild once tombstones pass ``rebuild_ratio``.
    Subclasses store vectors (``_append``), search, and ``rebuild``."""

    def __init__(self, dimension: int, rebuild_ratio: float) -> None:
        if dimension < 1:
            raise InvalidRecordError(f"dimension must be positive, got {dimension}")
        self._dimension = dimension
        self._rebuild_ratio = rebuild_ratio
        self._lock = threading.RLock()
        self._labels = LabelTable()

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, ids: Sequence[int] | IdArray, vectors: Matrix) -> None:
        id_arr, vecs = last_of_each_id(ids, check_vectors(vectors, self._dimension))
        if len(id_arr) == 0:
            return
        with self._lock:
            start = self._labels.append(id_arr)
            self._labels_changed()
            self._append(start, vecs)
            self._maybe_rebuild()

    def remove(self, ids: Sequence[int] | IdArray) -> None:
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(id_arr) == 0:
            return
        with self._lock:
            self._labels.kill(self._labels.labels_of(id_arr))
            self._labels_changed()
            self._maybe_rebuild()

    def count(self) -> int:
        with self._lock:
            return self._labels.live

    def ids(self) -> IdArray:
        with self._lock:
            return self._labels.live_ids()

    def search(self, queries: Matrix, k: int) -> SearchResult:
        """The ``k`` best live ids per query (fewer live: the rest -1 with score -inf)."""
        q = check_vectors(queries, self._dimension, "queries")
        n = q.shape[0]
        scores = np.full((n, max(k, 0)), -np.inf, dtype=np.float32)
        ids = np.full((n, max(k, 0)), -1, dtype=np.int64)
        with self._lock:
            take = min(k, self._labels.live)
            if take <= 0 or n == 0:
                return SearchResult(scores, ids)
            labels, found_scores = self._search_labels(q, take)
            found = labels >= 0
            ids[:, :take] = np.where(found, self._labels.ids_of(np.maximum(labels, 0)), -1)
        scores[:, :take] = np.where(found, found_scores, -np.inf)
        return SearchResult(scores, ids)

    def rebuild(self) -> None:
        """Drop every tombstone (a subclass re-stores its live vectors)."""
        raise NotImplementedError

    def _search_labels(self, queries: Matrix, take: int) -> tuple[IdArray, Matrix]:
        """The ``take`` best labels per query and their scores (label -1: none), under
        the lock, with at least ``take`` live labels."""
        raise NotImplementedError

    def _append(self, first_label: int, vectors: Matrix) -> None:
        """Store ``vectors`` under labels ``first_label``, ``first_label + 1``, ..."""
        raise NotImplementedError

    def _labels_changed(self) -> None:
        """Labels were added or killed: forget anything derived from the live set."""

    def _maybe_rebuild(self) -> None:
        if self._labels.dead_share() > self._rebuild_ratio:
            self.rebuild()
