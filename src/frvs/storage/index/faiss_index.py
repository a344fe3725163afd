"""Approximate search with a FAISS HNSW graph (the ``faiss`` extra).

HNSW answers a query in roughly logarithmic time by walking a layered neighbour graph,
which keeps a 10M gallery in the low milliseconds where exact search takes a second.

HNSW cannot delete a node from its graph, so removal is a tombstone: the label is marked
dead and a search skips it with an ``IDSelectorBitmap`` while the graph still routes
through it. Filtering during the walk (rather than over-fetching and dropping) always
returns k live results when there are k. When dead labels exceed ``rebuild_ratio`` of
the graph, the live vectors are re-inserted into a fresh graph: tombstones cost memory
and make every walk longer, a rebuild costs a full build (minutes at 10M), so the ratio
trades the one against the other. Re-adding an id tombstones its old label.

Label bookkeeping is ``LabelTable``'s, shared with the fast-scan index.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import numpy as np
from pydantic import Field

from frvs.core.errors import ConfigurationError
from frvs.storage.index.base import IdArray, Matrix
from frvs.storage.index.labels import TombstoneIndex, TombstoneOptions, positive

logger = logging.getLogger(__name__)

_REBUILD_CHUNK = 262_144


def import_faiss() -> ModuleType:
    """The ``faiss`` module, or an error that says how to install it."""
    try:
        import faiss  # optional backend: imported only when chosen
    except ImportError as exc:
        raise ConfigurationError(
            "the faiss vector index needs FAISS: pip install 'frvs[faiss]'"
        ) from exc
    return faiss


class FaissOptions(TombstoneOptions):
    """HNSW parameters; every one trades speed or memory against recall."""

    m: int = Field(
        32,
        ge=4,
        le=128,
        title="Graph degree (M)",
        description="Neighbours per node. Raising it improves recall on large or clustered "
        "galleries but costs 8*M bytes a vector and slows building and each query step.",
    )
    ef_construction: int = Field(
        80,
        ge=8,
        le=1024,
        title="Build beam width (efConstruction)",
        description="Candidates considered while linking a new vector. Higher builds a "
        "better graph (recall at the same efSearch) but makes inserts slower, roughly "
        "linearly.",
    )
    ef_search: int = Field(
        512,
        ge=1,
        le=4096,
        title="Query beam width (efSearch)",
        description="Candidates kept while searching (at least k). The main recall knob: "
        "doubling it roughly doubles query time and closes much of the remaining gap "
        "to exact search. SFace-like galleries are hard for graphs (impostor scores spread "
        "as in ~120 dimensions): on 100k, efSearch 64/128/256/512 found the mate 86/94/98/"
        "99.7% as often as exact search (benchmarks/search.py, M=32); larger galleries "
        "need more. Settable per index at query time (FaissIndex.ef_search).",
    )


class FaissIndex(TombstoneIndex):
    """HNSW inner-product search over normalised vectors; approximate, thread-safe."""

    def __init__(self, dimension: int, **options: Any) -> None:
        self._faiss = import_faiss()
        self.options = FaissOptions(**options)
        super().__init__(dimension, self.options.rebuild_ratio)
        self._index: Any = self._new_graph()
        self._selector: tuple[Any, Any] | None = None  # (bitmap, IDSelector) kept alive together
        self._ef_search = self.options.ef_search

    @property
    def ef_search(self) -> int:
        """The query beam width; a query-time knob, so changing it needs no rebuild."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = positive("ef_search", value)

    def _append(self, first_label: int, vectors: Matrix) -> None:
        # FAISS numbers vectors in add order, which is what makes them our labels.
        assert first_label == self._index.ntotal, (first_label, self._index.ntotal)
        self._index.add(vectors)

    def _labels_changed(self) -> None:
        self._selector = None

    def _search_labels(self, queries: Matrix, take: int) -> tuple[IdArray, Matrix]:
        params = self._faiss.SearchParametersHNSW()
        params.efSearch = max(self._ef_search, take)
        selector = self._current_selector()
        if selector is not None:
            params.sel = selector
        scores, labels = self._index.search(queries, take, params=params)
        return labels, scores

    def rebuild(self) -> None:
        """Re-insert the live vectors into a fresh graph, dropping every tombstone."""
        with self._lock:
            total = self._labels.total
            live_labels = np.flatnonzero(self._labels.alive)
            graph = self._new_graph()  # built whole before anything is swapped: a failure
            for start in range(0, len(live_labels), _REBUILD_CHUNK):  # leaves the old one
                chunk = live_labels[start : start + _REBUILD_CHUNK]
                graph.add(self._index.reconstruct_batch(chunk))
            self._labels.compact()
            logger.info("rebuilt HNSW graph: %d live of %d", len(live_labels), total)
            self._index = graph
            self._selector = None

    def memory_bytes(self) -> int:
        """Approximate bytes held: vectors, graph links and the id arrays."""
        with self._lock:
            total = int(self._index.ntotal)
            # int32 neighbour slots of every level; sizes only, nothing copied.
            links = int(self._index.hnsw.neighbors.size()) * 4
        return total * self._dimension * 4 + links + self._labels.nbytes()

    def _new_graph(self) -> Any:
        graph = self._faiss.IndexHNSWFlat(
            self._dimension, self.options.m, self._faiss.METRIC_INNER_PRODUCT
        )
        graph.hnsw.efConstruction = self.options.ef_construction
        graph.hnsw.efSearch = self.options.ef_search
        return graph

    def _current_selector(self) -> Any:
        """None while nothing is dead; else a bitmap selector of live labels, cached."""
        total = self._labels.total
        if self._labels.live == total:
            return None
        if self._selector is None:
            bitmap = np.packbits(self._labels.alive, bitorder="little")
            selector = self._faiss.IDSelectorBitmap(total, self._faiss.swig_ptr(bitmap))
            self._selector = (bitmap, selector)
        return self._selector[1]
