"""Decode untrusted image bytes into a BGR uint8 array.

Pillow decodes (JPEG, PNG, WebP, BMP, TIFF, GIF) because it exposes the header before
the pixels, so the pixel-count limit is checked before any large allocation, and it
applies EXIF orientation. Every failure becomes one of the ``ImageError`` classes.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from frvs.core.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    NotAnImageError,
)

BGRImage = npt.NDArray[np.uint8]

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Bounds that protect the process from hostile or accidental huge inputs."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


def decode_image(data: bytes, limits: ImageLimits | None = None, name: str = "image") -> BGRImage:
    """Decode ``data`` into an (H, W, 3) BGR uint8 array, upright per its EXIF orientation.

    Raises ``EmptyImageError``, ``NotAnImageError``, ``CorruptImageError`` or
    ``ImageTooLargeError`` with a message naming ``name``.
    """
    limits = limits or ImageLimits()
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
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} = {width * height} pixels is more than the limit "
            f"of {limits.max_pixels}"
        )
    if width == 0 or height == 0:
        raise CorruptImageError(f"{name}: the image has no pixels ({width}x{height})")
    try:
        image.load()
        upright: Image.Image = ImageOps.exif_transpose(image) or image
        rgb = _to_rgb(upright)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(f"{name}: the image data is corrupt or truncated ({exc})") from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])


def read_image(path: Path, limits: ImageLimits | None = None) -> BGRImage:
    """Read and decode the image file at ``path``; see ``decode_image``."""
    limits = limits or ImageLimits()
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageTooLargeError(
            f"{path}: {size} bytes is more than the limit of {limits.max_bytes} bytes"
        )
    return decode_image(path.read_bytes(), limits, name=str(path))


def _to_rgb(image: Image.Image) -> npt.NDArray[np.uint8]:
    """Any Pillow mode to an (H, W, 3) uint8 RGB array."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float grayscale: stretch the used range onto 8 bits.
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        gray = ((values - low) * scale).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white rather than undefined colour.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
