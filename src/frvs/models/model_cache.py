"""Repaired model bytes kept on disk, so that a process loads them without importing onnx.

The shipped ONNX files are repaired in memory before ONNX Runtime loads them
(``onnx_repair``). The repairs take 24 ms, but importing ``onnx`` to make them takes
about 0.6 s (0.49 s of it ``ml_dtypes`` registering its types with NumPy, measured with
``python -X importtime``): most of a one-shot command's start and of every
``frvs serve`` start. So the repaired bytes are written once to the user's cache folder
(``$XDG_CACHE_HOME/frvs/models``, else ``~/.cache/frvs/models``) and read from there.

Trust does not move to the cache: the repaired bytes of each shipped file are pinned
here by SHA-256, beside the source file's own pinned digest, and a cached file is used
only when its digest is the pinned one; anything else in the cache is ignored and
replaced. A source without a pin (a custom model) is repaired at every load, as is a
shipped one whose repair gives other bytes (another onnx version): slower, never
different.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

# Source file's SHA-256 -> SHA-256 of its repaired bytes (yunet_sface_ort.repair_yunet
# and repair_sface with onnx 1.23; tests/unit/models/test_model_cache.py checks them).
PINNED: Mapping[str, str] = {
    # face_detection_yunet_2023mar_int8bq.onnx
    "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10":
        "c56d0a875a21db07181a46854685dd24ffe6e93736cc05f4bfadcaa86d9d0d8a",
    # face_recognition_sface_2021dec_int8bq.onnx
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee":
        "28d60de29618c26f32ea66e34b47063f66f7243a6c3c52c06964ebd8a9fbd77c",
}

# The shipped files repaired are 0.1 and 10.7 MB; a cached file is read no further.
_MAX_BYTES = 256 << 20


def cache_dir() -> Path:
    """Where repaired models are kept: the XDG cache folder's ``frvs/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "frvs" / "models"


def repaired(path: Path, source_sha256: str, repair: Callable[[Path], bytes],
             pinned: Mapping[str, str] = PINNED) -> bytes:
    """``repair(path)``, read from the cache when the cache holds exactly the pinned
    bytes for ``source_sha256`` (the digest ``path`` was verified to have)."""
    want = pinned.get(source_sha256)
    if want is None:
        return repair(path)
    cached = cache_dir() / f"{want}.onnx"
    data = _read_regular(cached)
    if data and hashlib.sha256(data).hexdigest() == want:
        return data
    data = repair(path)
    if hashlib.sha256(data).hexdigest() != want:
        logger.info("%s: repaired bytes differ from the pinned ones (another onnx "
                    "version?); not cached, repaired at every load", path.name)
        return data
    _store(cached, data)
    return data


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``_MAX_BYTES``, else
    nothing: whatever else was planted there (a FIFO would block a plain ``open``, a
    device would never end) is passed over."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_BYTES:
            return b""
        try:
            return f.read(_MAX_BYTES + 1)
        except OSError:
            return b""


def _store(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` whole or not at all (a temporary file renamed over
    it: processes starting together never read half a file)."""
    part: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        part = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(part, target)
    except OSError as e:
        logger.info("cannot keep the repaired model in %s (%s); it is repaired at every "
                    "load", target.parent, e)
        if part is not None:
            part.unlink(missing_ok=True)
