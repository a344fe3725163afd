"""Fixtures of the video tests: an application on a fresh SQLite store with galleries
enrolled from the real photographs, and a real RTSP server on loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtsp_helper import SYSTEM_PYTHON, RtspServer
from video_app import make_app, watch_hamilton

from frvs.app import Application


@pytest.fixture
def watch_app(tmp_path: Path, data_dir: Path) -> Iterator[Application]:
    """The acceptance setup: both reference photos enrolled in a watch list. The RTSP
    server is on loopback, so the deployment allows private hosts
    (``video.allow_private_sources``; off by default)."""
    app = make_app(tmp_path / "data", allow_private_sources=True)
    watch_hamilton(app, data_dir)
    yield app
    app.stop()


@pytest.fixture(scope="session")
def clip_ts(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The clip as H.264 in MPEG-TS with a short GOP, made by Debian's ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or not SYSTEM_PYTHON.exists():
        pytest.fail("RTSP tests need Debian's ffmpeg and python3-gi with gst-rtsp-server")
    out = tmp_path_factory.mktemp("rtsp") / "clip.ts"
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i",
                    str(data_dir / "video" / "short_hamilton_clip.mp4"), "-an", "-c:v", "libx264",
                    "-preset", "veryfast", "-g", "15", "-bf", "0", "-f", "mpegts", str(out)],
                   check=True)
    return out


@pytest.fixture
def rtsp(clip_ts: Path) -> Iterator[RtspServer]:
    server = RtspServer(clip_ts)
    server.start()
    yield server
    server.stop()
