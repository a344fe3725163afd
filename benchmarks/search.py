"""1:N search benchmark: exact, FAISS fast-scan + re-rank, FAISS HNSW (and Milvus Lite at 100k).

Random unit vectors are the wrong test for face search: nothing is near anything. So the
synthetic data is shaped by scores the default pack really produces on
``../shared/data/pairs``:

* gallery templates are ``s*m + sqrt(1-s^2)*r``: a direction ``m`` shared by all faces
  with a per-template weight ``s``, fitted so that two unrelated templates score like
  real impostor pairs (mean and spread), plus a random unit residual ``r`` orthogonal to m;
* a mated probe keeps its mate's ``s`` and gets a residual at the angle that makes its
  cosine to the mate equal a genuine score drawn from the measured genuine pairs;
* a mate-less probe is a fresh template from the same model.

Prints one JSON document: the measured and synthetic score distributions, then for each
gallery size and index: build time, memory, single-query p50/p99, batch queries per
second, rank-1 mate-found rates, how often a mate-less probe passes the default
threshold, and recall@1/@10 against exact search; then, as ``frvs gallery calibrate``
does, the threshold for FPIR 1% from gallery templates searched against the rest, and
what it does to the mate-less and mated probes. ``--ten-million`` adds a 10M gallery
(fast-scan only, unless ``--indexes`` names others: an HNSW build over 10M takes about an
hour; the ground truth is brute force over regenerated chunks). Query-time knobs (HNSW's
efSearch, fast-scan's candidates) are measured on one built index.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from frvs.storage.index.base import Matrix, VectorIndex
from frvs.storage.index.exact import ExactIndex

DIMENSION = 128  # the default pack's (SFace)
THRESHOLD = 0.363  # the default pack's default operating point
CHUNK = 100_000
# What --restart's snapshot claims to belong to (it never meets a store).
_OWNER_FIELDS = (1, "benchmark", "sface", "benchmark", DIMENSION)
PAIRS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pairs"


def measure_pairs(pairs: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Genuine and impostor scores of the default pack on the labelled pairs, and the
    real SFace template of each photo."""
    from frvs.app import build_application  # the engine is only needed for this step
    from frvs.config.settings import load_settings
    from frvs.imaging.decode import read_image

    app = build_application(load_settings(data_dir=Path(tempfile.mkdtemp())))
    cache: dict[str, np.ndarray] = {}

    def template(name: str) -> np.ndarray:
        if name not in cache:
            probe = app.engine.probe(read_image(pairs / name), name)
            cache[name] = probe.face.template.vector
        return cache[name]

    genuine, impostor = [], []
    with (pairs / "pairs.csv").open() as f:
        for row in csv.DictReader(f):
            score = float(template(row["image_a"]) @ template(row["image_b"]))
            (genuine if row["same"] == "1" else impostor).append(score)
    return np.asarray(genuine), np.asarray(impostor), cache


@dataclass(frozen=True, slots=True)
class RealMix:
    """Real SFace templates of the shared photos put into the synthetic gallery at
    ``ids`` (one per photo that is the first of a genuine pair), and as probes the
    second photos of those pairs that are not themselves in the gallery; a probe's
    mates are the gallery ids of every photo labelled the same person as it."""

    ids: np.ndarray
    vectors: Matrix
    probes: Matrix
    mates: list[set[int]]

    def apply(self, start: int, chunk: Matrix) -> Matrix:
        inside = (self.ids >= start) & (self.ids < start + len(chunk))
        if not inside.any():
            return chunk
        chunk = chunk.copy()
        chunk[self.ids[inside] - start] = self.vectors[inside]
        return chunk


