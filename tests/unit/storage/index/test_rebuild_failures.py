"""A rebuild that fails half-way (memory runs out when it peaks) never leaves an index
answering with the wrong ids: HNSW keeps its old graph, fast-scan empties itself."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss", reason="faiss not installed: pip install 'frvs[faiss]'")

from synthetic_faces import face_like

from frvs.storage.index import faiss_pq
from frvs.storage.index.faiss_index import FaissIndex
from frvs.storage.index.faiss_pq import FaissPQIndex


def test_hnsw_keeps_answering_right_when_its_rebuild_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = face_like(np.random.default_rng(1), 400)
    index = FaissIndex(128, rebuild_ratio=0.5)
    index.add(np.arange(400), vectors)
    index.remove(np.arange(0, 150))

    def out_of_memory(self: FaissIndex) -> object:
        raise MemoryError("graph")

    monkeypatch.setattr(FaissIndex, "_new_graph", out_of_memory)
    with pytest.raises(MemoryError):
        index.remove(np.arange(150, 260))  # past half dead: the rebuild fails
    monkeypatch.undo()
    found = index.search(vectors[300:310], 1).ids[:, 0]
    assert found.tolist() == list(range(300, 310))
    assert index.count() == 140
    assert not np.isin(index.search(vectors[:20], 5).ids, np.arange(260)).any()


def test_fast_scan_empties_itself_when_its_compaction_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = face_like(np.random.default_rng(2), 400)
    index = FaissPQIndex(128, train_size=256, rebuild_ratio=0.5)
    index.add(np.arange(400), vectors)

    def out_of_memory(self: object, keep: np.ndarray) -> object:
        raise MemoryError("rows")

    monkeypatch.setattr(faiss_pq._Rows, "compacted", out_of_memory)
    with pytest.raises(MemoryError):
        index.remove(np.arange(0, 250))
    monkeypatch.undo()
    assert index.count() == 0  # the catalog sees the count differ and reloads it
    assert index.search(vectors[:3], 2).ids.tolist() == [[-1, -1]] * 3
    index.add(np.arange(250, 400), vectors[250:])
    assert index.search(vectors[300:301], 1).ids.tolist() == [[300]]
