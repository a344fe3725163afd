"""Where frames come from: video files and RTSP/HTTP(S) streams (FFmpeg through PyAV),
local webcams (``/dev/videoN`` through OpenCV's V4L2 backend) and folders of images.

Every source yields ``Frame`` records with media time and wall-clock time, returns None
at the end of a finite source, and raises ``SourceError`` when it fails; the capture
worker owns reconnecting.

Every open passes the source policy again (``source_policy.py``: schemes, private hosts,
the data directory), and FFmpeg is held to the protocols of the source's scheme and to
the container formats a camera needs: no ``tty`` (which renders any text file as video),
``concat``, ``hls`` or image-sequence demuxers that would open further files or URLs, no
HTTP redirects. Why an open failed (refused connection, timeout, not a video) goes to the
server log only; operators see one message, which does not tell an open port from a
closed one.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from frvs.core.errors import FileReadError, FrvsError, ImageError, ImageTooLargeError
from frvs.imaging.decode import ImageLimits, decode_image
from frvs.video.models import Frame
from frvs.video.source_policy import (
    CheckedSource,
    SourceKind,
    SourceOrigin,
    SourcePolicy,
    SourceRefusedError,
    describe,
)

__all__ = ["AvSource", "FrameSource", "ImageFolderSource", "SourceBlockedError",
           "SourceError", "SourceNotFoundError", "SourceOptions", "WebcamSource", "check_local",
           "describe", "open_source"]

if TYPE_CHECKING:  # PyAV is imported when a video source is opened
    import av

logger = logging.getLogger(__name__)

DEMUXERS = ("mov,mp4,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,h264,hevc,mjpeg,mpjpeg,"
            "yuv4mpegpipe,rtsp")
"""The FFmpeg container formats a camera needs. Not ``tty`` (text shown as video),
``concat``/``hls``/``dash`` (which open further files and URLs) or ``image2`` (file
name patterns)."""
_HTTP, _RTSP = "http,https,tcp,tls", "rtsp,rtsps,rtp,srtp,udp,tcp,tls"
PROTOCOLS = {"file": "file", "http": _HTTP, "https": _HTTP, "rtsp": _RTSP, "rtsps": _RTSP}
"""The FFmpeg protocols each kind of source may use (its nested opens included): a file
cannot open a URL, a stream cannot open a file."""
UNREADABLE = "cannot read video from {}"
"""The one message for every failure to open a stream or file: a refused connection, a
timeout, an open port that speaks something else and a file that is not a video look
the same to operators (details in the server log)."""
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class SourceError(FrvsError):
    """A source cannot be opened or stopped delivering frames."""

    code = "source_error"


class SourceNotFoundError(SourceError):
    """The source names a file, folder or device that does not exist."""

    code = "source_not_found"


class SourceBlockedError(SourceNotFoundError):
    """The source policy refuses the source when it is opened; like a missing file, it
    is not retried."""

    code = "source_refused"


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How a source is opened.

    ``open_timeout``/``read_timeout`` bound how long a stream may stay silent before it
    counts as failed (a stall); ``loop`` replays a file forever (for soak tests and
    benchmarks); ``fps`` times image folders whose file names carry no time;
    ``start_at`` is the wall-clock time of a file's first frame (default: when opened);
    ``policy`` and ``origin`` are what the source is checked against when opened (the
    default policy protects no path and refuses private hosts). ``decoder_threads`` is
    how many threads FFmpeg decodes one stream with (0: its choice, about one per
    core, which suits one large stream; 1 suits many cameras on few cores, where the
    cameras already keep every core busy and each extra thread only adds hand-overs).
    """

    open_timeout: float = 10.0
    read_timeout: float = 5.0
    loop: bool = False
    fps: float = 1.0
    start_at: datetime | None = None
    rtsp_transport: str = "tcp"
    policy: SourcePolicy = field(default_factory=SourcePolicy)
    origin: SourceOrigin = SourceOrigin.SERVICE
    decoder_threads: int = 0


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


def open_source(url: str, camera: str, options: SourceOptions | None = None) -> FrameSource:
    """Open ``url``, once ``options.policy`` lets it through for ``options.origin``: a
    stream URL, ``/dev/videoN``, a folder of images or a video file."""
    options = options or SourceOptions()
    try:
        checked = options.policy.check(url, options.origin)
    except SourceRefusedError as exc:
        logger.warning("camera %s: source refused: %s", camera, exc.message)
        raise SourceBlockedError(exc.message) from exc
    if checked.kind is SourceKind.STREAM:
        return AvSource(checked, describe(url), camera, options)
    if checked.kind is SourceKind.EDGE:
        raise SourceBlockedError(f"camera {camera} is fed by an edge node ('frvs edge run'); "
                                 "the centre never opens its source")
    if checked.kind is SourceKind.DEVICE:
        return WebcamSource(int(checked.location.removeprefix("/dev/video")), camera)
    path = Path(checked.location)
    if path.is_dir():
        return ImageFolderSource(path, camera, options)
    if path.is_file():
        return AvSource(checked, describe(url), camera, options)
    raise SourceNotFoundError(f"source {describe(url)!r} is neither a stream URL, a device, "
                              "a folder nor a file")