def real_mix(pairs: Path, templates: dict[str, np.ndarray], size: int) -> RealMix:
    with (pairs / "pairs.csv").open() as f:
        genuine = [(r["image_a"], r["image_b"]) for r in csv.DictReader(f) if r["same"] == "1"]
    inside = sorted({a for a, _ in genuine})
    ids = np.sort(np.random.default_rng(19).choice(size, len(inside), replace=False))
    where = dict(zip(inside, ids.tolist(), strict=True))
    same: dict[str, set[str]] = {}
    for a, b in genuine:
        same.setdefault(a, set()).add(b)
        same.setdefault(b, set()).add(a)
    probes = sorted({b for _, b in genuine if b not in where})
    return RealMix(ids, np.stack([templates[n] for n in inside]).astype(np.float32),
                   np.stack([templates[n] for n in probes]).astype(np.float32),
                   [{where[m] for m in same[b] if m in where} for b in probes])


@dataclass(frozen=True, slots=True)
class GalleryModel:
    """Synthetic templates whose impostor scores follow a measured mean and spread."""

    dimension: int
    shared_mean: float  # mean of s, the weight of the shared direction
    shared_std: float
    seed: int = 7
    mix: RealMix | None = None  # real templates put in place of some synthetic ones

    def direction(self) -> Matrix:
        m = np.zeros(self.dimension, dtype=np.float32)
        m[0] = 1.0  # any fixed unit vector; the indexes are rotation-invariant
        return m

    def templates(self, rng: np.random.Generator, n: int) -> Matrix:
        s = np.clip(rng.normal(self.shared_mean, self.shared_std, n), 0.0, 0.95).astype(np.float32)
        return self._compose(s, _unit_residuals(rng, n, self.dimension))

    def chunk(self, index: int, size: int) -> Matrix:
        """Chunk ``index`` of the gallery; the same every time, so it can be regenerated."""
        return self.templates(np.random.default_rng((self.seed, index)), size)

    def mated_probes(self, rng: np.random.Generator, mates: Matrix, scores: np.ndarray) -> Matrix:
        """Probes whose cosine to their mate is exactly ``scores``."""
        s = mates[:, 0].copy()
        residual = mates.copy()
        residual[:, 0] = 0.0
        residual /= np.linalg.norm(residual, axis=1, keepdims=True)
        noise = _unit_residuals(rng, len(mates), self.dimension)
        noise -= np.sum(noise * residual, axis=1, keepdims=True) * residual
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        # cos(probe, mate) = s^2 + (1 - s^2) * t, solved for the residual angle t.
        t = np.clip((scores - s**2) / (1.0 - s**2), -1.0, 1.0)[:, None]
        return self._compose(s, t * residual + np.sqrt(1.0 - t**2) * noise)

    def _compose(self, s: np.ndarray, residual: Matrix) -> Matrix:
        shared = np.outer(s, self.direction())
        out = shared + np.sqrt(1.0 - s**2)[:, None] * residual
        return np.ascontiguousarray(out, dtype=np.float32)


def _unit_residuals(rng: np.random.Generator, n: int, dimension: int) -> Matrix:
    """Random unit vectors orthogonal to the shared direction (axis 0)."""
    r = rng.standard_normal((n, dimension), dtype=np.float32)
    r[:, 0] = 0.0
    return r / np.linalg.norm(r, axis=1, keepdims=True)


def fit_model(impostor: np.ndarray, dimension: int) -> GalleryModel:
    """Choose the shared weight's mean and spread to match the impostor mean and variance."""
    mu = float(np.sqrt(max(impostor.mean(), 0.0)))
    target = float(impostor.var())

    def predicted_var(sigma: float) -> float:
        second = mu**2 + sigma**2
        return (second**2 - mu**4) + (1.0 - second) ** 2 / (dimension - 1)

    lo, hi = 0.0, 0.5
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if predicted_var(mid) < target else (lo, mid)
    return GalleryModel(dimension, mu, lo)


def describe(scores: np.ndarray) -> dict[str, float]:
    """Mean, spread, tail percentiles and the share at or above the threshold."""
    p = np.percentile(scores, [1, 50, 99, 99.9])
    return {
        "n": len(scores),
        "mean": round(float(scores.mean()), 4),
        "std": round(float(scores.std()), 4),
        "p1": round(float(p[0]), 4),
        "p50": round(float(p[1]), 4),
        "p99": round(float(p[2]), 4),
        "p99.9": round(float(p[3]), 4),
        "share_at_or_above_threshold": round(float(np.mean(scores >= THRESHOLD)), 5),
    }


