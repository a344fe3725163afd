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

from frvs.core.errors import ModelChecksumError

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


def cache_dir() -> Path | None:
    """Where repaired models are kept: the XDG cache folder's ``frvs/models``; None when
    there is no such folder (a relative ``XDG_CACHE_HOME`` is ignored, as the XDG
    specification asks, and a user with no home has no cache)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):
            return None
    return Path(base) / "frvs" / "models"


def repaired(path: Path, source_sha256: str, repair: Callable[[bytes], bytes],
             pinned: Mapping[str, str] = PINNED) -> bytes:
    """``repair`` of the file at ``path``, read from the cache when the cache holds
    exactly the pinned bytes for ``source_sha256`` (the digest ``path`` was verified to
    have). Otherwise the file is read once and checked again before it is repaired:
    what is repaired is what was checked, even if the file changed since."""
    want = pinned.get(source_sha256)
    folder = cache_dir() if want is not None else None
    cached = folder / f"{want}.onnx" if folder is not None else None
    if cached is not None:
        data = _read_regular(cached)
        if data and hashlib.sha256(data).hexdigest() == want:
            return data
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    if digest != source_sha256:
        raise ModelChecksumError(f"{path}: SHA-256 is {digest}, expected {source_sha256} "
                                 "(the file changed after its check); refusing to load it")
    data = repair(source)
    if cached is None:
        return data
    if hashlib.sha256(data).hexdigest() != want:
        logger.info("%s: repaired bytes differ from the pinned ones (another onnx "
                    "version?); not cached, repaired at every load", path.name)
        return data
    _store(cached, data)
    return data


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``_MAX_BYTES``, else
    nothing: whatever else was planted there (a FIFO would block a plain ``open``, a
    device would never end, a folder cannot be read) is passed over."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_BYTES:
            return b""
        chunks = []
        left = _MAX_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _store(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` whole or not at all (a temporary file renamed over
    it: processes starting together never read half a file, and an interrupted write
    leaves nothing behind)."""
    part: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        part = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(part, target)
        part = None
    except OSError as e:
        logger.info("cannot keep the repaired model in %s (%s); it is repaired at every "
                    "load", target.parent, e)
    finally:
        if part is not None:
            part.unlink(missing_ok=True)
