"""Decoding a JPEG at a reduced DCT scale: the scale chosen, the same limits, errors and
EXIF orientation as a full-size decode, and pixels that match the full image shrunk."""

from __future__ import annotations

import io
from contextlib import AbstractContextManager
from contextlib import nullcontext as does_not_raise
from pathlib import Path

import cv2
import numpy as np
import pytest
from factories import encode
from PIL import Image, ImageOps

from frvs.core.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageAspectRatioError,
    ImageTooLargeError,
    NotAnImageError,
)
from frvs.imaging.decode import ImageLimits, decode_image, decode_scaled


def gradient(width: int, height: int) -> Image.Image:
    """A smooth colour picture (lossy codecs keep it close to the original)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                    (x + y) / 2], axis=2)
    return Image.fromarray(rgb.astype(np.uint8))


@pytest.mark.parametrize(
    ("size", "fmt", "min_side", "factor"),
    [
        ((2000, 1500), "JPEG", 640, 2),   # 1000 covers 640, 500 does not
        ((3000, 1000), "JPEG", 640, 4),   # 750
        ((6000, 400), "JPEG", 640, 8),    # 750
        ((1200, 900), "JPEG", 640, 1),    # 600 would not cover 640
        ((1280, 900), "JPEG", 640, 2),    # exactly 640
        ((900, 2000), "JPEG", 640, 2),    # the longer side counts, portrait too
        ((2000, 1500), "PNG", 640, 1),    # no DCT: full size
        ((2000, 1500), "WEBP", 640, 1),
    ],
)
def test_scale_is_the_largest_reduction_that_covers_the_working_size(
        size: tuple[int, int], fmt: str, min_side: int, factor: int) -> None:
    scaled = decode_scaled(encode(gradient(*size), fmt), min_side)
    assert scaled.factor == factor
    width, height = size
    assert scaled.pixels.shape == (-(-height // factor), -(-width // factor), 3)
    assert scaled.pixels.dtype == np.uint8
    assert max(scaled.pixels.shape[:2]) >= min(min_side, max(size))


def test_reduced_pixels_are_the_full_image_shrunk() -> None:
    data = encode(gradient(2400, 1600), "JPEG", quality=95)
    scaled = decode_scaled(data, 640)
    assert scaled.factor == 2
    full = decode_image(data)
    shrunk = cv2.resize(full, scaled.pixels.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - scaled.pixels.astype(int)).mean() < 2
    np.testing.assert_array_equal(scaled.full(), full)


def test_exif_orientation_applied_to_the_reduced_image() -> None:
    image = Image.new("RGB", (2000, 1000), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 200, 200))  # a blue mark at the top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(image, "JPEG", exif=exif, quality=95)
    scaled = decode_scaled(data, 640)
    assert scaled.factor == 2
    assert scaled.pixels.shape[:2] == (1000, 500)
    # After a 90-degree clockwise turn the mark sits at the top-right.
    assert scaled.pixels[20, 480, 0] > 200 and scaled.pixels[20, 480, 2] < 60
    assert scaled.full().shape[:2] == (2000, 1000)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grayscale_and_cmyk_jpegs_become_bgr(mode: str) -> None:
    scaled = decode_scaled(encode(gradient(1600, 1200).convert(mode), "JPEG"), 640)
    assert scaled.factor == 2
    assert scaled.pixels.shape == (600, 800, 3)


def bomb() -> bytes:
    return encode(Image.new("1", (20_000, 20_000)), "PNG")


@pytest.mark.parametrize(
    ("data", "limits", "outcome"),
    [
        (b"", ImageLimits(), pytest.raises(EmptyImageError)),
        (b"%PDF-1.4 not an image", ImageLimits(), pytest.raises(NotAnImageError)),
        (encode(gradient(1600, 1200), "JPEG"), ImageLimits(max_bytes=1000),
         pytest.raises(ImageTooLargeError, match="bytes")),
        # Refused from the full-size header, though 1/8 of it would fit.
        (encode(gradient(1600, 1200), "JPEG"), ImageLimits(max_pixels=1_000_000),
         pytest.raises(ImageTooLargeError, match="1920000 pixels")),
        (encode(gradient(4200, 200), "JPEG"), ImageLimits(),
         pytest.raises(ImageAspectRatioError)),
        (encode(gradient(1600, 1200), "JPEG"), ImageLimits(max_pixels=1_920_000),
         does_not_raise()),
    ],
    ids=["empty", "not-an-image", "bytes", "pixels", "aspect", "at-the-limit"],
)
def test_same_limits_as_a_full_size_decode(
        data: bytes, limits: ImageLimits, outcome: AbstractContextManager[object]) -> None:
    with outcome:
        decode_scaled(data, 640, limits, name="probe.jpg")


def test_decompression_bomb_refused_from_its_header() -> None:
    with pytest.raises(ImageTooLargeError, match="400000000 pixels"):
        decode_scaled(bomb(), 640)


@pytest.mark.parametrize("cut", [3, 2])
def test_truncated_jpeg_is_corrupt(cut: int) -> None:
    data = encode(gradient(1600, 1200), "JPEG")
    with pytest.raises(CorruptImageError, match=r"probe\.jpg"):
        decode_scaled(data[: len(data) // cut], 640, name="probe.jpg")


def pillow_draft_bgr(data: bytes, factor: int) -> np.ndarray:
    """The oracle: Pillow's own DCT-scaled decode, to BGR, turned by its EXIF."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (image.width // factor, image.height // factor))
        turned = ImageOps.exif_transpose(image.convert("RGB"))
        return np.ascontiguousarray(np.asarray(turned)[:, :, ::-1])


