"""Face engine speed: detection and alignment + embedding, per pack and runtime.

Prints one JSON document on stdout (progress goes to stderr):

- ``detect_ms``: median milliseconds for ``detector.detect`` on one image, with real
  photos letterboxed to 640x480 and to 1280x720;
- ``embed_ms_per_face``: median milliseconds per face for ``embedder.embed`` (alignment
  included), one face per call and eight faces per call;
- ``machine``: cores, load average, library versions, ORT providers.

Packs: yunet_sface on OpenCV and on ONNX Runtime, and dlib (HOG) when
``frvs.models.dlib_pack`` imports and dlib is installed.

    python benchmarks/engine.py [--repeat N] [--quick]

The numbers are only as quiet as the machine: ``machine.load_average`` is recorded at
the start and the end so a busy run can be recognised.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _serve import log

from frvs.core.detections import FaceDetection
from frvs.core.errors import FrvsError
from frvs.imaging.decode import BGRImage, decode_image
from frvs.models.pack import ModelPack
from frvs.models.yunet_sface import YuNetSFaceConfig, build

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FRVS_SHARED", REPO.parent / "shared")) / "data"
PHOTOS = (
    "pairs/images/couple.jpg",
    "pairs/images/img1.jpg",
    "pairs/images/img11.jpg",
    "pairs/images/img38.jpg",
    "pairs/images/img5.jpg",
    "identities/test/obama_and_biden.jpg",
)
GROUP_PHOTO = "pairs/images/selfie-many-people.jpg"
SIZES = ((640, 480), (1280, 720))
BATCH = 8


def letterbox(image: BGRImage, width: int, height: int) -> BGRImage:
    """``image`` scaled to fit ``width`` x ``height``, centred on black."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = small
    return canvas


def median_ms(call: Callable[[], object], repeat: int, per: int = 1) -> float:
    """Median wall time of ``call`` in ms divided by ``per``, after one warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000 / per)
    return round(statistics.median(times), 2)


def bench_detection(pack: ModelPack, photos: list[BGRImage], repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for width, height in SIZES:
        frames = [letterbox(p, width, height) for p in photos]
        per_photo = [median_ms(partial(pack.detector.detect, f), repeat) for f in frames]
        faces = [len(pack.detector.detect(f)) for f in frames]
        out[f"{width}x{height}"] = {
            "median_ms": round(statistics.median(per_photo), 2),
            "per_photo_ms": per_photo,
            "faces_found": faces,
        }
    return out


def group_faces(pack: ModelPack, image: BGRImage) -> list[FaceDetection]:
    """``BATCH`` faces of the group photo (largest first, repeated if it has fewer)."""
    faces = sorted(pack.detector.detect(image), key=lambda f: f.box.area, reverse=True)
    if not faces:
        raise RuntimeError(f"{pack.info.name}/{pack.runtime}: no face in {GROUP_PHOTO}")
    return [faces[k % len(faces)] for k in range(BATCH)]


def bench_embedding(pack: ModelPack, image: BGRImage, repeat: int) -> dict[str, Any]:
    faces = group_faces(pack, image)
    single = [pack.embedder.embed(image, [f])[0] for f in faces]
    out: dict[str, Any] = {
        "single_face_ms": median_ms(lambda: pack.embedder.embed(image, faces[:1]), repeat),
    }
    try:
        batched = pack.embedder.embed(image, faces)
    except FrvsError as exc:  # a runtime whose batches are broken is reported, not timed
        out[f"batch_{BATCH}_error"] = f"{type(exc).__name__}: {exc}"
        return out
    agreement = min(a.similarity(b) for a, b in zip(single, batched, strict=True))
    out[f"batch_{BATCH}_ms_per_face"] = median_ms(
        lambda: pack.embedder.embed(image, faces), repeat, per=BATCH
    )
    # 1.0 when a batch gives the templates one-by-one calls give.
    out["batch_vs_single_min_cosine"] = round(float(agreement), 7)
    return out


def packs() -> list[tuple[str, Callable[[], ModelPack]]]:
    found: list[tuple[str, Callable[[], ModelPack]]] = [
        ("yunet_sface/opencv", lambda: build(YuNetSFaceConfig(runtime="opencv"))),
        ("yunet_sface/onnxruntime", lambda: build(YuNetSFaceConfig(runtime="onnxruntime"))),
    ]
    try:
        dlib_pack = importlib.import_module("frvs.models.dlib_pack")
    except ImportError as exc:
        log(f"dlib pack not benchmarked: {exc}")
    else:
        found.append(("dlib/hog", lambda: dlib_pack.build(dlib_pack.DlibConfig(detector="hog"))))
    return found


def machine() -> dict[str, Any]:
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in ("numpy", "cv2", "onnxruntime", "onnx", "dlib"):
        try:
            versions[name] = str(importlib.import_module(name).__version__)
        except ImportError:
            continue
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per measurement")
    parser.add_argument("--quick", action="store_true", help="2 photos and 3 repeats")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else max(1, args.repeat)
    names = PHOTOS[:2] if args.quick else PHOTOS
    photos = [decode_image((DATA / p).read_bytes(), name=p) for p in names]
    group = letterbox(decode_image((DATA / GROUP_PHOTO).read_bytes()), *SIZES[0])

    report: dict[str, Any] = {
        "benchmark": "engine",
        "repeat": repeat,
        "photos": list(names),
        "machine": machine(),
        "packs": {},
    }
    for label, make in packs():
        log(f"== {label}")
        try:
            start = time.perf_counter()
            pack = make()
            load_ms = round((time.perf_counter() - start) * 1000, 1)
        except Exception as exc:
            report["packs"][label] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
            log(f"   not available: {exc}")
            continue
        report["packs"][label] = {
            "available": True,
            "runtime": pack.runtime,
            "load_ms": load_ms,
            "detect_ms": bench_detection(pack, photos, repeat),
            "embed_ms_per_face": bench_embedding(pack, group, repeat),
        }
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
