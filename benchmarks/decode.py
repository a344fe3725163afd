"""Still-image decoding for detection: the full-size path against the reduced DCT scale,
per format and per megapixel.

Each case is a real photograph (``pairs/images/img40.jpg``, 3061x4600) resized to
about 1, 3 and 12 megapixels and encoded in memory as JPEG (quality 90), PNG and WebP
(quality 90); plus ``img38.jpg`` and ``img39.jpg`` as they are (the verify benchmark's
pair). For each, two ways to the detector's input (longer side 640, as
``detection.max_side``):

- ``full``: ``decode_image`` (every pixel, BGR), then the shrink to the working size;
- ``reduced``: ``decode_scaled`` (a JPEG at 1/2, 1/4 or 1/8 when that still covers the
  working size; other formats as ``full``), then the shrink.

Wall and CPU milliseconds are medians of ``--repeat`` runs, also per decoded megapixel
of the full image.

    python benchmarks/decode.py [--repeat N]

Prints one JSON document on stdout; the load average is recorded at start and end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from frvs.imaging.decode import BGRImage, decode_image, decode_scaled

SHARED = Path(os.environ.get("FRVS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PHOTOS = SHARED / "data" / "pairs" / "images"
WORKING_SIDE = 640
MEGAPIXELS = (1, 3, 12)
FORMATS = {"JPEG": {"quality": 90}, "PNG": {}, "WEBP": {"quality": 90}}


def shrink(image: BGRImage) -> BGRImage:
    """What detection does first: the longer side to the working size (INTER_AREA)."""
    h, w = image.shape[:2]
    scale = min(1.0, WORKING_SIDE / max(h, w))
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``work`` (after one warm-up run)."""
    work()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return 1000 * statistics.median(walls), 1000 * statistics.median(cpus)


def cases() -> list[tuple[str, str, bytes]]:
    """(label, format, bytes): the resized photo in each format, and the verify pair."""
    source = Image.open(PHOTOS / "img40.jpg").convert("RGB")
    out = []
    for mpx in MEGAPIXELS:
        scale = (mpx * 1e6 / (source.width * source.height)) ** 0.5
        resized = source.resize((round(source.width * scale), round(source.height * scale)),
                                Image.Resampling.LANCZOS)
        for fmt, params in FORMATS.items():
            buffer = io.BytesIO()
            resized.save(buffer, fmt, **params)
            out.append((f"{mpx} Mpx {fmt}", fmt, buffer.getvalue()))
    for name in ("img38.jpg", "img39.jpg"):
        out.append((name, "JPEG", (PHOTOS / name).read_bytes()))
    return out


def measure(label: str, fmt: str, data: bytes, repeat: int) -> dict[str, Any]:
    full_image = decode_image(data)
    scaled = decode_scaled(data, WORKING_SIDE)
    megapixels = full_image.shape[0] * full_image.shape[1] / 1e6
    full = timed(lambda: shrink(decode_image(data)), repeat)
    reduced = timed(lambda: shrink(decode_scaled(data, WORKING_SIDE).pixels), repeat)
    return {
        "case": label, "format": fmt, "bytes": len(data),
        "size": [full_image.shape[1], full_image.shape[0]],
        "megapixels": round(megapixels, 2), "dct_factor": scaled.factor,
        "full": {"wall_ms": round(full[0], 1), "cpu_ms": round(full[1], 1),
                 "cpu_ms_per_mpx": round(full[1] / megapixels, 1)},
        "reduced": {"wall_ms": round(reduced[0], 1), "cpu_ms": round(reduced[1], 1),
                    "cpu_ms_per_mpx": round(reduced[1] / megapixels, 1)},
        "cpu_saved": round(1 - reduced[1] / full[1], 2) if full[1] else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    load_start = os.getloadavg()
    results = [measure(label, fmt, data, args.repeat) for label, fmt, data in cases()]
    print(json.dumps({
        "benchmark": "decode", "working_side": WORKING_SIDE, "repeat": args.repeat,
        "results": results, "cpu_count": os.cpu_count(),
        "load_average": {"start": load_start, "end": os.getloadavg()},
    }, indent=2))


if __name__ == "__main__":
    main()