@dataclass(frozen=True, slots=True)
class Probes:
    """Mated probes first (with their mates' ids), then mate-less probes."""

    vectors: Matrix
    mates: np.ndarray

    @property
    def mated(self) -> int:
        return len(self.mates)


def gallery_chunks(model: GalleryModel, size: int) -> Iterator[tuple[int, Matrix]]:
    for index, start in enumerate(range(0, size, CHUNK)):
        chunk = model.chunk(index, min(CHUNK, size - start))
        yield start, (model.mix.apply(start, chunk) if model.mix is not None else chunk)


def make_probes(model: GalleryModel, size: int, genuine: np.ndarray, count: int) -> Probes:
    rng = np.random.default_rng(11)
    mates = np.sort(rng.choice(size, count, replace=False))
    found = []
    for start, chunk in gallery_chunks(model, size):
        inside = mates[(mates >= start) & (mates < start + len(chunk))]
        found.append(chunk[inside - start])
    scores = rng.choice(genuine, count)  # bootstrap from the measured genuine pairs
    mated = model.mated_probes(rng, np.concatenate(found), scores)
    unmated = model.templates(np.random.default_rng(13), count)
    return Probes(np.concatenate([mated, unmated]), mates.astype(np.int64))


def ground_truth(model: GalleryModel, size: int, probes: Matrix, k: int) -> np.ndarray:
    """Exact top-k ids by brute force over regenerated chunks (no index needed)."""
    best_s = np.full((len(probes), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(probes), k), -1, dtype=np.int64)
    block = 20_000  # keeps the (probes x block) score matrix small
    for start, chunk in gallery_chunks(model, size):
        for offset in range(0, len(chunk), block):
            sims = probes @ chunk[offset : offset + block].T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            s = np.concatenate([best_s, np.take_along_axis(sims, top, axis=1)], axis=1)
            i = np.concatenate([best_i, top + start + offset], axis=1)
            keep = np.argsort(-s, axis=1)[:, :k]
            best_s, best_i = (
                np.take_along_axis(s, keep, axis=1),
                np.take_along_axis(i, keep, axis=1),
            )
    return best_i


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(index: VectorIndex, model: GalleryModel, size: int) -> dict[str, Any]:
    gc.collect()
    before, seconds = rss_bytes(), 0.0
    for start, chunk in gallery_chunks(model, size):
        t0 = time.perf_counter()
        index.add(np.arange(start, start + len(chunk), dtype=np.int64), chunk)
        seconds += time.perf_counter() - t0
        print(f"  built {start + len(chunk):,} in {seconds:.0f}s", file=sys.stderr, flush=True)
    gc.collect()
    out: dict[str, Any] = {
        "build_s": round(seconds, 2),
        "rss_delta_mib": (rss_bytes() - before) >> 20,
    }
    memory = getattr(index, "memory_bytes", None)
    if memory is not None:
        out["index_mib"] = memory() >> 20
    train = getattr(index, "train_seconds", None)
    if train is not None:  # part of build_s
        out["train_s"] = round(train, 2)
    return out


def real_found(index: VectorIndex, mix: RealMix) -> float:
    """Share of the real probes whose best answer is one of their mates."""
    top = index.search(mix.probes, 1).ids[:, 0]
    return float(np.mean([int(t) in m for t, m in zip(top, mix.mates, strict=True)]))


