"""Decode untrusted image bytes into a BGR uint8 array.

Every check that needs only the header runs before any pixel is decoded
(``inspect_image``): bytes, width x height, and the aspect ratio (a 68-byte PNG of
1 x 39,000,000 pixels is refused at once). Pixels are then decoded with as few
full-size buffers as possible, because a 40 Mpx image is 120 MB as BGR:

- WebP through OpenCV's libwebp binding, straight into the BGR(A) array (Pillow's WebP
  plugin holds the decoder's canvas, a copy of the frame and the image: three buffers);
- every other format through Pillow (it knows the most modes and refuses truncated
  files), converted to BGR a band of rows at a time into one preallocated array;
- EXIF orientation applied to the array at the end, one copy only when it turns.

``decode_scaled`` decodes a JPEG at 1/2, 1/4 or 1/8 of its size in libjpeg's DCT
(Pillow's ``draft``) when the smaller image is still at least the size the caller will
work at (the detector's): fewer pixels to decode, convert, hash and shrink. The result
keeps the way back to every pixel (``ScaledImage.full``) for faces too small in it.

Transparent areas become white, 16-bit and float grayscale are stretched onto 8 bits.
Every failure becomes one of the ``ImageError`` classes.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from frvs.core.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageAspectRatioError,
    ImageTooLargeError,
    NotAnImageError,
)

BGRImage = npt.NDArray[np.uint8]

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_ASPECT_RATIO = 20.0
DEFAULT_MAX_JPEG_SCAN_PIXELS = 100 * DEFAULT_MAX_PIXELS
_SCAN_PIXELS_FLOOR = 4_000_000

_ORIENTATION_TAG = 0x0112
_BAND_BYTES = 1 << 22
"""Pixels converted per band in the Pillow path (about 4 MB of source pixels)."""

_UPRIGHT: dict[int, Callable[[BGRImage], BGRImage]] = {
    # EXIF orientation -> the view that displays it upright (as ImageOps.exif_transpose).
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Bounds that protect the process from hostile or accidental huge inputs."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO
    max_jpeg_scan_pixels: int = DEFAULT_MAX_JPEG_SCAN_PIXELS


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What an image's header says, read before any pixel is decoded."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def inspect_image(data: bytes, limits: ImageLimits | None = None,
                  name: str = "image") -> ImageHeader:
    """The header of ``data``, checked against ``limits`` without decoding a pixel.

    Raises what ``decode_image`` raises for the bytes and the header.
    """
    limits = limits or ImageLimits()
    with _opened(data, limits, name) as (_, header):
        return header


def decode_image(data: bytes, limits: ImageLimits | None = None, name: str = "image") -> BGRImage:
    """Decode ``data`` into an (H, W, 3) BGR uint8 array, upright per its EXIF orientation.

    Raises ``EmptyImageError``, ``NotAnImageError``, ``CorruptImageError``,
    ``ImageTooLargeError`` or ``ImageAspectRatioError`` with a message naming ``name``.
    """
    limits = limits or ImageLimits()
    with _opened(data, limits, name) as (image, header):
        bgr, orientation, _ = _decode_opened(data, image, header, 1, name)
    # Pillow's copy is closed by now: turning costs one array, never two.
    return _upright(bgr, orientation)


DCT_DENOMINATORS = (8, 4, 2)
"""The reduced scales libjpeg decodes at (1/8, 1/4, 1/2), largest reduction first."""


@dataclass(frozen=True, slots=True)
class ScaledImage:
    """An image decoded at ``1/factor`` of its size, upright, and the bytes it came from.

    ``pixels`` is what detection works on; ``full()`` decodes every pixel again (as
    ``decode_image``) for what needs more detail than ``pixels`` holds. A coordinate in
    ``pixels`` times ``factor`` is the same place in the full image.
    """

    pixels: BGRImage
    factor: int
    data: bytes
    name: str
    limits: ImageLimits

    def full(self) -> BGRImage:
        """All the image's pixels, as ``decode_image`` returns them."""
        return self.pixels if self.factor == 1 else decode_image(self.data, self.limits,
                                                                 self.name)


