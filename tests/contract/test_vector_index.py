"""One contract for every ``VectorIndex``: exact, faiss_pq (fast-scan codes, exact re-rank,
run both before and after it has codes), faiss (HNSW) and milvus (Milvus Lite, and the
embedded Milvus server as its own process: marked slow, it takes 10-30 s to start).

Small literal vectors make each expectation readable; the recall check at the end uses a
few thousand clustered vectors, where an approximate index can actually go wrong.
"""

from __future__ import annotations

import importlib.util
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from frvs.core.errors import InvalidRecordError
from frvs.storage.index.base import VectorIndex
from frvs.storage.index.exact import ExactIndex

MakeIndex = Callable[[int], VectorIndex]

# Four 4-d unit vectors whose similarities to the queries below never tie.
VECTORS = {
    1: [1.0, 0.0, 0.0, 0.0],
    2: [0.6, 0.8, 0.0, 0.0],
    3: [0.0, 0.6, 0.8, 0.0],
    4: [0.0, 0.0, 0.0, 1.0],
}


def _matrix(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def _fill(index: VectorIndex, ids: list[int] | None = None) -> VectorIndex:
    chosen = ids or list(VECTORS)
    index.add(chosen, _matrix([VECTORS[i] for i in chosen]))
    return index


def _needs(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed: pip install 'frvs[{extra}]'")


@pytest.fixture(params=["exact", "faiss_pq_exact", "faiss_pq_codes", "faiss_pq_lists", "faiss",
                        "milvus",
                        pytest.param("milvus_server", marks=pytest.mark.slow)])
def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeIndex]:
    """A factory of fresh, empty indexes of one implementation."""
    made: list[VectorIndex] = []

    def make(dimension: int) -> VectorIndex:
        index: VectorIndex
        if request.param == "exact":
            index = ExactIndex(dimension)
        elif request.param.startswith("faiss_pq"):
            _needs("faiss", "faiss")
            from frvs.storage.index.faiss_pq import FaissPQIndex

            if request.param.endswith("exact"):
                index = FaissPQIndex(dimension)  # these galleries stay below train_size
            elif request.param.endswith("lists"):
                # Codes in 8 inverted lists, every list probed: the contract's answers are
                # exact, and every search goes through the lists, tombstones and re-rank.
                index = FaissPQIndex(dimension, train_size=256, rebuild_ratio=1.0, lists=8,
                                     probes=8)
                primer = _unit_rows(np.random.default_rng(0), 300, dimension)
                index.add(np.arange(-300, 0), primer)
                index.remove(np.arange(-300, 0))
            else:
                # Codes trained on 300 vectors then tombstoned (never compacted away), so
                # every search of the contract goes through scan, tombstones and re-rank.
                index = FaissPQIndex(dimension, train_size=256, rebuild_ratio=1.0)
                primer = _unit_rows(np.random.default_rng(0), 300, dimension)
                index.add(np.arange(-300, 0), primer)
                index.remove(np.arange(-300, 0))
        elif request.param == "faiss":
            _needs("faiss", "faiss")
            from frvs.storage.index.faiss_index import FaissIndex

            index = FaissIndex(dimension)
        elif request.param == "milvus_server":
            from frvs.storage.index.milvus_index import MilvusIndex

            uri = request.getfixturevalue("milvus_server")
            # One collection per index, as each (gallery, space) has its own.
            index = MilvusIndex(dimension, uri=uri, collection=f"c_{uuid.uuid4().hex}")
        else:
            _needs("pymilvus", "milvus")
            _needs("milvus_lite", "milvus")
            from frvs.storage.index.milvus_index import MilvusIndex

            index = MilvusIndex(dimension, path=tmp_path / f"milvus-{len(made)}.db")
        made.append(index)
        return index

    yield make
    for index in made:
        close = getattr(index, "close", None)
        if close is not None:
            close()


@pytest.mark.parametrize(
    ("query", "k", "expected_ids", "expected_scores"),
    [
        ([1.0, 0.0, 0.0, 0.0], 2, [1, 2], [1.0, 0.6]),
        ([0.0, 1.0, 0.0, 0.0], 2, [2, 3], [0.8, 0.6]),
        ([0.0, 0.0, 0.6, 0.8], 2, [4, 3], [0.8, 0.48]),
        ([0.0, 0.0, 0.0, 1.0], 1, [4], [1.0]),
    ],
)
def test_search_returns_most_similar_first(
    make_index: MakeIndex,
    query: list[float],
    k: int,
    expected_ids: list[int],
    expected_scores: list[float],
) -> None:
    result = _fill(make_index(4)).search(_matrix([query]), k)
    assert result.ids.tolist() == [expected_ids]
    np.testing.assert_allclose(result.scores[0], expected_scores, atol=1e-5)


def test_batch_of_queries_answers_each_row(make_index: MakeIndex) -> None:
    result = _fill(make_index(4)).search(_matrix([VECTORS[3], VECTORS[1]]), 1)
    assert result.ids.tolist() == [[3], [1]]


@pytest.mark.parametrize("k", [5, 9])
def test_k_larger_than_count_pads_with_minus_one(make_index: MakeIndex, k: int) -> None:
    result = _fill(make_index(4)).search(_matrix([VECTORS[1]]), k)
    assert result.ids.shape == (1, k) == result.scores.shape
    assert sorted(result.ids[0, :4].tolist()) == [1, 2, 3, 4]
    assert result.ids[0, 4:].tolist() == [-1] * (k - 4)
    assert np.all(np.isneginf(result.scores[0, 4:]))


def test_empty_index_finds_nothing(make_index: MakeIndex) -> None:
    index = make_index(4)
    result = index.search(_matrix([VECTORS[1]]), 3)
    assert index.count() == 0
    assert result.ids.tolist() == [[-1, -1, -1]]
    assert np.all(np.isneginf(result.scores))


@pytest.mark.parametrize(
    ("added", "removed", "expected_count"),
    [
        ([1, 2, 3, 4], [], 4),
        ([1, 2], [2], 1),
        ([1, 2, 3], [3, 1], 1),
        ([1, 2, 3, 4], [1, 2, 3, 4], 0),
        ([1, 2], [99], 2),
    ],
)
def test_count_follows_adds_and_removes(
    make_index: MakeIndex, added: list[int], removed: list[int], expected_count: int
) -> None:
    index = _fill(make_index(4), added)
    index.remove(removed)
    assert index.count() == expected_count


def test_readding_an_id_replaces_its_vector(make_index: MakeIndex) -> None:
    index = _fill(make_index(4))
    index.add([1], _matrix([VECTORS[4]]))
    assert index.count() == 4
    top = index.search(_matrix([VECTORS[1]]), 4)
    assert top.ids[0, 0] == 2  # id 1 no longer looks like VECTORS[1]
    assert index.search(_matrix([VECTORS[4]]), 2).ids[0].tolist() in ([1, 4], [4, 1])


def test_removed_id_is_unfindable(make_index: MakeIndex) -> None:
    index = _fill(make_index(4))
    index.remove([1])
    result = index.search(_matrix([VECTORS[1]]), 4)
    assert index.count() == 3
    assert result.ids[0, 0] == 2
    assert set(result.ids[0, 1:3].tolist()) == {3, 4}  # both score 0: order is free
    assert result.ids[0, 3] == -1


def test_ids_lists_exactly_what_is_held(make_index: MakeIndex) -> None:
    index = make_index(4)
    assert index.ids().tolist() == []
    _fill(index)
    index.remove([2, 99])
    index.add([3], _matrix([VECTORS[1]]))  # replaced, listed once
    index.add([7], _matrix([VECTORS[2]]))
    held = index.ids()
    assert held.dtype == np.int64
    assert sorted(held.tolist()) == [1, 3, 4, 7]


def test_removing_an_unknown_id_changes_nothing(make_index: MakeIndex) -> None:
    index = _fill(make_index(4))
    before = index.search(_matrix([VECTORS[2]]), 4)
    index.remove([404, -7])
    index.remove([])
    after = index.search(_matrix([VECTORS[2]]), 4)
    assert index.count() == 4
    assert after.ids.tolist() == before.ids.tolist()


def test_remove_then_readd_makes_it_findable_again(make_index: MakeIndex) -> None:
    index = _fill(make_index(4))
    index.remove([3])
    index.add([3], _matrix([VECTORS[3]]))
    assert index.search(_matrix([VECTORS[3]]), 1).ids.tolist() == [[3]]
    assert index.count() == 4


@pytest.mark.parametrize(
    ("operation", "shape"),
    [("add", (1, 3)), ("add", (2, 5)), ("search", (1, 3)), ("search", (1, 5)), ("search", (5,))],
)
def test_wrong_dimension_is_refused(
    make_index: MakeIndex, operation: str, shape: tuple[int, ...]
) -> None:
    index = _fill(make_index(4))
    wrong = np.ones(shape, dtype=np.float32) / 2.0
    rows = shape[0] if len(shape) == 2 else 1
    act = {
        "add": lambda: index.add(list(range(100, 100 + rows)), wrong),
        "search": lambda: index.search(wrong, 1),
    }[operation]
    with pytest.raises(InvalidRecordError, match="shape"):
        act()
    assert index.count() == 4


def test_dimension_is_reported(make_index: MakeIndex) -> None:
    assert make_index(7).dimension == 7


def _unit_rows(rng: np.random.Generator, n: int, dimension: int) -> np.ndarray:
    rows = rng.standard_normal((n, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_concurrent_adds_and_searches_lose_nothing(make_index: MakeIndex) -> None:
    dimension, writers, per_writer = 16, 3, 40
    vectors = _unit_rows(np.random.default_rng(7), writers * per_writer, dimension)
    index = make_index(dimension)
    errors: list[BaseException] = []
    done = threading.Event()

    def write(w: int) -> None:
        try:
            for i in range(w * per_writer, (w + 1) * per_writer, 4):
                index.add(list(range(i, i + 4)), vectors[i : i + 4])
                # A write is visible to the very next search, even under contention.
                assert index.search(vectors[i : i + 1], 1).ids[0, 0] == i
        except BaseException as exc:  # handed to the main thread, which fails the test
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                found = index.search(vectors[:2], 3).ids
                assert set(found.ravel().tolist()) <= set(range(len(vectors))) | {-1}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    assert errors == []
    assert index.count() == len(vectors)
    assert index.search(vectors, 1).ids[:, 0].tolist() == list(range(len(vectors)))


def _clustered(rng: np.random.Generator, clusters: int, per_cluster: int, dim: int) -> np.ndarray:
    """Tight groups of unit vectors: many near neighbours, as in a real gallery."""
    centres = _unit_rows(rng, clusters, dim)
    points = np.repeat(centres, per_cluster, axis=0)
    points += rng.standard_normal(points.shape).astype(np.float32) * 0.05
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_top1_matches_exact_search_on_clustered_vectors(make_index: MakeIndex) -> None:
    rng = np.random.default_rng(42)
    dim = 128
    gallery = _clustered(rng, clusters=60, per_cluster=50, dim=dim)
    picked = rng.choice(len(gallery), 400, replace=False)
    probes = gallery[picked] + rng.standard_normal((400, dim)).astype(np.float32) * 0.03
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    ids = np.arange(1000, 1000 + len(gallery), dtype=np.int64)
    index = make_index(dim)
    for start in range(0, len(gallery), 1000):
        index.add(ids[start : start + 1000], gallery[start : start + 1000])
    # Remove a slice so approximate indexes are also checked with tombstones in place.
    removed = ids[::7]
    index.remove(removed)
    alive = np.ones(len(gallery), dtype=bool)
    alive[::7] = False
    sims = probes @ gallery.T
    sims[:, ~alive] = -np.inf
    truth = ids[np.argmax(sims, axis=1)]
    found = index.search(probes, 10).ids
    assert not np.isin(found, removed).any()
    assert np.mean(found[:, 0] == truth) >= 0.99


def test_milvus_reset_empties_a_reopened_collection(tmp_path: Path) -> None:
    _needs("pymilvus", "milvus")
    _needs("milvus_lite", "milvus")
    from frvs.storage.index.milvus_index import MilvusIndex

    path = tmp_path / "reopen.db"
    first = MilvusIndex(4, path=path, collection="g1")
    _fill(first)
    first.close()
    again = MilvusIndex(4, path=path, collection="g1")
    assert again.count() == 4  # durable across reopening
    again.reset()
    assert again.count() == 0
    assert again.search(_matrix([VECTORS[1]]), 1).ids.tolist() == [[-1]]
    with pytest.raises(InvalidRecordError, match="holds 4-d vectors"):
        MilvusIndex(8, path=path, collection="g1")
    again.close()


@pytest.mark.parametrize(
    ("options", "error"),
    [({"m": 2}, "greater than or equal"), ({"ef_searh": 64}, "Extra inputs")],
)
def test_faiss_refuses_bad_options(options: dict[str, int], error: str) -> None:
    _needs("faiss", "faiss")
    from pydantic import ValidationError

    from frvs.storage.index.faiss_index import FaissIndex

    with pytest.raises(ValidationError, match=error):
        FaissIndex(4, **options)


def test_faiss_ef_search_changes_at_query_time() -> None:
    _needs("faiss", "faiss")
    from frvs.storage.index.faiss_index import FaissIndex

    index = FaissIndex(4, ef_search=8)
    _fill(index)
    index.ef_search = 200
    assert index.ef_search == 200
    assert index.search(_matrix([VECTORS[2]]), 1).ids.tolist() == [[2]]
    with pytest.raises(InvalidRecordError, match="positive"):
        index.ef_search = 0