def measure(index: VectorIndex, probes: Probes, truth: np.ndarray, singles: int,
            mix: RealMix | None = None) -> dict[str, Any]:
    """Latency (wall and CPU: the process's CPU time, robust to other load), throughput,
    mate-found rates and recall of one built index."""
    q = probes.vectors
    order = np.random.default_rng(5).permutation(len(q))[:singles]
    lat, cpu = [], []
    load = [round(v, 2) for v in os.getloadavg()]
    for i in order:
        t0, c0 = time.perf_counter(), time.process_time()
        index.search(q[i : i + 1], 10)
        lat.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t0 = time.perf_counter()
    result = index.search(q, 10)
    qps = len(q) / (time.perf_counter() - t0)
    ids, scores, m = result.ids, result.scores, probes.mated
    hit = ids[:m, 0] == probes.mates
    real = {} if mix is None else {"real_mate_rank1": round(real_found(index, mix), 4)}
    return real | {
        "load_before": load,
        "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)) * 1e3, 3),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)) * 1e3, 3),
        "batch_qps": round(qps, 1),
        "mate_rank1": round(float(hit.mean()), 4),
        "mate_rank1_at_threshold": round(float((hit & (scores[:m, 0] >= THRESHOLD)).mean()), 4),
        "mateless_pass_threshold": round(float((scores[m:, 0] >= THRESHOLD).mean()), 4),
        "recall_at_1": round(float(np.mean(ids[:, 0] == truth[:, 0])), 4),
        "recall_at_10": round(
            float(
                np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(ids, truth, strict=True)])
            ),
            4,
        ),
    }


def open_set(index: VectorIndex, model: GalleryModel, size: int, probes: Probes, *,
             searches: int = 2_000, fpir: float = 0.01) -> dict[str, Any]:
    """What ``frvs gallery calibrate`` would set: the threshold for ``fpir`` from gallery
    templates searched against the rest, checked on the mate-less and mated probes."""
    from frvs.galleries.calibration import threshold_for_fpir

    picked = np.sort(np.random.default_rng(17).choice(size, searches, replace=False))
    own = np.concatenate([chunk[picked[(picked >= start) & (picked < start + len(chunk))] - start]
                          for start, chunk in gallery_chunks(model, size)])
    top = index.search(own, 2)
    nonmated = np.where(top.ids[:, 0] == picked, top.scores[:, 1], top.scores[:, 0])
    threshold = threshold_for_fpir(nonmated.astype(np.float32), fpir)
    assert threshold is not None
    found = index.search(probes.vectors, 1)
    m = probes.mated
    return {
        "target_fpir": fpir,
        "leave_one_out_searches": searches,
        "threshold": round(threshold, 4),
        "mateless_pass": round(float(np.mean(found.scores[m:, 0] >= threshold)), 4),
        "mate_found_at_threshold": round(float(np.mean(
            (found.ids[:m, 0] == probes.mates) & (found.scores[:m, 0] >= threshold))), 4),
    }


