"""What the fast-scan index promises beyond the shared contract: it finds what exact search
finds on face-like galleries, returns exact scores, and survives tombstones and rebuilds."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss", reason="faiss not installed: pip install 'frvs[faiss]'")

from pydantic import ValidationError
from synthetic_faces import face_like, mated

from frvs.core.errors import InvalidRecordError
from frvs.storage.index.exact import ExactIndex
from frvs.storage.index.faiss_pq import FaissPQIndex


def _pair(n: int, **options: int) -> tuple[FaissPQIndex, ExactIndex, np.ndarray]:
    gallery = face_like(np.random.default_rng(1), n)
    ids = np.arange(10, 10 + n, dtype=np.int64)
    scan, exact = FaissPQIndex(128, **options), ExactIndex(128)
    for start in range(0, n, 7_000):  # several adds: codes built part-way, then extended
        scan.add(ids[start : start + 7_000], gallery[start : start + 7_000])
    exact.add(ids, gallery)
    return scan, exact, gallery


def test_finds_the_mate_as_exact_search_does_with_exact_scores() -> None:
    scan, exact, gallery = _pair(30_000, train_size=10_000, candidates=200)
    assert scan.encoded
    rng = np.random.default_rng(2)
    # Noise 0.12 a dimension puts probe and mate near cosine 0.6, a weak genuine pair.
    probes = mated(rng, gallery[rng.choice(len(gallery), 300, replace=False)], 0.12)
    got, want = scan.search(probes, 5), exact.search(probes, 5)
    assert np.mean(got.ids[:, 0] == want.ids[:, 0]) >= 0.99
    same = got.ids[:, 0] == want.ids[:, 0]
    np.testing.assert_allclose(got.scores[same, 0], want.scores[same, 0], atol=1e-5)
    assert np.all(np.diff(got.scores, axis=1) <= 0)  # best first


def test_fewer_candidates_miss_more() -> None:
    """The knob is real: one candidate leans on the coarse scan alone."""
    scan, exact, gallery = _pair(30_000, train_size=10_000, candidates_per_million=0)
    rng = np.random.default_rng(3)
    # Noise 0.15 a dimension: cosine about 0.51 to the mate, the weakest genuine pairs.
    probes = mated(rng, gallery[rng.choice(len(gallery), 300, replace=False)], 0.15)
    truth = exact.search(probes, 1).ids[:, 0]
    scan.candidates = 1
    coarse = np.mean(scan.search(probes, 1).ids[:, 0] == truth)
    scan.candidates = 500
    fine = np.mean(scan.search(probes, 1).ids[:, 0] == truth)
    assert coarse < 0.9
    assert fine >= 0.99


def test_larger_galleries_rerank_more_candidates() -> None:
    """Candidates per million templates: the depth grows with the gallery, as the
    coarse scan ranks the mate lower among more non-mates; ``candidates`` is the floor."""
    rng = np.random.default_rng(3)
    scan, exact, gallery = _pair(30_000, train_size=10_000, candidates=1,
                                 candidates_per_million=0)
    probes = mated(rng, gallery[rng.choice(len(gallery), 300, replace=False)], 0.15)
    truth = exact.search(probes, 1).ids[:, 0]
    coarse = np.mean(scan.search(probes, 1).ids[:, 0] == truth)
    # 500 candidates at 30,000 templates: 500 / 0.03 per million.
    deep = FaissPQIndex(128, train_size=10_000, candidates=1,
                        candidates_per_million=round(500 / 0.03))
    deep.add(np.arange(10, 10 + len(gallery), dtype=np.int64), gallery)
    fine = np.mean(deep.search(probes, 1).ids[:, 0] == truth)
    assert coarse < 0.9
    assert fine >= 0.99


def test_rebuild_compacts_and_keeps_answers() -> None:
    scan, exact, gallery = _pair(30_000, train_size=10_000, rebuild_ratio=0.25)
    before = scan.memory_bytes()
    removed = np.arange(10, 10 + 12_000, dtype=np.int64)  # 40% dead: one compaction
    scan.remove(removed)
    exact.remove(removed)
    assert scan.count() == exact.count() == 18_000
    assert scan.memory_bytes() < before
    assert scan.encoded  # 18,000 live still above train_size: re-encoded
    rng = np.random.default_rng(4)
    probes = mated(rng, gallery[12_000 + rng.choice(18_000, 200, replace=False)], 0.05)
    got = scan.search(probes, 3).ids
    assert not np.isin(got, removed).any()
    assert np.mean(got[:, 0] == exact.search(probes, 3).ids[:, 0]) >= 0.99


def test_shrinking_below_train_size_returns_to_exact_search() -> None:
    scan, exact, gallery = _pair(12_000, train_size=10_000)
    assert scan.encoded
    scan.remove(np.arange(10, 10 + 6_000))
    exact.remove(np.arange(10, 10 + 6_000))
    assert not scan.encoded
    probes = gallery[6_000:6_100]
    np.testing.assert_array_equal(scan.search(probes, 4).ids, exact.search(probes, 4).ids)


@pytest.mark.parametrize("shards", [1, 2])
def test_nominees_all_dead_falls_back_to_exact(shards: int) -> None:
    """The scan's favourites for this query are all removed (in every shard, each
    re-scoring its own on its thread): still the best live answer."""
    rng = np.random.default_rng(5)
    query = face_like(rng, 1)
    near = mated(rng, np.repeat(query, 900, axis=0), 0.04)  # 900 close to the query
    far = face_like(rng, 1_000)
    index = FaissPQIndex(128, train_size=256, rebuild_ratio=1.0, candidates=1, shards=shards)
    # Near and far alternate, so every shard (a run of consecutive adds) holds near ones.
    order = np.concatenate([np.arange(900).repeat(2) + np.tile([0, 900], 900),
                            np.arange(1_800, 1_900)])
    index.add(order, np.concatenate([near, far])[order])
    index.remove(np.arange(900))
    best = int(np.argmax(far @ query[0])) + 900
    assert index.search(query, 1).ids.tolist() == [[best]]


def test_vectors_across_storage_blocks() -> None:
    """Over 2**20 vectors span two storage blocks: gather and compaction cross the seam."""
    rng = np.random.default_rng(6)
    n = (1 << 20) + 5_000
    # 32 dimensions: few enough to stay light (134 MB), enough that no two vectors are
    # near-duplicates the coarse codes could confuse.
    vectors = rng.standard_normal((n, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FaissPQIndex(32, train_size=256, shards=3)
    for start in range(0, n, 200_000):
        index.add(np.arange(start, min(n, start + 200_000)), vectors[start : start + 200_000])
    probes = vectors[[0, (1 << 20) - 1, 1 << 20, n - 1]]
    assert index.search(probes, 1).ids[:, 0].tolist() == [0, (1 << 20) - 1, 1 << 20, n - 1]
    index.remove(np.arange(0, n, 2))  # half gone: compacted across the seam
    assert index.count() == n // 2
    odd = [1, (1 << 20) - 1, (1 << 20) + 1, n - 1]
    assert index.search(vectors[odd], 1).ids[:, 0].tolist() == odd


@pytest.mark.parametrize(
    ("options", "error"),
    [({"candidates": 0}, "greater than or equal"), ({"shard": 2}, "Extra inputs"),
     ({"train_size": 10}, "greater than or equal")],
)
def test_refuses_bad_options(options: dict[str, int], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        FaissPQIndex(128, **options)


def test_candidates_must_be_positive() -> None:
    index = FaissPQIndex(128)
    with pytest.raises(InvalidRecordError, match="positive"):
        index.candidates = 0


def test_short_scan_codes_with_a_second_look_find_what_exact_search_finds() -> None:
    """8-byte scan codes nominate many; finer codes keep the best; exact scores returned."""
    scan, exact, gallery = _pair(30_000, train_size=10_000, subquantizer_dims=8,
                                 rescore_depth=2_000, candidates=100)
    assert scan.encoded
    rng = np.random.default_rng(7)
    probes = mated(rng, gallery[rng.choice(len(gallery), 300, replace=False)], 0.12)
    got, want = scan.search(probes, 5), exact.search(probes, 5)
    same = got.ids[:, 0] == want.ids[:, 0]
    assert np.mean(same) >= 0.99
    np.testing.assert_allclose(got.scores[same, 0], want.scores[same, 0], atol=1e-5)
    # The second look is what finds them: the short scan alone misses more.
    alone = FaissPQIndex(128, train_size=10_000, subquantizer_dims=8, candidates=100)
    alone.add(np.arange(10, 10 + len(gallery), dtype=np.int64), gallery)
    assert np.mean(alone.search(probes, 1).ids[:, 0] == want.ids[:, 0]) < np.mean(same)
    scan.rescore_depth = 100  # a query-time knob: shallower looks miss more
    assert np.mean(scan.search(probes, 1).ids[:, 0] == want.ids[:, 0]) < np.mean(same)
    with pytest.raises(InvalidRecordError, match="built"):
        scan.rescore_depth = 0
