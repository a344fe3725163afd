"""A compressed scan of every template, then exact re-ranking (the ``faiss`` extra).

Why not a graph or inverted lists, the usual answers for 10M vectors: templates of
different people are spread like random directions in about 120 dimensions, so a probe's
mate is close to it (cosine about 0.73) while nothing around the mate is. Methods that
walk or partition by neighbourhood lose it. On the synthetic 1M gallery of
``benchmarks/search.py``, HNSW found the mate 88% as often as exact search at efSearch
1024, and IVF scanning a quarter of its lists 98.6%.

A scan of everything does not lose it, if it is cheap enough. FAISS fast-scan product
quantisation stores a template as 4-bit codes of ``subquantizer_dims`` dimensions each
(16 bytes for 128 dimensions) and scores 32 of them at a time with SIMD shuffles: 10M
templates take about 4 ms on one core, and the codes are split into ``shards`` scanned
on parallel threads. The scan's scores are coarse (a few hundredths off), so it only
nominates the best ``candidates``; those are re-scored exactly from the float32 vectors
kept beside the codes, each shard's on its own thread. Returned scores are exact, so a
threshold means here what it means for exact search, and whether the best match is
returned depends only on whether the scan ranked it among the candidates.

Shorter scan codes (``subquantizer_dims`` 8: 8 bytes a template, half the bytes and
half the scan time) score too coarsely for 1,000 candidates to hold the mate at 10M;
``rescore_depth`` lets such a scan nominate tens of thousands, re-scored from finer
codes kept beside it (``rescore_codes``, FAISS ``IndexRefine``) before the exact
re-rank. Measured at 10M on a 2-core machine (``benchmarks/search.py``), the scan is
bound by compute rather than memory there (the same CPU time per template whether the
codes fit in cache or not), and selecting and re-scoring 10,000-40,000 candidates cost
more than the shorter scan saved: 15-33 ms of CPU a query against 14.7 ms, the mate
found 97.7-99.0% as often as exact search against 99.5%. The default stays 16-byte
codes with no second look; the option is for measuring machines whose memory
bandwidth, not compute, is what is scarce.

Inverted lists (``lists``, ``probes``; FAISS ``IndexIVFPQFastScan``) scan only the codes
filed under the centres nearest the probe. Measured on the synthetic 1M gallery under
load (benchmarks/search.py, 1,024 lists, k-means on 65,536 templates in 27 s): 80.8% of
exact search's mates at 64 probes, 96.1% at 256, 99.2% at 512 (half the codes) for 3.3 ms
of CPU a query, against 99.7% for 2.0 ms scanning every code. The mate is near the probe
but not near any centre, so half the lists must be probed, and the per-list overhead then
costs more than the codes saved: off by default, kept for galleries with real
neighbourhood structure and for measuring.

The built index can be written as a snapshot and read back (``write_snapshot``,
``read_snapshot``; see ``snapshot.py``): the float vectors are memory-mapped from it, so a
10M gallery answers seconds after a restart instead of 40 s.

Below ``train_size`` vectors there are no codes at all: the codebook needs that many
samples, and exact search over so few is quicker than any sketch. Removal is a tombstone
(FAISS cannot delete from fast-scan codes); when dead vectors exceed ``rebuild_ratio``
the vectors are compacted and the codes re-encoded (about 15 s at 10M).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import Field

from frvs.core.errors import InvalidRecordError
from frvs.storage.index.base import IdArray, Matrix
from frvs.storage.index.faiss_index import import_faiss
from frvs.storage.index.labels import LabelTable, TombstoneIndex, TombstoneOptions, positive
from frvs.storage.index.snapshot import SnapshotError

logger = logging.getLogger(__name__)

_BLOCK_BITS = 20  # vectors live in blocks of 2**20 rows: growth never copies the gallery
_BLOCK = 1 << _BLOCK_BITS
_ENCODE_CHUNK = 262_144
_TRAIN_SAMPLE = 65_536
# Codes laid out in blocks of 128 instead of FAISS's default 32: each block's lookup tables
# are loaded once for four times as many codes. Measured on one core of the 2-core
# machine (5M codes of 16 bytes, one query): 4.05 ms against 4.69 ms a scan.
_SCAN_BLOCK = 128
_T = TypeVar("_T")
# FAISS releases the GIL while it scans, so threads put each shard on its own core.
_SCAN_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                thread_name_prefix="frvs-scan")


class FaissPQOptions(TombstoneOptions):
    """Scan and re-rank parameters; each trades speed or memory against finding the mate."""

    candidates: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        title="Candidates re-ranked exactly",
        description="How many of the scan's best are re-scored from the float vectors (at "
        "least k). The recall knob: more candidates forgive coarser scan scores at about "
        "0.1 ms a thousand. Settable at query time (FaissPQIndex.candidates).",
    )
    candidates_per_million: int = Field(
        300,
        ge=0,
        le=1_000_000,
        title="Candidates per million templates, at least",
        description="Galleries above a few million templates re-rank at least this many "
        "candidates per million templates they hold (``candidates`` stays the floor). The "
        "coarse scan ranks a mate lower as the gallery grows, since more non-mates score "
        "above it by chance: at 10M, 1,000 candidates kept the mate 98.9-99.2% as often "
        "as exact search, 3,000 (the default there) 99.4-99.7%, for about 0.1 ms more "
        "a query. 0: always ``candidates``.",
    )
    shards: int = Field(
        2,
        ge=1,
        le=64,
        title="Scan shards",
        description="The codes are split into this many parts scanned on parallel threads, "
        "each nominating candidates/shards; one per core the service may use for a query.",
    )
    train_size: int = Field(
        20_000,
        ge=256,
        title="Vectors before codes are built",
        description="Below this many vectors search is exact over the float vectors; at it "
        "the codebook is trained on (up to 65,536 of) them and every vector is encoded.",
    )
    subquantizer_dims: int = Field(
        4,
        ge=1,
        le=32,
        title="Dimensions per 4-bit code",
        description="Smaller codes score more finely but cost more to scan (2 dims: 64 "
        "bytes a 128-d vector, twice the scan time of 4; 8 dims: 8 bytes, half). The "
        "dimension must be a multiple of it, else search stays exact.",
    )
    rescore_depth: int = Field(
        0,
        ge=0,
        le=1_000_000,
        title="Candidates re-scored from finer codes",
        description="0: the scan nominates the candidates re-ranked exactly. Above 0: the "
        "scan nominates this many, they are re-scored from finer codes kept beside the "
        "scan's (rescore_codes), and the best candidates of those are re-ranked exactly: "
        "a coarse, short scan code with a deep but cheap second look. Settable at query "
        "time (FaissPQIndex.rescore_depth) when the index was built with it.",
    )
    rescore_codes: str = Field(
        "SQ8",
        pattern=r"^(PQ\d+x\d+|SQ[468]|SQfp16)$",
        title="Finer codes of the second look",
        description="A FAISS code for rescore_depth: SQ8 (one byte a dimension, 128 bytes "
        "a 128-d vector, trained at once, SIMD distances), SQ4 (half that), PQ16x8 (16 "
        "bytes, but its 8-bit codebooks take half a minute to train).",
    )
    lists: int = Field(
        0,
        ge=0,
        le=1 << 20,
        title="Inverted lists (0: scan every code)",
        description="Above 0 the codes are filed in this many inverted lists (FAISS "
        "IndexIVFPQFastScan, k-means on a sample of the gallery) and a query scans only the "
        "``probes`` lists whose centres are nearest to it: fewer codes scanned, at the risk "
        "of the mate sitting in a list not probed. Measured in benchmarks/search.py.",
    )
    probes: int = Field(
        64,
        ge=1,
        title="Inverted lists scanned per query",
        description="With ``lists``: how many lists a query scans (the recall knob of an "
        "inverted file). Settable at query time (FaissPQIndex.probes).",
    )
    snapshot_min_size: int = Field(
        1_000_000,
        ge=0,
        title="Templates before the index is snapshotted",
        description="A gallery with at least this many templates keeps a snapshot of its "
        "built index in the data directory (index/snapshots/, about 530 bytes a 128-d "
        "template) after its first load from the store; a restart loads it and applies only "
        "the changes made since (seconds at 10M instead of 40 s). 0: never.",
    )


class _Rows:
    """Float32 vectors by label, in fixed blocks so that growing never copies the lot."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.blocks: list[Matrix] = []
        self.size = 0

    def append(self, vectors: Matrix) -> None:
        done = 0
        while done < len(vectors):
            row = self.size & (_BLOCK - 1)
            if row == 0 and self.size >> _BLOCK_BITS == len(self.blocks):
                self.blocks.append(np.empty((1024, self.dimension), dtype=np.float32))
            block = self.blocks[-1]
            take = min(len(vectors) - done, _BLOCK - row)
            if row + take > len(block):  # the last block grows by doubling up to _BLOCK
                grown = np.empty((min(_BLOCK, max(2 * len(block), row + take)), self.dimension),
                                 dtype=np.float32)
                grown[:row] = block[:row]
                self.blocks[-1] = block = grown
            block[row : row + take] = vectors[done : done + take]
            done += take
            self.size += take

    def gather(self, labels: IdArray) -> Matrix:
        """The vectors at ``labels``, in that order."""
        out = np.empty((len(labels), self.dimension), dtype=np.float32)
        which = labels >> _BLOCK_BITS
        for b in np.unique(which):
            rows = which == b
            out[rows] = self.blocks[int(b)][labels[rows] & (_BLOCK - 1)]
        return out

    def filled(self) -> list[tuple[int, Matrix]]:
        """(first label, rows) of each block, only the rows in use."""
        return [(b << _BLOCK_BITS, block[: min(_BLOCK, self.size - (b << _BLOCK_BITS))])
                for b, block in enumerate(self.blocks)]

    def compacted(self, keep: IdArray) -> _Rows:
        """The rows at sorted ``keep``, relabelled 0..; each old block is freed once copied."""
        out = _Rows(self.dimension)
        bounds = np.searchsorted(keep, np.arange(len(self.blocks) + 1) << _BLOCK_BITS)
        for b in range(len(self.blocks)):
            out.append(self.blocks[b][keep[bounds[b] : bounds[b + 1]] & (_BLOCK - 1)])
            self.blocks[b] = np.empty((0, self.dimension), dtype=np.float32)
        return out

    def nbytes(self) -> int:
        return sum(block.nbytes for block in self.blocks)

    def write(self, path: Path) -> None:
        """Every row in use as one ``.npy`` file, block by block (no copy of the lot)."""
        with path.open("wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(
                np.dtype(np.float32)), "fortran_order": False,
                "shape": (self.size, self.dimension)})
            for _, rows in self.filled():
                f.write(np.ascontiguousarray(rows).data)

    @classmethod
    def mapped(cls, path: Path, dimension: int) -> _Rows:
        """Rows read from ``write``'s file, memory-mapped read-only: nothing is read until
        searched, and pages stay shareable with the page cache. Appends go to new blocks
        (a partly filled last block is copied once, on the first append)."""
        data = np.load(path, mmap_mode="r")
        if data.dtype != np.float32 or data.ndim != 2 or data.shape[1] != dimension:
            raise SnapshotError(f"{path.name} holds {data.dtype} {data.shape}, not "
                                f"float32 (n, {dimension})")
        rows = cls(dimension)
        rows.blocks = [data[start : start + _BLOCK] for start in range(0, len(data), _BLOCK)]
        rows.size = len(data)
        return rows