def bench_size(
    size: int, args: argparse.Namespace, model: GalleryModel, genuine: np.ndarray,
    templates: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every index on one gallery size."""
    mix = real_mix(args.pairs, templates, size) if templates else None
    model = replace(model, mix=mix)
    probes = make_probes(model, size, genuine, args.probes)
    t0 = time.perf_counter()
    truth = ground_truth(model, size, probes.vectors, 10)
    out: dict[str, Any] = {"gallery": size, "ground_truth_s": round(time.perf_counter() - t0, 1)}
    indexes: dict[str, Any] = {"exact": lambda: ExactIndex(DIMENSION, capacity=size),
                               "faiss_pq": lambda: _faiss_pq(args),
                               "faiss_pq_short": lambda: _faiss_pq_short(args),
                               "faiss_pq8": lambda: _faiss_pq8(args),
                               "faiss_ivf": lambda: _faiss_ivf(args),
                               "faiss_hnsw": lambda: _faiss(args)}
    if size <= 100_000 and not args.no_milvus:
        indexes["milvus_lite_flat"] = _milvus
    chosen = args.indexes.split(",") if args.indexes else list(indexes)
    if size > 1_000_000 and not args.indexes:
        chosen = ["faiss_pq", "faiss_ivf"]
    indexes = {k: v for k, v in indexes.items() if k in chosen}
    exact_rate = float(np.mean(truth[: probes.mated, 0] == probes.mates))
    out["exact_mate_rank1"] = round(exact_rate, 4)
    real_exact = 0.0
    if mix is not None:
        # Exact search over the mixed gallery, for the real probes: brute force per chunk.
        best = np.full(len(mix.probes), -np.inf, dtype=np.float32)
        top = np.full(len(mix.probes), -1, dtype=np.int64)
        for start, chunk in gallery_chunks(model, size):
            sims = mix.probes @ chunk.T
            i = np.argmax(sims, axis=1)
            better = sims[np.arange(len(i)), i] > best
            best[better], top[better] = sims[np.arange(len(i)), i][better], i[better] + start
        real_exact = float(np.mean([int(t) in m for t, m in zip(top, mix.mates, strict=True)]))
        out["real_templates"] = {"in_gallery": len(mix.ids), "probes": len(mix.probes),
                                 "exact_mate_rank1": round(real_exact, 4)}
    for name, factory in indexes.items():
        print(f"{size:,} {name}", file=sys.stderr, flush=True)
        index = factory()
        built = build(index, model, size)
        singles = args.singles if not name.startswith("milvus") else 5
        # Query-time knobs: one built index, measured at each setting.
        knob, values = {"faiss_hnsw": ("ef_search", _ints(args.ef_search)),
                        "faiss_pq": ("candidates", _ints(args.candidates)),
                        "faiss_pq8": ("candidates", _ints(args.pq8_candidates)),
                        "faiss_pq_short": ("rescore_depth", _ints(args.rescore_depths)),
                        "faiss_ivf": ("probes", _ints(args.probes_list)),
                        }.get(name, ("", [0]))
        for value in values:
            if knob:
                setattr(index, knob, value)
            row = built | measure(index, probes, truth, singles, mix)
            row["mate_found_vs_exact"] = round(row["mate_rank1"] / exact_rate, 4)
            if mix is not None and real_exact > 0:
                row["real_mate_found_vs_exact"] = round(row["real_mate_rank1"] / real_exact, 4)
            label = {"ef_search": "ef", "candidates": "c", "rescore_depth": "r",
                     "probes": "p"}.get(knob, "")
            out[f"{name}_{label}{value}" if knob else name] = row
        if "open_set" not in out and not args.no_open_set:
            out["open_set"] = open_set(index, model, size, probes) | {"index": name}
        snapshot = write_bench_snapshot(index, probes, args) if name == args.restart else None
        close = getattr(index, "close", None)
        if close is not None:
            close()
        del index
        gc.collect()
        if snapshot is not None:  # read back with the built index gone, as after a restart
            out[f"{name}_restart"] = restart(snapshot, probes)
    return out


@dataclass(frozen=True, slots=True)
class BenchSnapshot:
    root: Path
    options: dict[str, Any]
    first_ids: np.ndarray  # the built index's answer to the first probe
    facts: dict[str, Any]


def _owner() -> Any:
    from frvs.storage.index.snapshot import SnapshotOwner

    return SnapshotOwner(*_OWNER_FIELDS)


def write_bench_snapshot(index: VectorIndex, probes: Probes,
                         args: argparse.Namespace) -> BenchSnapshot:
    """Write the built index as a snapshot (timed), for ``restart`` to read back."""
    from frvs.storage.index.faiss_pq import FaissPQIndex
    from frvs.storage.index.snapshot import write_snapshot

    assert isinstance(index, FaissPQIndex)
    if args.snapshot_dir:
        Path(args.snapshot_dir).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=args.snapshot_dir))
    t0 = time.perf_counter()
    write_snapshot(root, "bench", _owner(), 1, anchor=None, index=index)
    written = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (root / "index" / "snapshots" / "bench").iterdir())
    # The query-time knobs as last measured, not as built.
    options = index.options.model_dump() | {"candidates": index.candidates,
                                            "probes": index.probes}
    return BenchSnapshot(root, options,
                         index.search(probes.vectors[:1], 10).ids,
                         {"snapshot_gib": round(size / 2**30, 2), "write_s": round(written, 1)})


def restart(snapshot: BenchSnapshot, probes: Probes) -> dict[str, Any]:
    """Time a fresh index reading the snapshot (size and digest checks included) up to its
    first answer, as a restarted service does before applying the changes made since
    (the catalog's queries of the store are not included)."""
    from frvs.storage.index.faiss_pq import FaissPQIndex
    from frvs.storage.index.snapshot import read_snapshot

    load = [round(v, 2) for v in os.getloadavg()]
    t0, c0 = time.perf_counter(), time.process_time()
    fresh = FaissPQIndex(DIMENSION, **snapshot.options)
    found = read_snapshot(snapshot.root, "bench", _owner(), 1, fresh)
    loaded = time.perf_counter() - t0
    result = fresh.search(probes.vectors[:1], 10)
    first = time.perf_counter() - t0
    out = snapshot.facts | {
        "load_s": round(loaded, 2), "to_first_answer_s": round(first, 2),
        "cpu_s": round(time.process_time() - c0, 2), "used": found is not None,
        "same_answer": bool(np.array_equal(result.ids, snapshot.first_ids)),
        "rss_after_mib": rss_bytes() >> 20, "load_before": load}
    del fresh
    shutil.rmtree(snapshot.root, ignore_errors=True)
    return out


def _ints(values: str) -> list[int]:
    return [int(x) for x in values.split(",")]


def _faiss_pq(args: argparse.Namespace) -> VectorIndex:
    from frvs.storage.index.faiss_pq import FaissPQIndex

    # Each row re-ranks exactly the candidates it names; the default configuration's
    # depth at a size is max(candidates, candidates_per_million x millions): the row of
    # that many candidates measures it.
    return FaissPQIndex(DIMENSION, shards=args.shards, candidates_per_million=0)


def _faiss_pq_short(args: argparse.Namespace) -> VectorIndex:
    """8-byte scan codes (8 dimensions a 4-bit code), a second look from finer codes."""
    from frvs.storage.index.faiss_pq import FaissPQIndex

    return FaissPQIndex(DIMENSION, shards=args.shards, subquantizer_dims=8,
                        rescore_depth=_ints(args.rescore_depths)[0],
                        rescore_codes=args.rescore_codes, candidates=args.short_candidates)


def _faiss_pq8(args: argparse.Namespace) -> VectorIndex:
    """8-byte scan codes, their candidates re-ranked exactly with no second look."""
    from frvs.storage.index.faiss_pq import FaissPQIndex

    return FaissPQIndex(DIMENSION, shards=args.shards, subquantizer_dims=8,
                        candidates=_ints(args.pq8_candidates)[0])


def _faiss_ivf(args: argparse.Namespace) -> VectorIndex:
    """Fast-scan codes in inverted lists: a query scans only its nearest ``probes``."""
    from frvs.storage.index.faiss_pq import FaissPQIndex

    return FaissPQIndex(DIMENSION, shards=args.shards, lists=args.lists,
                        probes=_ints(args.probes_list)[0], candidates=args.ivf_candidates)


def _faiss(args: argparse.Namespace) -> VectorIndex:
    from frvs.storage.index.faiss_index import FaissIndex

    return FaissIndex(DIMENSION, m=args.m, ef_construction=args.ef_construction)


def _milvus() -> VectorIndex:
    from frvs.storage.index.milvus_index import MilvusIndex

    return MilvusIndex(DIMENSION, path=Path(tempfile.mkdtemp()) / "bench.db")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated gallery sizes")
    parser.add_argument("--ten-million", action="store_true", help="add a 10M gallery (FAISS)")
    parser.add_argument(
        "--probes", type=int, default=1000, help="mated probes (and as many mate-less)"
    )
    parser.add_argument("--singles", type=int, default=200, help="single queries timed per index")
    parser.add_argument("--m", type=int, default=32, help="HNSW M")
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", default="64,128,256,512", help="comma-separated")
    parser.add_argument("--candidates", default="300,1000,3000",
                        help="fast-scan re-rank depths, comma-separated")
    parser.add_argument("--shards", type=int, default=2, help="fast-scan shards (threads)")
    parser.add_argument("--rescore-depths", default="10000,20000,40000",
                        help="faiss_pq_short: candidates the 8-byte scan nominates for the "
                        "second look, comma-separated")
    parser.add_argument("--pq8-candidates", default="3000,10000",
                        help="faiss_pq8: candidates the 8-byte scan nominates for the exact "
                        "re-rank, comma-separated")
    parser.add_argument("--rescore-codes", default="SQ8",
                        help="faiss_pq_short: FAISS code of the second look")
    parser.add_argument("--short-candidates", type=int, default=1000,
                        help="faiss_pq_short: candidates re-ranked exactly after it")
    parser.add_argument("--lists", type=int, default=1024,
                        help="faiss_ivf: inverted lists (k-means on a 65,536 sample)")
    parser.add_argument("--probes-list", default="64,128,256",
                        help="faiss_ivf: lists scanned per query, comma-separated")
    parser.add_argument("--ivf-candidates", type=int, default=1000,
                        help="faiss_ivf: candidates re-ranked exactly")
    parser.add_argument("--omp-threads", type=int, default=0,
                        help="faiss.omp_set_num_threads before searching (0: FAISS's default)")
    parser.add_argument("--restart", default="",
                        help="after measuring this index (faiss_pq or faiss_ivf) at each "
                        "size, time a restart from its snapshot (written under --snapshot-dir)")
    parser.add_argument("--snapshot-dir", default=None, help="where --restart writes")
    parser.add_argument("--no-real", action="store_true",
                        help="do not mix the shared photos' real templates into the gallery")
    parser.add_argument("--no-milvus", action="store_true")
    parser.add_argument("--no-open-set", action="store_true",
                        help="skip the FPIR 1%% threshold measurement (minutes at 10M)")
    parser.add_argument(
        "--indexes", default="",
        help="comma-separated subset of exact,faiss_pq,faiss_hnsw,milvus_lite_flat (default: "
        "all up to 1M, faiss_pq above; an HNSW build over 1M takes minutes)",
    )
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    args = parser.parse_args()
    if args.omp_threads:
        import faiss

        faiss.omp_set_num_threads(args.omp_threads)
    genuine, impostor, templates = measure_pairs(args.pairs)
    model = fit_model(impostor, DIMENSION)
    rng = np.random.default_rng(3)
    a, b = model.templates(rng, 20_000), model.templates(rng, 20_000)
    pure = _unit_residuals(rng, 40_000, DIMENSION)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "note": "2 shared cores; timings are noisy",
                    "load_at_start": [round(v, 2) for v in os.getloadavg()]},
        "threshold": THRESHOLD,
        "hnsw": {"m": args.m, "ef_construction": args.ef_construction, "ef_search": args.ef_search},
        "faiss_pq": {"shards": args.shards, "candidates": args.candidates,
                     "default_depth": "max(1000, 300 per million templates): 3000 at 10M"},
        "faiss_ivf": {"shards": args.shards, "lists": args.lists, "probes": args.probes_list,
                      "candidates": args.ivf_candidates},
        "omp_threads": args.omp_threads or "default",
        "faiss_pq_short": {"shards": args.shards, "subquantizer_dims": 8,
                           "rescore_codes": args.rescore_codes,
                           "rescore_depths": args.rescore_depths,
                           "candidates": args.short_candidates},
        "scores": {
            "genuine_measured": describe(genuine),
            "impostor_measured": describe(impostor),
            "impostor_synthetic": describe(np.sum(a * b, axis=1)),
            "impostor_random_unit_vectors": describe(np.sum(pure[:20_000] * pure[20_000:], axis=1)),
            "model": {
                "shared_mean": round(model.shared_mean, 4),
                "shared_std": round(model.shared_std, 4),
            },
        },
        "galleries": [],
    }
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if args.ten_million:
        sizes.append(10_000_000)
    for size in sizes:
        report["galleries"].append(bench_size(size, args, model, genuine,
                                              None if args.no_real else templates))
        print(json.dumps(report, indent=2), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
