"""Video pipeline throughput on the real clip, printed as JSON.

Per pack: processed frames per second and real-time factor (clip fps / 1 s) with
detection on every frame and at 5 fps sampling, at the clip's native resolution (and
with the default 2x enlargement for small faces); then how many 720p cameras at 5 fps
one machine sustains (processed 720p frames per second / 5). Decoding is included.
Timings are noisy on a shared machine: run it alone.

    .venv/bin/python benchmarks/video.py [--packs yunet_sface,dlib]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2

from frvs.config.settings import load_settings
from frvs.imaging.decode import read_image
from frvs.models.registry import PackRegistry
from frvs.video.matching import TemplateMatcher
from frvs.video.models import Frame
from frvs.video.processor import DetectionScale, ProcessorOptions, TrackProcessor
from frvs.video.sampling import FrameSampler
from frvs.video.sources import open_source
from frvs.video.tracking import TrackerOptions

DATA = Path(os.environ.get("FRVS_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
CLIP = DATA / "video" / "short_hamilton_clip.mp4"


def _frames(size: tuple[int, int] | None = None) -> list[Frame]:
    src = open_source(str(CLIP), "bench")
    out = []
    while (f := src.read()) is not None:
        if size:
            f = Frame(f.camera, f.index, f.timestamp, f.captured_at,
                      cv2.resize(f.image, size, interpolation=cv2.INTER_LINEAR))
        out.append(f)
    return out


def _run(pack_name: str, registry: PackRegistry, frames: list[Frame], fps: float | None,
         scale: DetectionScale) -> dict[str, float]:
    pack = registry.get(pack_name)
    matcher = TemplateMatcher()
    matcher.add_gallery("w", "watch_list", pack.info.thresholds.default, pack_name,
                        pack.info.space)
    for name in ("lin-manuel-miranda", "alex-lacamoire"):
        image = read_image(DATA / "video" / f"{name}.png")
        face = max(pack.detector.detect(image), key=lambda d: d.box.area)
        matcher.enrol("w", name, pack.embedder.embed(image, [face])[0])
    options = ProcessorOptions(galleries=("w",), detection=scale,
                               tracker=TrackerOptions(fps=fps or 29.97))
    proc = TrackProcessor("bench", pack, matcher, options)
    sampler = FrameSampler(fps)
    started = time.perf_counter()
    processed = 0
    for frame in frames:
        if sampler.keep(frame.timestamp):
            proc.process(frame)
            processed += 1
    proc.finish()
    elapsed = time.perf_counter() - started
    media = frames[-1].timestamp - frames[0].timestamp
    return {"processed_frames": processed, "seconds": round(elapsed, 2),
            "processed_fps": round(processed / elapsed, 1),
            "realtime_factor": round(media / elapsed, 2), "embeddings": proc.embeddings}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packs", default="yunet_sface,dlib")
    args = parser.parse_args()
    settings = load_settings()
    registry = PackRegistry(settings.packs, settings.default_pack)
    native = _frames()
    hd = _frames((1280, 720))
    report: dict[str, object] = {"clip": CLIP.name, "frames": len(native),
                                 "cpu_count": os.cpu_count(), "packs": {}}
    packs = report["packs"]
    assert isinstance(packs, dict)
    for name in args.packs.split(","):
        if name not in registry.names:
            packs[name] = {"skipped": "pack not configured/installed"}
            continue
        native_scale = DetectionScale(min_short_side=1, max_long_side=4096)
        result = {
            "native_every_frame": _run(name, registry, native, None, native_scale),
            "native_5fps": _run(name, registry, native, 5.0, native_scale),
            "upscaled_every_frame": _run(name, registry, native, None, DetectionScale()),
            "upscaled_5fps": _run(name, registry, native, 5.0, DetectionScale()),
            "hd720_every_frame": _run(name, registry, hd, None, native_scale),
        }
        result["cameras_720p_at_5fps"] = round(
            result["hd720_every_frame"]["processed_fps"] / 5.0, 1)
        packs[name] = result
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