class _Codes:
    """Fast-scan PQ codes in shards, each knowing which label its n-th code belongs to;
    with ``rescore_depth``, each shard also keeps finer codes for a second look."""

    def __init__(self, faiss: Any, dimension: int, options: FaissPQOptions, sample: Matrix) -> None:
        self._faiss = faiss
        codes = dimension // options.subquantizer_dims
        if options.lists:
            # The factory owns the coarse quantizer (a flat inner-product index).
            scan = faiss.index_factory(dimension, f"IVF{options.lists},PQ{codes}x4fs",
                                       faiss.METRIC_INNER_PRODUCT)
        else:
            scan = faiss.IndexPQFastScan(dimension, codes, 4, faiss.METRIC_INNER_PRODUCT,
                                         _SCAN_BLOCK)
        self.rescored = options.rescore_depth > 0
        if self.rescored:
            finer = faiss.index_factory(dimension, options.rescore_codes,
                                        faiss.METRIC_INNER_PRODUCT)
            scan.train(sample)
            finer.train(sample)
            # IndexRefine: the scan nominates k * k_factor, the finer codes keep the best k.
            self.parts: list[Any] = [faiss.IndexRefine(faiss.clone_index(scan),
                                                       faiss.clone_index(finer))
                                     for _ in range(options.shards)]
        else:
            scan.train(sample)
            self.parts = [scan] + [faiss.clone_index(scan) for _ in range(options.shards - 1)]
        self.labels: list[IdArray] = [np.empty(1024, dtype=np.int64) for _ in self.parts]

    @classmethod
    def restored(cls, faiss: Any, parts: list[Any], labels: list[IdArray],
                 rescored: bool) -> _Codes:
        """Codes read back from a snapshot."""
        codes = cls.__new__(cls)
        codes._faiss, codes.parts, codes.labels, codes.rescored = faiss, parts, labels, rescored
        return codes

    def write(self, directory: Path) -> None:
        """Each shard as a FAISS index file and the labels of its codes."""
        for s, part in enumerate(self.parts):
            self._faiss.write_index(part, str(directory / f"codes{s}.faiss"))
            np.save(directory / f"codes{s}_labels.npy", self.labels[s][: int(part.ntotal)])

    def add(self, labels: IdArray, vectors: Matrix) -> None:
        """Encode ``vectors``, spreading them so the shards stay the same size."""
        sizes = [int(part.ntotal) for part in self.parts]
        total = sum(sizes) + len(labels)
        target = [total // len(sizes) + (1 if s < total % len(sizes) else 0)
                  for s in range(len(sizes))]
        start = 0
        for s, part in enumerate(self.parts):
            take = min(max(0, target[s] - sizes[s]), len(labels) - start)
            if take == 0:
                continue
            own = self.labels[s]
            if sizes[s] + take > len(own):
                grown = np.empty(max(2 * len(own), sizes[s] + take), dtype=np.int64)
                grown[: sizes[s]] = own[: sizes[s]]
                self.labels[s] = own = grown
            part.add(vectors[start : start + take])
            own[sizes[s] : sizes[s] + take] = labels[start : start + take]
            start += take

    def nominate(self, queries: Matrix, depth: int, then: Callable[[IdArray], _T],
                 scan_depth: int = 0, probes: int = 0) -> list[_T]:
        """``then`` of each shard's (n, about ``depth`` / shards) labels the scan scores
        best for each query (with finer codes: the best by those of the scan's best
        ``scan_depth``; -1 pads), one result per shard in shard order. ``then`` runs on
        the shard's own thread (re-scoring there puts both cores on the candidates'
        random reads as on the scan) while the caller holds the index's lock, so it must
        not take that lock."""
        per_part = max(1, math.ceil(depth / len(self.parts)))
        params = None
        if self.rescored:
            factor = max(1.0, scan_depth / max(1, depth))
            params = self._faiss.IndexRefineSearchParameters(k_factor=factor)

        def scan(s: int) -> _T:
            part = self.parts[s]
            if part.ntotal == 0:
                return then(np.full((len(queries), 0), -1, dtype=np.int64))
            if probes:
                part.nprobe = probes
            _, local = part.search(queries, min(per_part, int(part.ntotal)), params=params)
            return then(np.where(local >= 0, self.labels[s][np.maximum(local, 0)], -1))

        if len(self.parts) == 1:
            return [scan(0)]
        # Every shard finishes before any error is raised: the caller holds the index's
        # lock, which must not be let go while another shard still reads the index.
        futures = [_SCAN_POOL.submit(scan, s) for s in range(len(self.parts))]
        wait(futures)
        return [f.result() for f in futures]

    def _bytes_of(self, index: Any) -> int:
        index = self._faiss.downcast_index(index)
        if hasattr(index, "invlists"):  # inverted lists: a code and an id each, and centres
            return (int(index.ntotal) * (int(index.code_size) + 8)
                    + int(index.nlist) * int(index.d) * 4)
        return int(index.codes.size())

    def nbytes(self) -> int:
        total = 0
        for part, own in zip(self.parts, self.labels, strict=True):
            inner = ([part.base_index, part.refine_index] if self.rescored else [part])
            total += own.nbytes + sum(self._bytes_of(i) for i in inner)
        return total


