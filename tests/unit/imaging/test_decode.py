"""Image input that cannot be broken: each class of bad input has its own error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from factories import encode
from PIL import Image

from frvs.core.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    NotAnImageError,
)
from frvs.imaging.decode import (
    ImageLimits,
    decode_image,
    decode_scaled,
    inspect_image,
    read_image,
)


@pytest.fixture(scope="module")
def photo_bytes(data_dir: Path) -> bytes:
    return (data_dir / "pairs/images/img1.jpg").read_bytes()


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", EmptyImageError, "empty"),
        (b"%PDF-1.4 this is not an image at all", NotAnImageError, "not an image"),
        ("plain text, UTF-8: é".encode(), NotAnImageError, "not an image"),
    ],
)
def test_invalid_bytes(data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_image(data, name="probe.jpg")


def test_truncated_jpeg_is_corrupt(photo_bytes: bytes) -> None:
    with pytest.raises(CorruptImageError, match=r"probe\.jpg"):
        decode_image(photo_bytes[: len(photo_bytes) // 3], name="probe.jpg")


def test_garbled_jpeg_body_is_corrupt(photo_bytes: bytes) -> None:
    garbled = photo_bytes[:600] + bytes(range(256)) * 40
    with pytest.raises(CorruptImageError):
        decode_image(garbled)


def test_decompression_bomb_refused_before_decoding() -> None:
    # 20000 x 20000 one-bit PNG: a few kB on disk, 400 M pixels once decoded.
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLargeError, match="400000000 pixels"):
        decode_image(bomb)


def test_byte_limit(photo_bytes: bytes) -> None:
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_image(photo_bytes, ImageLimits(max_bytes=1000))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_formats_decode_to_same_pixels(fmt: str, photo_bytes: bytes) -> None:
    original = Image.open(io.BytesIO(photo_bytes)).convert("RGB").resize((160, 120))
    decoded = decode_image(encode(original, fmt, **({"quality": 95} if fmt != "BMP" else {})))
    assert decoded.shape == (120, 160, 3)
    assert decoded.dtype == np.uint8
    # BGR out: compare against the RGB source flipped; lossy formats are close, not equal.
    assert np.abs(decoded[:, :, ::-1].astype(int) - np.asarray(original, int)).mean() < 4


def test_exif_orientation_applied() -> None:
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # a blue mark at the top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    decoded = decode_image(encode(image, "JPEG", exif=exif, quality=95))
    assert decoded.shape[:2] == (200, 100)
    # After a 90-degree clockwise turn the mark sits at the top-right.
    assert decoded[5, 95, 0] > 200 and decoded[5, 95, 2] < 60


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (32, 24), 128),
        Image.new("LA", (32, 24), (128, 0)),
        Image.new("RGBA", (32, 24), (10, 20, 30, 0)),
        Image.new("P", (32, 24), 3),
        Image.new("1", (32, 24), 1),
        Image.fromarray(np.linspace(0, 65535, 32 * 24, dtype=np.uint16).reshape(24, 32)),
    ],
    ids=["gray", "gray-alpha", "rgba", "palette", "bilevel", "16-bit"],
)
def test_modes_become_bgr(image: Image.Image) -> None:
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.shape == (24, 32, 3)
    assert decoded.dtype == np.uint8


def test_transparent_pixels_become_white_and_16bit_spans_range() -> None:
    clear = decode_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG"))
    assert clear.min() == 255
    ramp = Image.fromarray(np.array([[0, 1000], [30000, 65535]], dtype=np.uint16))
    decoded = decode_image(encode(ramp, "PNG"))
    assert decoded[0, 0, 0] == 0 and decoded[1, 1, 0] == 255


def test_read_image_checks_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff" * 5000)
    with pytest.raises(ImageTooLargeError):
        read_image(path, ImageLimits(max_bytes=4000))
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.jpg")


def test_rgb_rows_become_bgr_exactly_across_bands() -> None:
    """RGB images take OpenCV's channel swap band by band: every pixel exact, bands
    included (1,500 px wide: a band is about 700 rows, so 1,600 rows cross two seams)."""
    rgb = np.random.default_rng(0).integers(0, 256, (1_600, 1_500, 3), dtype=np.uint8)
    decoded = decode_image(encode(Image.fromarray(rgb), "PNG"))
    np.testing.assert_array_equal(decoded, rgb[:, :, ::-1])


def progressive_of(scans: int) -> bytes:
    """A flat 2400x2400 progressive JPEG (its encoder writes 10 scans) with empty scans
    added up to ``scans``: tiny, but libjpeg passes over the whole frame for each."""
    flat = encode(Image.fromarray(np.full((2400, 2400, 3), 120, np.uint8)), "JPEG",
                  quality=50, progressive=True)
    assert flat.count(b"\xff\xda") == 10
    empty = b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x10"  # one component, DC only, no data
    return flat[:-2] + empty * (scans - 10) + b"\xff\xd9"


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding() -> None:
    """The second adversary review of 2026-12-02: 2,000 empty scans in 54 kB cost 1.5 s
    of CPU to decode. Refused from the count of its scan markers, before any pixel."""
    data = progressive_of(2000)
    assert len(data) < 60_000
    for decode in (decode_image, inspect_image, lambda d: decode_scaled(d, 640).pixels):
        with pytest.raises(ImageTooLargeError, match="2000 scan markers over 2400x2400"):
            decode(data)


@pytest.mark.parametrize("hide", [
    b"\xff\xfe\x00\x00",  # a comment of length 0: libjpeg skips nothing and reads on
    b"\xff\xdd\x00\x04\x00\x01",  # a restart interval, then scans behind a reserved marker
])
def test_scans_hidden_from_a_walk_are_counted(hide: bytes) -> None:
    """The third review: walks that counted scans as libjpeg reads them missed scans
    behind a zero-length comment or a reserved marker (1.7-3.4 s of CPU in 54 kB). Every
    scan is FF DA in the bytes, wherever they hide."""
    flat = progressive_of(10)[:-2]
    data = flat + hide + b"\xff\x02\xff\xff" + progressive_of(2000)[len(flat) :]
    with pytest.raises(ImageTooLargeError, match="scan markers"):
        inspect_image(data)


def test_the_scan_limit_is_inclusive_and_configurable() -> None:
    data = progressive_of(12)
    limit = 12 * 2400 * 2400
    assert decode_image(data, ImageLimits(max_jpeg_scan_pixels=limit)).shape == (2400, 2400, 3)
    with pytest.raises(ImageTooLargeError, match="12 scan markers"):
        decode_image(data, ImageLimits(max_jpeg_scan_pixels=limit - 1))


def test_the_shared_photos_are_far_below_the_scan_limit(data_dir: Path) -> None:
    """Every shared photo passes a limit ten times stricter than the default."""
    strict = ImageLimits(max_jpeg_scan_pixels=ImageLimits().max_jpeg_scan_pixels // 10)
    for path in data_dir.rglob("*.jp*g"):
        inspect_image(path.read_bytes(), strict, name=path.name)


def test_a_motion_photos_video_after_the_eoi_is_no_reason_to_refuse(photo_bytes: bytes) -> None:
    """A motion photo carries a video after the JPEG's EOI; its bytes hold FF DA by chance
    (about once in 64 kB, some 150 times in 10 MB). They are counted, and stay under the
    limit (the default allows 333 at a phone photo's 12 Mpx)."""
    video = np.random.default_rng(1).integers(0, 256, 10_000_000, np.uint8).tobytes()
    assert 100 < video.count(b"\xff\xda") < 250
    assert decode_image(photo_bytes + video).shape == decode_image(photo_bytes).shape


def test_a_small_frame_does_not_buy_unlimited_scans() -> None:
    """The third review: 2,011 scans over 1200x1200 in 29 kB cost 0.66 s. Each scan counts
    at least 4 Mpx: at most 1,000 by default, however small the frame."""
    small = encode(Image.fromarray(np.full((64, 64, 3), 120, np.uint8)), "JPEG",
                   progressive=True)
    empty = b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x10"
    with pytest.raises(ImageTooLargeError, match="1011 scan markers over 64x64"):
        inspect_image(small[:-2] + empty * (1011 - small.count(b"\xff\xda")) + b"\xff\xd9")
