"""Where frames come from: video files and RTSP/HTTP(S) streams (FFmpeg through PyAV),
local webcams (``/dev/videoN`` through OpenCV's V4L2 backend) and folders of images.

Every source yields ``Frame`` records with media time and wall-clock time, returns None
at the end of a finite source, and raises ``SourceError`` when it fails; the capture
worker owns reconnecting.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import av
import av.error
import cv2
import numpy as np

from frvs.core.errors import FrvsError, ImageError
from frvs.imaging.decode import ImageLimits, read_image
from frvs.video.models import Frame

logger = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "srt://", "udp://")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class SourceError(FrvsError):
    """A source cannot be opened or stopped delivering frames."""

    code = "source_error"


class SourceNotFoundError(SourceError):
    """The source names a file, folder or device that does not exist."""

    code = "source_not_found"


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How a source is opened.

    ``open_timeout``/``read_timeout`` bound how long a stream may stay silent before it
    counts as failed (a stall); ``loop`` replays a file forever (for soak tests and
    benchmarks); ``fps`` times image folders whose file names carry no time;
    ``start_at`` is the wall-clock time of a file's first frame (default: when opened).
    """

    open_timeout: float = 10.0
    read_timeout: float = 5.0
    loop: bool = False
    fps: float = 1.0
    start_at: datetime | None = None
    rtsp_transport: str = "tcp"


Due = Callable[[float], bool]
"""Whether the frame at this media time (seconds) is wanted (the camera's sampler)."""


class FrameSource(Protocol):
    """A camera's frames, one at a time, on the capture thread."""

    @property
    def live(self) -> bool:
        """True for streams and devices: frames not read in time are lost anyway."""
        ...

    @property
    def nominal_fps(self) -> float | None: ...

    def read(self, due: Due | None = None) -> Frame | None:
        """The next frame (the next ``due`` one: frames not due are passed over without
        being converted to BGR, the costly part after decoding); None at the end of a
        finite source; ``SourceError`` on failure."""
        ...

    def close(self) -> None: ...


def describe(url: str) -> str:
    """The URL with any password hidden, for logs and status."""
    return re.sub(r"(://[^:/@]+):[^@/]+@", r"\1:***@", url)


def open_source(url: str, camera: str, options: SourceOptions | None = None) -> FrameSource:
    """Open ``url``: a stream URL, ``/dev/videoN``, a folder of images or a video file."""
    options = options or SourceOptions()
    if url.startswith(STREAM_SCHEMES):
        return AvSource(url, camera, options, live=True)
    if url.startswith("file://"):
        url = url[len("file://"):]
    device = re.fullmatch(r"/dev/video(\d+)", url)
    if device:
        return WebcamSource(int(device.group(1)), camera)
    path = Path(url)
    if path.is_dir():
        return ImageFolderSource(path, camera, options)
    if path.is_file():
        return AvSource(str(path), camera, options, live=False)
    raise SourceNotFoundError(f"source {describe(url)!r} is neither a stream URL, a device, "
                              "a folder nor a file")