class FaissPQIndex(TombstoneIndex):
    """Fast-scan PQ over every vector, best candidates re-scored exactly; thread-safe."""

    def __init__(self, dimension: int, **options: Any) -> None:
        self._faiss = import_faiss()
        self.options = FaissPQOptions(**options)
        super().__init__(dimension, self.options.rebuild_ratio)
        self._candidates = self.options.candidates
        self._rescore_depth = self.options.rescore_depth
        self._probes = self.options.probes
        self.train_seconds: float | None = None  # how long the codebooks took to train
        self._rows = _Rows(dimension)
        self._codes: _Codes | None = None

    @property
    def candidates(self) -> int:
        """Candidates re-ranked exactly per query; a query-time knob, no rebuild needed."""
        return self._candidates

    @candidates.setter
    def candidates(self, value: int) -> None:
        self._candidates = positive("candidates", value)

    @property
    def probes(self) -> int:
        """Inverted lists scanned per query (with ``lists``); a query-time knob."""
        return self._probes

    @probes.setter
    def probes(self, value: int) -> None:
        self._probes = positive("probes", value)

    @property
    def rescore_depth(self) -> int:
        """Candidates the scan nominates for the finer codes' second look (0: none)."""
        return self._rescore_depth

    @rescore_depth.setter
    def rescore_depth(self, value: int) -> None:
        if (value > 0) != (self.options.rescore_depth > 0):
            raise InvalidRecordError("rescore_depth switches the second look on or off only "
                                     "when the index is built (FaissPQOptions.rescore_depth)")
        self._rescore_depth = value

    @property
    def encoded(self) -> bool:
        """Whether searches scan codes (True) or are exact over the float vectors."""
        return self._codes is not None

    def _append(self, first_label: int, vectors: Matrix) -> None:
        self._rows.append(vectors)
        if self._codes is not None:
            labels = np.arange(first_label, first_label + len(vectors), dtype=np.int64)
            self._codes.add(labels, vectors)

    def _search_labels(self, queries: Matrix, take: int) -> tuple[IdArray, Matrix]:
        if self._codes is None:
            return self._exact(queries, take)
        return self._scan_and_rerank(queries, take)

    def rebuild(self) -> None:
        """Drop tombstones: compact the vectors, then retrain and re-encode the codes."""
        with self._lock:
            total = self._labels.total
            keep = np.flatnonzero(self._labels.alive).astype(np.int64)
            try:
                # Frees each old block once copied, so 10M vectors never exist twice.
                rows = self._rows.compacted(keep)
            except BaseException:
                # The old vectors are partly freed: empty the index rather than answer
                # wrongly (the catalog reloads an index that failed from the store).
                self._labels, self._rows, self._codes = LabelTable(), _Rows(self._dimension), None
                raise
            self._labels.compact()
            self._rows, self._codes = rows, None
            logger.info("compacted fast-scan index: %d live of %d", len(keep), total)
            self._maybe_encode()

    @property
    def snapshot_min_size(self) -> int:
        """Galleries with at least this many templates keep a snapshot (0: never)."""
        return self.options.snapshot_min_size

    def snapshot_config(self) -> dict[str, Any]:
        """The options the stored codes depend on (not the query-time knobs)."""
        o = self.options
        return {"index": "faiss_pq", "dimension": self._dimension,
                "subquantizer_dims": o.subquantizer_dims, "shards": o.shards, "lists": o.lists,
                "rescore": o.rescore_depth > 0,
                "rescore_codes": o.rescore_codes if o.rescore_depth > 0 else None}

    def write_snapshot(self, directory: Path) -> None:
        """Labels, live mask, float vectors and codes, as files in ``directory``."""
        with self._lock:
            np.save(directory / "ids.npy", self._labels.id_of_label)
            np.save(directory / "alive.npy", self._labels.alive)
            self._rows.write(directory / "rows.npy")
            if self._codes is not None:
                self._codes.write(directory)
            meta = {"encoded": self._codes is not None,
                    "shards": 0 if self._codes is None else len(self._codes.parts)}
            (directory / "meta.json").write_text(json.dumps(meta))

    def read_snapshot(self, directory: Path) -> None:
        """Fill this empty index from ``write_snapshot``'s files (the vectors mapped, not
        read); raise SnapshotError when they do not fit together."""
        with self._lock:
            if self._labels.total:
                raise SnapshotError("the index is not empty")
            ids = np.load(directory / "ids.npy")
            alive = np.load(directory / "alive.npy")
            if ids.dtype != np.int64 or alive.dtype != np.bool_:
                raise SnapshotError(f"labels of {ids.dtype} / {alive.dtype}")
            labels = LabelTable.restored(ids, alive)
            rows = _Rows.mapped(directory / "rows.npy", self._dimension)
            if rows.size != labels.total:
                raise SnapshotError(f"{rows.size} vectors for {labels.total} labels")
            meta = json.loads((directory / "meta.json").read_text())
            codes = None
            if meta["encoded"]:
                parts, owned = [], []
                for s in range(int(meta["shards"])):
                    part = self._faiss.read_index(str(directory / f"codes{s}.faiss"))
                    own = np.load(directory / f"codes{s}_labels.npy")
                    if (part.d != self._dimension or int(part.ntotal) != len(own)
                            or own.dtype != np.int64
                            or (len(own) and (own.min() < 0 or own.max() >= labels.total))):
                        raise SnapshotError(f"codes{s} do not fit the labels")
                    parts.append(part)
                    owned.append(own.copy())
                codes = _Codes.restored(self._faiss, parts, owned, self.options.rescore_depth > 0)
            self._labels, self._rows, self._codes = labels, rows, codes
            self._maybe_encode()

    def memory_bytes(self) -> int:
        """Bytes held: float vectors, codes and the label arrays."""
        with self._lock:
            codes = 0 if self._codes is None else self._codes.nbytes()
            return self._rows.nbytes() + codes + self._labels.nbytes()

    def _exact(self, q: Matrix, take: int) -> tuple[IdArray, Matrix]:
        """Top ``take`` live labels by brute force, in query batches of at most 8M scores."""
        batch = max(1, (1 << 23) // max(1, min(self._rows.size, _BLOCK)))
        labels = np.empty((len(q), take), dtype=np.int64)
        scores = np.empty((len(q), take), dtype=np.float32)
        for start in range(0, len(q), batch):
            rows = slice(start, start + batch)
            labels[rows], scores[rows] = self._exact_batch(q[rows], take)
        return labels, scores

    def _exact_batch(self, q: Matrix, take: int) -> tuple[IdArray, Matrix]:
        alive = self._labels.alive
        best_labels = np.empty((len(q), 0), dtype=np.int64)
        best_scores = np.empty((len(q), 0), dtype=np.float32)
        for first, block in self._rows.filled():
            sims = q @ block.T
            sims[:, ~alive[first : first + len(block)]] = -np.inf
            cut = max(0, sims.shape[1] - take)
            part = np.argpartition(sims, cut, axis=1)[:, cut:] if cut else np.broadcast_to(
                np.arange(sims.shape[1]), sims.shape)
            best_labels = np.concatenate([best_labels, part + first], axis=1)
            best_scores = np.concatenate([best_scores, np.take_along_axis(sims, part, axis=1)],
                                         axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")[:, :take]
        return (np.take_along_axis(best_labels, order, axis=1),
                np.take_along_axis(best_scores, order, axis=1))

    def _scan_and_rerank(self, q: Matrix, take: int) -> tuple[IdArray, Matrix]:
        assert self._codes is not None
        # Tombstoned codes still take candidate slots: ask for more as they accumulate.
        live_share = 1.0 - self._labels.dead_share()
        per_size = self.options.candidates_per_million * self._labels.live / 1_000_000
        depth = math.ceil(max(self._candidates, per_size, take) / live_share)
        alive = self._labels.alive

        def rescore(nominated: IdArray) -> list[tuple[IdArray, Matrix]]:
            """Each query's live candidates of one shard and their exact scores, only the
            best ``take`` of them (kept in the scan's order, so that ties among equal
            scores fall as they would over all the candidates)."""
            out = []
            for row in range(len(q)):
                cand = nominated[row]
                cand = cand[cand >= 0]
                cand = cand[alive[cand]]
                sims = self._rows.gather(cand) @ q[row]
                if len(cand) > take:
                    keep = np.sort(np.argsort(-sims, kind="stable")[:take])
                    cand, sims = cand[keep], sims[keep]
                out.append((cand, sims))
            return out

        shards = self._codes.nominate(q, depth, rescore,
                                      math.ceil(self._rescore_depth / live_share),
                                      self._probes if self.options.lists else 0)
        labels = np.empty((len(q), take), dtype=np.int64)
        scores = np.empty((len(q), take), dtype=np.float32)
        for row in range(len(q)):
            cand = np.concatenate([shard[row][0] for shard in shards])
            if len(cand) < take:  # too many tombstones among the nominated: be exact
                exact_labels, exact_scores = self._exact(q[row : row + 1], take)
                labels[row], scores[row] = exact_labels[0], exact_scores[0]
                continue
            sims = np.concatenate([shard[row][1] for shard in shards])
            best = np.argsort(-sims, kind="stable")[:take]
            labels[row], scores[row] = cand[best], sims[best]
        return labels, scores

    def _maybe_rebuild(self) -> None:
        super()._maybe_rebuild()
        self._maybe_encode()  # a gallery that just reached train_size gets its codes

    def _maybe_encode(self) -> None:
        """Train the codebook and encode every live vector once there are enough of them."""
        if (self._codes is not None or self._labels.live < self.options.train_size
                or self._dimension % self.options.subquantizer_dims):
            return
        live = np.flatnonzero(self._labels.alive).astype(np.int64)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(live, min(len(live), _TRAIN_SAMPLE), replace=False))
        started = time.perf_counter()
        codes = _Codes(self._faiss, self._dimension, self.options, self._rows.gather(sample))
        self.train_seconds = time.perf_counter() - started
        for start in range(0, len(live), _ENCODE_CHUNK):
            chunk = live[start : start + _ENCODE_CHUNK]
            codes.add(chunk, self._rows.gather(chunk))
        logger.info("encoded %d vectors for fast-scan search", len(live))
        self._codes = codes
