"""Two cameras fed faster than this machine analyses them: memory stays bounded and
the frames that could not be analysed are dropped and counted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from frvs.app import Application
from frvs.pipeline.camera import CameraRuntime
from frvs.video.service import CameraSpec
from frvs.video.sources import SourceOptions

pytestmark = pytest.mark.slow

SOAK_SECONDS = 45


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_two_fast_cameras_drop_frames_and_hold_memory(
        watch_app: Application, data_dir: Path) -> None:
    clip = str(data_dir / "video" / "short_hamilton_clip.mp4")
    # The clip replayed forever at 8x its rate (240 frames/s per camera), every frame
    # to be analysed: far more than two cores can detect.
    runtime = CameraRuntime(pace=8.0, source=SourceOptions(loop=True),
                            processor=watch_app.settings.video.processor())
    sup = watch_app.video.supervisor
    for name in ("a", "b"):
        sup.start_camera(CameraSpec(name, clip, ("hamilton",), sample_fps=None), runtime)
    time.sleep(12)  # models loaded, buffers and tracks at steady state
    baseline = _rss_mb()
    peak = baseline
    deadline = time.monotonic() + SOAK_SECONDS
    while time.monotonic() < deadline:
        time.sleep(1)
        peak = max(peak, _rss_mb())
    statuses = {s.camera: s for s in sup.status()}
    sup.stop()
    for status in statuses.values():
        assert status.frames_read > 2 * status.frames_processed > 0
        assert status.dropped > 0
        # Every frame read was analysed, dropped, buffered, or in analysis.
        in_flight = runtime.buffer_capacity + 1
        assert status.frames_read - status.dropped - status.frames_processed <= in_flight
    assert peak - baseline < 80, f"RSS grew from {baseline:.0f} MB to {peak:.0f} MB"
