"""What bounds the 10M search on this machine: memory bandwidth or compute, printed as JSON.

``faiss_pq`` scans every fast-scan code of a gallery for each query, split into shards
scanned on as many threads (16 bytes a template: 80 MB per 5M-code shard). If the
machine's cores each had their own memory bandwidth, two shards scanned at once would
take as long as one alone. This script measures, in one process and one run:

* ``scan``: one query's scan of one shard of ``--codes`` codes, alone, and two such
  shards at once on two threads (FAISS releases the GIL; each thread scans on one core);
* ``copy``: a large array copied by one thread, and by two threads at once (each its own
  half-size array), in GB/s read plus written;
* ``compute``: the same scan over 40,000 codes that stay in each core's cache, 50
  queries on one thread, and on two threads at once.

The cached scan keeping its speed on two threads while ``scan`` and ``copy`` do not
means the scan is bound by the memory bandwidth the machine gives both cores together,
which no change to the scan's code alters: only fewer bytes per template do. The load
average is recorded.

    .venv/bin/python benchmarks/bandwidth.py [--codes 5000000] [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

DIMENSION = 128


def median_ms(run: Callable[[int], object], repeats: int) -> float:
    times = []
    for i in range(repeats):
        began = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - began)
    return round(1000 * float(np.median(times)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=5_000_000, help="codes per shard")
    parser.add_argument("--candidates", type=int, default=1500,
                        help="candidates one shard nominates (3,000 at 10M over 2 shards)")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)
    pool = ThreadPoolExecutor(2, initializer=faiss.omp_set_num_threads, initargs=(1,))
    rng = np.random.default_rng(0)
    load_before = [round(v, 2) for v in os.getloadavg()]
    shard = faiss.IndexPQFastScan(DIMENSION, 32, 4, faiss.METRIC_INNER_PRODUCT, 128)
    shard.train(rng.standard_normal((65_536, DIMENSION), dtype=np.float32))
    for _ in range(0, args.codes, 500_000):
        shard.add(rng.standard_normal((500_000, DIMENSION), dtype=np.float32))
    other = faiss.clone_index(shard)
    queries = rng.standard_normal((args.repeats, DIMENSION), dtype=np.float32)
    k = args.candidates

    def scan_one(i: int) -> object:
        return shard.search(queries[i : i + 1], k)

    def scan_two(i: int) -> object:
        return list(pool.map(lambda s: s.search(queries[i : i + 1], k), [shard, other]))

    big = np.ones(1 << 27, dtype=np.float32)  # 512 MiB, far beyond any cache
    halves = [np.ones(1 << 26, dtype=np.float32) for _ in range(2)]
    out_big, out_halves = np.empty_like(big), [np.empty_like(h) for h in halves]

    def copy_one(_: int) -> object:
        return np.copyto(out_big, big)

    def copy_two(_: int) -> object:
        return list(pool.map(lambda j: np.copyto(out_halves[j], halves[j]), [0, 1]))

    # The same scan over 40,000 codes (640 KB): they stay in each core's L2 cache, so
    # two threads at once share no memory traffic.
    cached = [faiss.IndexPQFastScan(DIMENSION, 32, 4, faiss.METRIC_INNER_PRODUCT, 128)
              for _ in range(2)]
    for index in cached:
        index.pq = shard.pq
        index.is_trained = True
        index.add(rng.standard_normal((40_000, DIMENSION), dtype=np.float32))

    def compute(i: int) -> object:
        for _ in range(50):
            cached[i % 2].search(queries[:1], k)
        return None

    def compute_two(_: int) -> object:
        return list(pool.map(compute, [0, 1]))

    scan = {"one_shard_alone_ms": median_ms(scan_one, args.repeats),
            "two_shards_at_once_ms": median_ms(scan_two, args.repeats)}
    copy_repeats = max(5, args.repeats // 20)
    one_copy, two_copies = median_ms(copy_one, copy_repeats), median_ms(copy_two, copy_repeats)
    moved = 2 * big.nbytes / 1e9  # read and written
    compute_one, compute_both = median_ms(compute, 50), median_ms(compute_two, 50)
    report: dict[str, Any] = {
        "benchmark": "bandwidth",
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "codes_per_shard": args.codes,
        "bytes_per_code": 16,
        "scan": scan | {
            "slowdown_two_at_once": round(scan["two_shards_at_once_ms"]
                                          / scan["one_shard_alone_ms"], 2),
            "gb_per_s_one": round(args.codes * 16 / scan["one_shard_alone_ms"] / 1e6, 1),
            "gb_per_s_two": round(2 * args.codes * 16 / scan["two_shards_at_once_ms"] / 1e6, 1),
        },
        "copy": {"one_thread_gb_per_s": round(moved / (one_copy / 1000), 1),
                 "two_threads_gb_per_s": round(moved / (two_copies / 1000), 1)},
        "compute": {"one_thread_ms": compute_one, "two_threads_at_once_ms": compute_both,
                    "slowdown_two_at_once": round(compute_both / compute_one, 2)},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
