"""A fast-scan index written as a snapshot reads back answering exactly as it did, keeps
its tombstones, takes further writes, and refuses files that do not fit together."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss", reason="faiss not installed: pip install 'frvs[faiss]'")

from frvs.storage.index.faiss_pq import FaissPQIndex
from frvs.storage.index.snapshot import (
    MANIFEST,
    SnapshotOwner,
    read_snapshot,
    snapshot_dir,
    write_snapshot,
)

_OWNER = SnapshotOwner(7, "2026-12-01T00:00:00+00:00", "sface", "sface@1/128/cosine", 128)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, 128)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("options", [{}, {"lists": 16, "probes": 16}, {"shards": 1}])
def test_round_trip_answers_the_same_and_takes_writes(
    tmp_path: Path, options: dict[str, int]
) -> None:
    rng = np.random.default_rng(0)
    gallery = _unit(rng, 3_000)
    index = FaissPQIndex(128, train_size=1_000, rebuild_ratio=1.0, **options)
    index.add(np.arange(3_000), gallery)
    index.remove(np.arange(0, 3_000, 10))  # tombstones travel with the snapshot
    probes = gallery[5:3_000:97] + 0.02 * _unit(rng, 31)
    before = index.search(probes, 5)

    write_snapshot(tmp_path, "g7", _OWNER, 42, anchor="1234:+:5", index=index)
    loaded = FaissPQIndex(128, train_size=1_000, rebuild_ratio=1.0, **options)
    assert read_snapshot(tmp_path, "g7", _OWNER, 42, loaded) == (42, "1234:+:5")
    assert loaded.encoded and loaded.count() == index.count()
    after = loaded.search(probes, 5)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_allclose(after.scores, before.scores, atol=1e-6)

    # Writes after loading: the mapped vectors are read-only, new ones go elsewhere.
    extra = _unit(rng, 50)
    loaded.add(np.arange(5_000, 5_050), extra)
    loaded.remove([5])
    found = loaded.search(extra, 1)
    np.testing.assert_array_equal(found.ids[:, 0], np.arange(5_000, 5_050))
    assert 5 not in loaded.search(probes, 5).ids
    loaded.rebuild()  # compaction copies out of the mapped file
    assert loaded.count() == 3_000 - 300 + 50 - 1


def test_refuses_another_owner_a_newer_position_or_a_missing_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index = FaissPQIndex(128, train_size=1_000)
    index.add(np.arange(1_500), _unit(rng, 1_500))
    write_snapshot(tmp_path, "g7", _OWNER, 42, anchor=None, index=index)
    other = SnapshotOwner(7, "2026-12-02T00:00:00+00:00", "sface", "sface@1/128/cosine", 128)
    assert read_snapshot(tmp_path, "g7", other, 42, FaissPQIndex(128)) is None
    assert read_snapshot(tmp_path, "g7", _OWNER, 41, FaissPQIndex(128)) is None  # store older
    assert read_snapshot(tmp_path, "g7", _OWNER, 42, FaissPQIndex(128, lists=4)) is None
    directory = snapshot_dir(tmp_path, "g7")
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["count"] == 1_500
    (directory / "alive.npy").unlink()
    assert read_snapshot(tmp_path, "g7", _OWNER, 42, FaissPQIndex(128)) is None