def check_local(url: str, camera: str, options: SourceOptions, *,
                opened: bool = False) -> CheckedSource:
    """The source as the policy lets it through, and, when it names a file, folder or
    device, that it is there and readable: ``FileReadError`` (the CLI's exit 9) with the
    reason otherwise, before any work starts. With ``opened``, a file or folder is also
    opened once (FFmpeg reads its header; a folder must hold images), so a file that is
    not a video fails here too. Streams are only parsed and their host resolved: one
    that is down now may be up later, and the capture worker reconnects."""
    checked = options.policy.check(url, options.origin)
    if checked.kind in (SourceKind.STREAM, SourceKind.EDGE):
        return checked  # an edge camera's source is its node's: nothing here to check
    path = Path(checked.location)
    if not path.exists():
        raise FileReadError(f"source {describe(url)!r}: no such file, folder or device")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise FileReadError(f"source {describe(url)!r} is not readable (permissions)")
    if opened and checked.kind is SourceKind.PATH:
        try:
            open_source(url, camera, options).close()
        except SourceBlockedError:
            raise
        except SourceError as exc:
            raise FileReadError(f"source {describe(url)!r}: {exc.message}") from exc
    return checked


class AvSource:
    """A file or network stream decoded by FFmpeg through PyAV.

    PyAV rather than OpenCV's FFmpeg backend because it takes per-stream options (RTSP
    over TCP, socket timeouts) without a process-wide environment variable, and gives
    each frame its presentation time.
    """

    def __init__(self, source: CheckedSource, shown: str, camera: str,
                 options: SourceOptions) -> None:
        from av.video.reformatter import VideoReformatter

        self._live = source.kind is SourceKind.STREAM
        # A local file is opened through the file protocol by its resolved path, so a
        # name such as 'concat:a|b' or 'subfile,,...' is never read as a protocol.
        self._url = source.location if self._live else f"file:{source.location}"
        self._scheme = source.scheme or "file"
        self._shown = shown
        self._camera = camera
        self._options = options
        self._index = 0
        self._offset = 0.0
        self._last_time = 0.0
        self._container: av.container.InputContainer | None = None
        self._codec: av.VideoCodecContext | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._converter = VideoReformatter()
        self._due_times: tuple[float, float] | None = None  # the last two due frames
        self._fps: float | None = None
        self._start = options.start_at or datetime.now(UTC)
        self._open()

    @property
    def live(self) -> bool:
        return self._live

    @property
    def nominal_fps(self) -> float | None:
        return self._fps

    def _ffmpeg_options(self) -> dict[str, str]:
        options = {"protocol_whitelist": PROTOCOLS[self._scheme], "format_whitelist": DEMUXERS}
        if self._scheme in ("rtsp", "rtsps"):
            options["rtsp_transport"] = self._options.rtsp_transport
        if self._scheme in ("http", "https"):
            options["max_redirects"] = "0"  # a redirect could lead anywhere, unchecked
        return options

    def _unreadable(self, detail: object) -> SourceError:
        """The operator's one message; what went wrong stays in the server log."""
        logger.warning("camera %s: cannot read video from %s: %s", self._camera,
                       self._shown, detail)
        return SourceError(UNREADABLE.format(self._shown))

    def _open(self) -> None:
        import av.error

        try:
            container = av.open(
                self._url, options=self._ffmpeg_options(),
                timeout=(self._options.open_timeout, self._options.read_timeout),
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise self._unreadable(exc) from exc
        if not container.streams.video:
            container.close()
            raise self._unreadable("no video stream")
        stream = container.streams.video[0]
        # Frame-threaded decoding uses both cores for decoding large streams.
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self._options.decoder_threads
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else None
        self._container = container
        self._codec = stream.codec_context
        self._frames = container.decode(stream)

    def read(self, due: Due | None = None) -> Frame | None:
        import av.error

        while True:
            if self._frames is None:
                raise SourceError(f"{self._shown} is closed")
            try:
                decoded = next(self._frames, None)
            except (av.error.FFmpegError, OSError) as exc:
                logger.warning("camera %s: reading %s failed: %s", self._camera,
                               self._shown, exc)
                raise SourceError(f"{self._shown}: reading the stream failed") from exc
            if decoded is None:
                if self._live:
                    raise SourceError(f"{self._shown}: the stream ended")
                if not self._options.loop:
                    return None
                self._restart()
                continue
            timestamp = self._timestamp(decoded)
            if due is None or due(timestamp):
                self._due_times = (self._due_times[1] if self._due_times else timestamp,
                                   timestamp)
                self._skip_between(timestamp)
                return self._frame(decoded, timestamp)
            self._skip_between(timestamp)
            self._index += 1

    def _skip_between(self, timestamp: float) -> None:
        """Let FFmpeg drop frames nothing refers to while the next due frame is at least
        two frames away.

        Such frames (B-frames outside a pyramid, the upper layers of temporally scalable
        streams) are not decoded at all, at no cost to any other frame; a stream of I-
        and P-frames only has none and decodes as before. The next due time is foreseen
        from the spacing of the last two due frames; if it comes early after all, the
        sampler takes the first frame decoded after it. Only with one decoder thread:
        frame threads decode packets ahead, past the point where the setting changes.
        """
        if (self._codec is None or self._due_times is None or not self._fps
                or self._options.decoder_threads != 1):
            return
        step = 1.0 / self._fps
        first, last = self._due_times
        interval = last - first
        skip = interval > 2.5 * step and timestamp + 1.5 * step < last + interval - step
        if self._codec.skip_frame != ("NONREF" if skip else "DEFAULT"):
            self._codec.skip_frame = "NONREF" if skip else "DEFAULT"

    def _timestamp(self, decoded: av.VideoFrame) -> float:
        step = 1.0 / self._fps if self._fps else 0.04
        media = decoded.time if decoded.time is not None else self._last_time + step
        timestamp = max(self._offset + media, self._last_time + 1e-6 if self._index else 0.0)
        self._last_time = timestamp
        return timestamp

    def _frame(self, decoded: av.VideoFrame, timestamp: float) -> Frame:
        # One converter per source, on the capture thread: a fresh one per frame (what
        # to_ndarray(format=...) makes) starts and joins its own scaling threads each time.
        # Measured on a 720p frame: 0.32 ms of CPU against 1.07 ms.
        converted = self._converter.reformat(decoded, format="bgr24", threads=1)
        image = np.ascontiguousarray(converted.to_ndarray(), dtype=np.uint8)
        captured = datetime.now(UTC) if self._live else self._start + timedelta(seconds=timestamp)
        frame = Frame(self._camera, self._index, timestamp, captured, image)
        self._index += 1
        return frame

    def _restart(self) -> None:
        """Replay a file: media time keeps growing so tracks never see time go back."""
        self.close()
        self._due_times = None
        self._offset = self._last_time + (1.0 / self._fps if self._fps else 0.04)
        self._open()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._codec = None
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


def _allowed(image: Path, camera: str, options: SourceOptions) -> bool:
    """Whether a folder's image passes the policy itself: a link out of the folder into
    FRVS's data (another camera's crops, enrolment photos) is skipped."""
    try:
        options.policy.check(str(image), options.origin)
    except SourceRefusedError as exc:
        logger.warning("camera %s: skipping %s: %s", camera, image.name, exc.message)
        return False
    return True


class ImageFolderSource:
    """The images of a folder in name order, as a finite camera.

    A file name holding a time (see ``time_from_name``) gives the frame its wall-clock
    time, which attendance uses; otherwise frames are spaced ``1 / fps`` apart.
    """

    def __init__(self, folder: Path, camera: str, options: SourceOptions) -> None:
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                             and _allowed(p, camera, options))
        # A folder under a media root only ever yields files under a media root: a link
        # inside it cannot reach elsewhere, whoever registered the camera.
        self._confined = options.policy.in_media_root(folder.resolve())
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
                image = decode_image(self._checked_bytes(path), self._limits, str(path))
            except ImageError as exc:
                logger.warning("skipping %s: %s", path, exc.message)
                continue
            except (OSError, SourceRefusedError) as exc:
                logger.warning("camera %s: skipping %s: %s", self._camera, path.name,
                               getattr(exc, "message", exc))
                continue
            return Frame(self._camera, i, timestamp, captured, image)
        return None

    def _checked_bytes(self, path: Path) -> bytes:
        """The file's bytes, judged on the file actually opened (its path read back from
        the open descriptor), not on its name: a link swapped after the folder was
        checked cannot make a camera read FRVS's data or leave the media roots."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
            self._options.policy.check(str(opened), self._options.origin)
            if self._confined and not self._options.policy.in_media_root(opened):
                raise SourceRefusedError(f"{path.name} leads outside video.media_roots")
            size = os.fstat(fd).st_size
            if size > self._limits.max_bytes:
                raise ImageTooLargeError(f"{path}: {size} bytes is more than the limit of "
                                         f"{self._limits.max_bytes} bytes")
            with os.fdopen(os.dup(fd), "rb") as f:
                return f.read(self._limits.max_bytes + 1)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._index = len(self._files)