@pytest.mark.parametrize("min_side", [640, 300])
def test_every_shared_photo_decodes_to_pillows_pixels(data_dir: Path, min_side: int) -> None:
    """Colour JPEGs that end with their EOI marker are decoded by OpenCV's libjpeg-turbo
    straight into BGR; every shared photo gives exactly the pixels of Pillow's draft decode
    (some reduced, some not, some turned by EXIF)."""
    reduced = 0
    for path in sorted(data_dir.rglob("*.jp*g")):
        data = path.read_bytes()
        scaled = decode_scaled(data, min_side, name=path.name)
        np.testing.assert_array_equal(scaled.pixels, pillow_draft_bgr(data, scaled.factor),
                                      err_msg=path.name)
        reduced += scaled.factor > 1
    assert reduced >= 10


def test_every_shared_photo_decodes_at_full_size_to_pillows_pixels(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full-size decodes (enrolment, ``full()``, image folders) take OpenCV's path too,
    for plain colour JPEGs: Pillow's exact pixels, turned by its EXIF."""
    through_opencv: list[int] = []
    imdecode = cv2.imdecode

    def counted(buf: np.ndarray, flags: int) -> np.ndarray | None:
        through_opencv.append(flags)
        return imdecode(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", counted)
    photos = sorted(data_dir.rglob("*.jp*g"))
    for path in photos:
        data = path.read_bytes()
        np.testing.assert_array_equal(decode_image(data, name=path.name),
                                      pillow_draft_bgr(data, 1), err_msg=path.name)
    # (A few shared ".jpg" files are WebP, decoded by OpenCV as every WebP is.)
    full_size_jpeg = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    assert through_opencv.count(full_size_jpeg) >= len(photos) // 2


def test_a_jpeg_with_bytes_after_its_eoi_still_decodes() -> None:
    """Trailing bytes (a camera's trailer) leave the file to Pillow: same pixels."""
    data = encode(gradient(1600, 1200), "JPEG")
    trailed = decode_scaled(data + b"TRAILER-0123", 640)
    np.testing.assert_array_equal(trailed.pixels, decode_scaled(data, 640).pixels)


def test_a_jpeg_cut_short_but_ending_in_an_eoi_marker_decodes_as_pillow_does() -> None:
    """A scan cut short and closed with EOI: libjpeg fills the rest on both paths."""
    data = encode(gradient(1600, 1200), "JPEG")
    cut = data[: len(data) // 2] + b"\xff\xd9"
    np.testing.assert_array_equal(decode_scaled(cut, 640).pixels, pillow_draft_bgr(cut, 2))


def pillow_outcome(data: bytes, factor: int) -> np.ndarray | type[Exception]:
    """What Pillow's draft decode gives: the pixels, or the class of its error."""
    try:
        return pillow_draft_bgr(data, factor)
    except (OSError, SyntaxError, ValueError) as exc:
        return type(exc)


def damaged() -> dict[str, bytes]:
    """A plain colour JPEG damaged after its pixels, where OpenCV's reader never looks."""
    baseline = encode(gradient(1600, 1200), "JPEG")
    sos = baseline.index(b"\xff\xda")
    header = baseline[sos : sos + 2 + int.from_bytes(baseline[sos + 2 : sos + 4], "big")]
    body = baseline[:-2]
    return {
        "second scan": body + header + b"\x12\x34" * 8 + b"\xff\xd9",
        "second SOI": body + b"\xff\xd8\xff\xd9",
        "another file appended to a cut one": baseline[: len(baseline) // 2] + baseline,
        "a frame after the scan": body + baseline[baseline.index(b"\xff\xc0") :],
        "lossless frame marker": baseline.replace(b"\xff\xc0", b"\xff\xc3", 1),
        # The second review: segments after the scan that libjpeg reads and refuses.
        "an unknown marker after the scan": body + b"\xff\x02\x00\x04ab\xff\xd9",
        "a quantisation table 7 after the scan": body + b"\xff\xdb\x00\x43\x07"
        + bytes(64) + b"\xff\xd9",
        "fill bytes and a zero hiding an SOI": body + b"\xff\xff\x00\x00\x06\xff\xd8\xff\xd8"
        + b"\xff\xd9",
    }


@pytest.mark.parametrize("damage", sorted(damaged()))
def test_a_file_damaged_after_its_pixels_is_refused_as_pillow_refuses_it(damage: str) -> None:
    """The adversary's review: OpenCV stops reading after the last scan's pixels, so these
    files would have decoded on its path. They go through Pillow, which refuses them."""
    data = damaged()[damage]
    assert pillow_outcome(data, 2) is OSError
    with pytest.raises(CorruptImageError):
        decode_scaled(data, 640)
    with pytest.raises(CorruptImageError):
        decode_image(data)


@pytest.mark.parametrize(("size", "min_side"), [((100, 6), 13), ((1000, 7), 125)])
def test_a_side_thinner_than_the_scale_keeps_pillows_scale(
        size: tuple[int, int], min_side: int) -> None:
    """Pillow picks a smaller scale when one side is shorter than the reduction; so does
    decode_scaled (those files are left to Pillow)."""
    data = encode(gradient(*size), "JPEG")
    scaled = decode_scaled(data, min_side, ImageLimits(max_aspect_ratio=200))
    assert scaled.factor == 4
    np.testing.assert_array_equal(scaled.pixels, pillow_draft_bgr(data, 4))


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"subsampling": 0},
                                     {"restart_marker_blocks": 3}, {"quality": 100}])
def test_encoder_variants_decode_to_pillows_pixels(options: dict[str, object]) -> None:
    data = encode(gradient(1333, 999), "JPEG", **options)
    scaled = decode_scaled(data, 300)
    assert scaled.factor == 4
    np.testing.assert_array_equal(scaled.pixels, pillow_draft_bgr(data, 4))
    np.testing.assert_array_equal(decode_image(data), pillow_draft_bgr(data, 1))
    np.testing.assert_array_equal(scaled.full(), pillow_draft_bgr(data, 1))


@pytest.mark.parametrize("offset", [53501, 47778, 28669, 16932, 3449])
def test_fill_bytes_and_a_zero_inside_a_scan_decode_as_pillow_decodes_them(offset: int) -> None:
    """The second review: ``FF FF 00 LL LL`` inside a scan's data. libjpeg's result then
    depends on how much data it is handed at once (Pillow feeds 64 KiB reads, OpenCV the
    whole file): at these points OpenCV gave other pixels, or pixels where Pillow raised.
    A zero marker leaves the file to Pillow."""
    noise = np.random.default_rng(3).integers(0, 256, (480, 640, 3), np.uint8)
    body = encode(Image.fromarray(noise), "JPEG", quality=90)[:-2]
    k = len(body) - offset
    data = body[:k] + b"\xff\xff\x00" + (offset + 2).to_bytes(2, "big") + body[k:] + b"\xff\xd9"
    expected = pillow_outcome(data, 2)
    if isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(decode_scaled(data, 240).pixels, expected)
    else:
        with pytest.raises(CorruptImageError):
            decode_scaled(data, 240)
    full = pillow_outcome(data, 1)
    if isinstance(full, np.ndarray):
        np.testing.assert_array_equal(decode_image(data), full)
    else:
        with pytest.raises(CorruptImageError):
            decode_image(data)
