"""EmbedBatcher: cameras asking at the same time share one embedding call, and each
gets its own templates back, in order; with several workers, a request does not wait
behind another worker's batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from frvs.config.settings import load_settings
from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.core.templates import ModelSpace, Template
from frvs.imaging.decode import BGRImage
from frvs.models.pack import ModelPack
from frvs.models.quality import FaceQuality, PoseEstimate
from frvs.models.registry import PackRegistry
from frvs.pipeline.batching import EmbedBatcher, EmbedderStoppedError
from frvs.video.models import Shot

DIM = 128


class GatedEmbedder:
    """An aligned-crop embedder whose first call waits until released; every crop's
    template points in the direction written in its top-left pixel."""

    def __init__(self, space: ModelSpace) -> None:
        self.space = space
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def align(self, image: BGRImage, face: FaceDetection) -> BGRImage:
        return image

    def embed(self, image: BGRImage, faces: Sequence[FaceDetection]) -> list[Template]:
        return self.embed_aligned([image for _ in faces])

    def embed_aligned(self, crops: Sequence[BGRImage]) -> list[Template]:
        first = not self.entered.is_set()
        self.entered.set()
        if first:
            self.gate.wait(5)
        self.calls.append(len(crops))
        out = []
        for crop in crops:
            v = np.zeros(DIM, dtype=np.float32)
            v[int(crop[0, 0, 0])] = 1.0
            out.append(Template(v, self.space))
        return out


@pytest.fixture
def gated(tmp_path: Path) -> tuple[EmbedBatcher, GatedEmbedder]:
    settings = load_settings(data_dir=tmp_path)
    info = PackRegistry(settings.packs, settings.default_pack).info("yunet_sface")
    embedder = GatedEmbedder(info.space)
    pack = ModelPack(info, None, embedder, "test")  # type: ignore[arg-type]
    return EmbedBatcher(pack, max_batch=8, workers=1), embedder


def shot(direction: int) -> Shot:
    patch = np.full((112, 112, 3), direction, dtype=np.uint8)
    points = np.array([[38, 52], [74, 52], [56, 72], [42, 92], [70, 92]], dtype=np.float32)
    det = FaceDetection(Box(0, 0, 112, 112), Landmarks(points), 0.9)
    quality = FaceQuality(0.9, 112, 36, 50, 128, 40, PoseEstimate(0, 0, 0), 0.8)
    return Shot(direction, 0, 0.0, datetime.now(UTC), det, quality, patch, det, 1.0)


def test_waiting_requests_share_one_call_and_get_their_own_templates(
        gated: tuple[EmbedBatcher, GatedEmbedder]) -> None:
    batcher, embedder = gated
    batcher.start()
    results: dict[int, list[int]] = {}

    def camera(directions: list[int]) -> None:
        templates = batcher([shot(d) for d in directions])
        results[directions[0]] = [int(np.argmax(t.vector)) for t in templates]

    requests = [[1], [10, 11], [20], [30, 31, 32]]
    threads = [threading.Thread(target=camera, args=(r,)) for r in requests]
    threads[0].start()
    assert embedder.entered.wait(5)  # the first request is being embedded, alone
    for t in threads[1:]:
        t.start()
    while batcher._inbox.qsize() < 3:  # the three others wait behind the gate
        time.sleep(0.01)
    embedder.gate.set()
    for t in threads:
        t.join(5)
    batcher.stop()
    assert embedder.calls == [1, 6]
    assert results == {r[0]: r for r in requests}
    assert batcher.mean_batch == pytest.approx(3.5)


def test_a_stopped_batcher_refuses(gated: tuple[EmbedBatcher, GatedEmbedder]) -> None:
    batcher, embedder = gated
    embedder.gate.set()
    batcher.start()
    assert len(batcher([shot(3)])) == 1
    batcher.stop()
    with pytest.raises(EmbedderStoppedError):
        batcher([shot(4)])


def test_a_second_worker_embeds_while_the_first_is_busy(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    info = PackRegistry(settings.packs, settings.default_pack).info("yunet_sface")
    embedder = GatedEmbedder(info.space)
    pack = ModelPack(info, None, embedder, "test")  # type: ignore[arg-type]
    batcher = EmbedBatcher(pack, max_batch=8, workers=2)
    batcher.start()
    done: dict[int, list[int]] = {}

    def camera(direction: int) -> None:
        done[direction] = [int(np.argmax(t.vector)) for t in batcher([shot(direction)])]

    held = threading.Thread(target=camera, args=(1,))
    held.start()
    assert embedder.entered.wait(5)  # the first worker is held inside its call
    second = threading.Thread(target=camera, args=(2,))
    second.start()
    second.join(5)
    assert done == {2: [2]}  # answered by the other worker while the first still waits
    embedder.gate.set()
    held.join(5)
    batcher.stop()
    assert done == {1: [1], 2: [2]}
    with pytest.raises(EmbedderStoppedError):
        batcher([shot(3)])


def test_stopping_several_workers_ends_every_one_at_once(tmp_path: Path) -> None:
    """Each worker takes one stop marker; the last one out fails what still waits (the
    first one out used to take the others' markers, and stop() waited its timeout)."""
    settings = load_settings(data_dir=tmp_path)
    info = PackRegistry(settings.packs, settings.default_pack).info("yunet_sface")
    embedder = GatedEmbedder(info.space)
    embedder.gate.set()
    for _ in range(5):
        batcher = EmbedBatcher(ModelPack(info, None, embedder, "test"),  # type: ignore[arg-type]
                               workers=4)
        batcher.start()
        assert len(batcher([shot(5)])) == 1
        began = time.monotonic()
        batcher.stop(timeout=5)
        assert time.monotonic() - began < 1
        assert not any(t.is_alive() for t in batcher._threads)


def test_processor_options_keep_the_configured_sweep() -> None:
    from frvs.pipeline.camera import processor_options
    from frvs.pipeline.config import VideoSettings
    from frvs.video.models import CameraSpec

    base = VideoSettings(sweep_interval=0).processor(("w",))
    spec = CameraSpec("c", "clip.mp4", ("w",), sample_fps=5.0)
    options = processor_options(spec, base, 25.0)
    assert options.sweep.interval == 0 and options.tracker.fps == 5.0