def dct_factor(header: ImageHeader, min_side: int) -> int:
    """The largest DCT reduction of a JPEG whose longer side stays at least ``min_side``
    (1 for other formats, or when no reduction leaves enough pixels)."""
    if header.format != "JPEG":
        return 1
    longer = max(header.width, header.height)
    return next((d for d in DCT_DENOMINATORS if -(-longer // d) >= min_side), 1)


def decode_scaled(data: bytes, min_side: int, limits: ImageLimits | None = None,
                  name: str = "image") -> ScaledImage:
    """Decode ``data`` at the smallest DCT scale whose longer side is at least
    ``min_side`` (JPEG; every other format at full size), upright per its EXIF
    orientation. Same checks and errors as ``decode_image``, all made on the full-size
    header before any pixel is decoded."""
    limits = limits or ImageLimits()
    with _opened(data, limits, name) as (image, header):
        bgr, orientation, factor = _decode_opened(data, image, header,
                                                  dct_factor(header, min_side), name)
    return ScaledImage(_upright(bgr, orientation), factor, data, name, limits)


def _decode_opened(data: bytes, image: Image.Image, header: ImageHeader, factor: int,
                   name: str) -> tuple[BGRImage, object, int]:
    """The pixels of the opened ``image`` at ``1/factor`` (a JPEG's DCT scale; 1 for every
    other format), as stored, with the EXIF orientation to apply and the factor used.

    WebP through libwebp; a plain colour JPEG through OpenCV (``_libjpeg_bgr``); anything
    else through Pillow, which picks a JPEG's reduced scale itself from the size asked.
    """
    with _pillow_failures(name):
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
        if header.format == "WEBP":
            return _webp_to_bgr(data, name), orientation, 1
        bgr = _libjpeg_bgr(data, header, factor) if image.mode == "RGB" else None
        if bgr is None:
            if factor > 1:
                chosen = image.draft("RGB", (max(1, header.width // factor),
                                             max(1, header.height // factor)))
                # Pillow picks the scale itself from the requested size (none for a JPEG
                # it cannot scale): read back which.
                factor = 1 if chosen is None else max(1, round(header.width / chosen[1][2]))
            image.load()
            bgr = _pillow_to_bgr(image)
    return bgr, orientation, factor


_SCALES = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
           4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# The marker segments a plain file may hold, all of which libjpeg reads before the pixels
# come out: Huffman-coded baseline, extended and progressive frames, Huffman and
# quantisation tables, the restart interval, scans, application segments and comments.
# Any other marker (a lossless, hierarchical or arithmetic-coded frame, DNL, DHP, EXP, JPGn,
# a reserved code, a zero after fill bytes) leaves the file to Pillow.
_FRAMES = {0xC0, 0xC1, 0xC2}
_PLAIN_MARKERS = {*_FRAMES, 0xC4, 0xDA, 0xDB, 0xDD, *range(0xE0, 0xF0), 0xFE}
# More segments than any camera or editor writes (tens; a progressive file's scans and
# tables included): a file of a million tiny comments is Pillow's, not a long walk's.
_MAX_SEGMENTS = 256
# The first marker after entropy-coded data: FF followed by anything but a stuffed zero or a
# restart marker (both belong to the data), as libjpeg reads it.
_END_OF_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_FF_RUN = re.compile(rb"\xff+")


def _libjpeg_bgr(data: bytes, header: ImageHeader, factor: int) -> BGRImage | None:
    """A colour JPEG decoded at ``1/factor`` (1: full size) by OpenCV's libjpeg-turbo
    straight into BGR, or None to leave it to Pillow.

    The same library and DCT scaling as Pillow's (draft) decode, hence the same pixels (a
    test compares every shared photo), without Pillow's 4-byte RGBX buffer and the
    conversion to BGR after it: img39 (1507x2048) 10.5 against 14 ms at 1/2, 10.9 against
    27.4 ms at full size, and one array in memory instead of two. OpenCV stops reading
    after the last scan's pixels and so never sees what follows them, where Pillow's
    libjpeg reports a second SOI, a stray SOF or SOS, or another file appended to a cut
    one. So only plain files take this path (``_plain_jpeg``: what follows the last
    scan is the EOI marker and nothing else), every side at least ``factor`` pixels
    (Pillow picks another scale for thinner ones); any other file, and any OpenCV refuses,
    goes through Pillow, which decodes or raises as it always did. The orientation is
    applied by the caller from Pillow's EXIF, as for every other decode.
    """
    if (header.format != "JPEG" or factor not in _SCALES
            or min(header.width, header.height) < factor):
        return None
    if not _plain_jpeg(data):
        return None
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8),
                              _SCALES[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:  # OpenCV's own limits: Pillow decides, with the errors it documents
        return None
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3:
        return None
    return np.asarray(pixels, np.uint8)


def _plain_jpeg(data: bytes) -> bool:
    """Whether ``data`` is SOI, known marker segments with one SOF0, SOF1 or SOF2 frame,
    its scans, and the EOI as its last two bytes: for a sequential frame one scan of every
    component with the EOI right after its entropy-coded data, since libjpeg reads what
    follows a sequential frame's last scan only after the pixels come out, and OpenCV never
    does (a progressive frame's scans and tables are all read before).

    A walk over at most ``_MAX_SEGMENTS`` segment lengths (the header is a few kilobytes)
    and a regular expression search over each scan's data, as libjpeg finds the marker that
    ends it; no pixel is decoded. Anything it does not recognise answers False: the file is
    then Pillow's.
    """
    frame: tuple[bool, int] | None = None  # progressive, components
    scans = 0
    for marker, pos, length in _segments(data):
        if marker == 0xD9:  # EOI
            return pos == len(data) - 2 and frame is not None and scans > 0
        if frame is not None and not frame[0] and scans > 0:
            return False  # anything but the EOI after a sequential frame's scan
        if marker in _FRAMES:
            if frame is not None or length < 8:
                return False
            frame = (marker == 0xC2, data[pos + 9])
        elif marker == 0xDA:  # SOS
            # A sequential frame in one scan of every component (non-interleaved files,
            # several scans, are rare enough to leave to Pillow).
            if frame is None or length < 3 or (not frame[0] and data[pos + 4] != frame[1]):
                return False
            scans += 1
    return False


def _segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, position, length) of each marker segment of a JPEG, a scan's data skipped,
    up to and including the first EOI (length 0); it stops early at anything else: no SOI
    first, a stray byte, a marker not in ``_PLAIN_MARKERS``, a length running past the
    end, more than ``_MAX_SEGMENTS`` segments."""
    if not data.startswith(b"\xff\xd8"):
        return
    pos, end = 2, len(data)
    for _ in range(_MAX_SEGMENTS):
        run = _FF_RUN.match(data, pos)  # a marker's FF, after any fill bytes
        if run is None or run.end() >= end:
            return
        pos = run.end() - 1
        marker = data[pos + 1]
        if marker == 0xD9:
            yield marker, pos, 0
            return
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker not in _PLAIN_MARKERS or length < 2 or pos + 2 + length > end:
            return
        yield marker, pos, length
        pos += 2 + length
        if marker == 0xDA:  # the scan's data runs to the next marker
            found = _END_OF_SCAN.search(data, pos)
            if found is None:
                return
            pos = found.start()


@contextmanager
def _pillow_failures(name: str) -> Iterator[None]:
    """Decoding failures (of Pillow or the WebP path) as the ``ImageError`` the
    decoders document: too large, or corrupt / truncated."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(
            f"{name}: the image data is corrupt or truncated ({exc})") from exc


def _upright(bgr: BGRImage, orientation: object) -> BGRImage:
    """``bgr`` turned as its EXIF ``orientation`` says (the same array when upright)."""
    turn = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return bgr if turn is None else np.ascontiguousarray(turn(bgr))


def read_image(path: Path, limits: ImageLimits | None = None) -> BGRImage:
    """Read and decode the image file at ``path``; see ``decode_image``."""
    limits = limits or ImageLimits()
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageTooLargeError(
            f"{path}: {size} bytes is more than the limit of {limits.max_bytes} bytes"
        )
    return decode_image(path.read_bytes(), limits, name=str(path))


@contextmanager
def _opened(data: bytes, limits: ImageLimits,
            name: str) -> Iterator[tuple[Image.Image, ImageHeader]]:
    """Pillow's lazy view of ``data`` (header read, no pixel decoded) and its checked
    header; the view is closed, with whatever it decoded, on leaving."""
    if not data:
        raise EmptyImageError(f"{name}: the file is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"{name}: {len(data)} bytes is more than the limit of {limits.max_bytes} bytes"
        )
    try:
        # Pillow's own bomb check is a warning below 2x its limit; ours is exact and first.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise NotAnImageError(f"{name}: not an image in a supported format") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(f"{name}: cannot read the image header ({exc})") from exc
    with image:
        header = _checked(ImageHeader(str(image.format), *image.size), limits, name)
        if header.format == "JPEG":
            _check_scans(data, header, limits, name)
        yield image, header


def _check_scans(data: bytes, header: ImageHeader, limits: ImageLimits, name: str) -> None:
    """Refuse, before decoding, a JPEG whose scans times its frame's pixels exceed
    ``limits.max_jpeg_scan_pixels``.

    libjpeg makes a pass over the whole frame for every scan of a progressive JPEG, and
    nothing in the format limits their number: a 54 kB file of 2,000 empty scans over a
    2400x2400 frame cost 1.5 s of CPU to decode, a 12.7 MB one 36 s. Encoders write about
    ten. Every scan libjpeg reads starts with the byte pair FF DA, wherever its marker
    reader resynchronises, so counting the pairs in the whole file can never miss one
    (two walks that tried to count scans as libjpeg reads them were bypassed in review:
    a segment length of 0, a reserved marker inside a scan's data). It can over-count:
    a thumbnail's scan, a motion photo's video after the EOI, where FF DA turns up about
    once in 64 kB: some 150 times in 10 MB, under the default's 333 at a phone photo's
    12 Mpx. A scan also has a cost of its own whatever the frame (2,011 scans over
    1200x1200 in 29 kB: 0.66 s), so each counts at least ``_SCAN_PIXELS_FLOOR`` pixels:
    at most 1,000 scans by default, however small the frame. A C-speed count, about 5 ms
    for 25 MB.
    """
    scans = data.count(b"\xff\xda")
    if scans * max(header.pixels, _SCAN_PIXELS_FLOOR) > limits.max_jpeg_scan_pixels:
        raise ImageTooLargeError(
            f"{name}: {scans} scan markers over {header.width}x{header.height} pixels, more "
            f"than the limit of {limits.max_jpeg_scan_pixels:,} scan-pixels (each scan of a "
            "JPEG costs a decoding pass over the whole frame)"
        )


def _checked(header: ImageHeader, limits: ImageLimits, name: str) -> ImageHeader:
    width, height = header.width, header.height
    if header.pixels > limits.max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} = {header.pixels} pixels is more than the limit "
            f"of {limits.max_pixels}"
        )
    if width == 0 or height == 0:
        raise CorruptImageError(f"{name}: the image has no pixels ({width}x{height})")
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect_ratio:
        raise ImageAspectRatioError(
            f"{name}: {width}x{height} is {ratio:.0f} times longer than wide; at most "
            f"{limits.max_aspect_ratio:g} is accepted"
        )
    return header


def _webp_to_bgr(data: bytes, name: str) -> BGRImage:
    """libwebp decodes into the array OpenCV returns (the first frame of an animation);
    an alpha channel is flattened onto white."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise CorruptImageError(f"{name}: the image data is corrupt or truncated")
    pixels = np.asarray(decoded, np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        out = np.empty((*pixels.shape[:2], 3), np.uint8)
        step = _band_rows(pixels.shape[1])
        for top in range(0, pixels.shape[0], step):
            out[top:top + step] = _on_white(pixels[top:top + step])
        return out
    raise CorruptImageError(f"{name}: unexpected WebP pixel layout {pixels.shape}")


def _pillow_to_bgr(image: Image.Image) -> BGRImage:
    """Any Pillow mode to BGR, a band of rows at a time into one array."""
    width, height = image.size
    out = np.empty((height, width, 3), np.uint8)
    step = _band_rows(width)
    if image.mode == "RGB":
        # Most photographs (every colour JPEG): OpenCV swaps each band's channels straight
        # into the array, without Pillow's convert() copy and a reversed-view copy; half
        # the time per megapixel of the general path below, the same pixels.
        for top in range(0, height, step):
            bottom = min(height, top + step)
            cv2.cvtColor(np.asarray(image.crop((0, top, width, bottom))), cv2.COLOR_RGB2BGR,
                         dst=out[top:bottom])
        return out
    convert = _band_converter(image)
    for top in range(0, height, step):
        bottom = min(height, top + step)
        out[top:bottom] = convert(image.crop((0, top, width, bottom)))
    return out


def _band_converter(image: Image.Image) -> Callable[[Image.Image], npt.NDArray[np.uint8]]:
    """How one band of ``image`` becomes BGR rows (the whole image decides the scale of
    16-bit and float grayscale)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float grayscale: stretch the used range onto 8 bits.
        extrema = image.getextrema()
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        scale = 255.0 / (high - low) if high > low else 0.0

        def stretch(band: Image.Image) -> npt.NDArray[np.uint8]:
            values = np.asarray(band, dtype=np.float64)
            gray = ((values - low) * scale).clip(0, 255).astype(np.uint8)
            return np.repeat(gray[:, :, None], 3, axis=2)

        return stretch
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white rather than undefined colour.
        return lambda band: _on_white(np.asarray(band.convert("RGBA"))[:, :, [2, 1, 0, 3]])
    return lambda band: np.asarray(band.convert("RGB"), dtype=np.uint8)[:, :, ::-1]


def _on_white(bgra: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """BGRA over an opaque white background, rounded as Pillow's alpha_composite."""
    alpha = bgra[:, :, 3:4].astype(np.uint32)
    blended = bgra[:, :, :3].astype(np.uint32) * alpha + 255 * (255 - alpha) + 0x80
    return (((blended >> 8) + blended) >> 8).astype(np.uint8)


def _band_rows(width: int) -> int:
    return max(1, _BAND_BYTES // (4 * width))