class AvSource:
    """A file or network stream decoded by FFmpeg through PyAV.

    PyAV rather than OpenCV's FFmpeg backend because it takes per-stream options (RTSP
    over TCP, socket timeouts) without a process-wide environment variable, and gives
    each frame its presentation time.
    """

    def __init__(self, url: str, camera: str, options: SourceOptions, live: bool) -> None:
        self._url = url
        self._camera = camera
        self._options = options
        self._live = live
        self._index = 0
        self._offset = 0.0
        self._last_time = 0.0
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._fps: float | None = None
        self._start = options.start_at or datetime.now(UTC)
        self._open()

    @property
    def live(self) -> bool:
        return self._live

    @property
    def nominal_fps(self) -> float | None:
        return self._fps

    def _open(self) -> None:
        ffmpeg_options: dict[str, str] = {}
        if self._url.startswith(("rtsp://", "rtsps://")):
            ffmpeg_options["rtsp_transport"] = self._options.rtsp_transport
        try:
            container = av.open(
                self._url, options=ffmpeg_options,
                timeout=(self._options.open_timeout, self._options.read_timeout),
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open {describe(self._url)}: {exc}") from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{describe(self._url)} has no video stream")
        stream = container.streams.video[0]
        # Frame-threaded decoding uses both cores for decoding large streams.
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else None
        self._container = container
        self._frames = container.decode(stream)

    def read(self, due: Due | None = None) -> Frame | None:
        while True:
            if self._frames is None:
                raise SourceError(f"{describe(self._url)} is closed")
            try:
                decoded = next(self._frames, None)
            except (av.error.FFmpegError, OSError) as exc:
                raise SourceError(f"{describe(self._url)}: {exc}") from exc
            if decoded is None:
                if self._live:
                    raise SourceError(f"{describe(self._url)}: the stream ended")
                if not self._options.loop:
                    return None
                self._restart()
                continue
            timestamp = self._timestamp(decoded)
            if due is None or due(timestamp):
                return self._frame(decoded, timestamp)
            self._index += 1

    def _timestamp(self, decoded: av.VideoFrame) -> float:
        step = 1.0 / self._fps if self._fps else 0.04
        media = decoded.time if decoded.time is not None else self._last_time + step
        timestamp = max(self._offset + media, self._last_time + 1e-6 if self._index else 0.0)
        self._last_time = timestamp
        return timestamp

    def _frame(self, decoded: av.VideoFrame, timestamp: float) -> Frame:
        image = np.ascontiguousarray(decoded.to_ndarray(format="bgr24"), dtype=np.uint8)
        captured = datetime.now(UTC) if self._live else self._start + timedelta(seconds=timestamp)
        frame = Frame(self._camera, self._index, timestamp, captured, image)
        self._index += 1
        return frame

    def _restart(self) -> None:
        """Replay a file: media time keeps growing so tracks never see time go back."""
        self.close()
        self._offset = self._last_time + (1.0 / self._fps if self._fps else 0.04)
        self._open()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None


class WebcamSource:
    """A local V4L2 camera (``/dev/videoN``) through OpenCV."""

    def __init__(self, device: int, camera: str) -> None:
        self._device = device
        self._camera = camera
        self._index = 0
        self._t0 = datetime.now(UTC)
        self._cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not self._cap.isOpened():
            raise SourceError(f"cannot open /dev/video{device}")

    @property
    def live(self) -> bool:
        return True

    @property
    def nominal_fps(self) -> float | None:
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        return fps if fps > 0 else None

    def read(self, due: Due | None = None) -> Frame | None:
        while True:
            ok, image = self._cap.read()
            if not ok or image is None:
                raise SourceError(f"/dev/video{self._device} delivered no frame")
            now = datetime.now(UTC)
            timestamp = (now - self._t0).total_seconds()
            self._index += 1
            if due is None or due(timestamp):
                return Frame(self._camera, self._index - 1, timestamp, now,
                             np.ascontiguousarray(image, dtype=np.uint8))

    def close(self) -> None:
        self._cap.release()


_STAMP = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[-:]?(\d{2})[-:]?(\d{2})"
)


def time_from_name(name: str) -> datetime | None:
    """A UTC time written in a file name (``2024-05-01T08-59-00`` or
    ``20240501_085900``), or None when the name carries none."""
    match = _STAMP.search(name)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


class ImageFolderSource:
    """The images of a folder in name order, as a finite camera.

    A file name holding a time (see ``time_from_name``) gives the frame its wall-clock
    time, which attendance uses; otherwise frames are spaced ``1 / fps`` apart.
    """

    def __init__(self, folder: Path, camera: str, options: SourceOptions) -> None:
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"{folder} holds no images")
        self._camera = camera
        self._options = options
        self._index = 0
        self._start = options.start_at or datetime.now(UTC)
        self._limits = ImageLimits()
        self._first_stamp = time_from_name(self._files[0].name)

    @property
    def live(self) -> bool:
        return False

    @property
    def nominal_fps(self) -> float | None:
        return self._options.fps

    def read(self, due: Due | None = None) -> Frame | None:
        while self._index < len(self._files):
            path = self._files[self._index]
            i = self._index
            self._index += 1
            stamp = time_from_name(path.name)
            if stamp is not None and self._first_stamp is not None:
                timestamp = (stamp - self._first_stamp).total_seconds()
                captured = stamp
            else:
                timestamp = i / self._options.fps
                captured = self._start + timedelta(seconds=timestamp)
            if due is not None and not due(timestamp):
                continue  # not decoded at all
            try:
                image = read_image(path, self._limits)
            except ImageError as exc:
                logger.warning("skipping %s: %s", path, exc.message)
                continue
            return Frame(self._camera, i, timestamp, captured, image)
        return None

    def close(self) -> None:
        self._index = len(self._files)
