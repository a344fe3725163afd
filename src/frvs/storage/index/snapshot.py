"""Persisted index snapshots: a restart loads the built index instead of every template.

Loading 10M templates from SQLite into ``faiss_pq`` takes about 40 s; reading a snapshot
of the built index (codes, float vectors memory-mapped, label table) takes seconds. A
snapshot records the position of the gallery's index change log it reflects
(``IndexChangeRow``, see ``catalog.py``); after loading it, the catalog applies only the
changes after that position, removals included, so a template deleted or erased while
the process was down never comes back.

A snapshot lives in ``<data_dir>/index/snapshots/<index name>/``: the index's own files
and ``manifest.json``, written last. The manifest names what the snapshot belongs to
(gallery id and creation time, pack, model space, dimension, the index's structural
settings), its position, and the size and digest of every file. A snapshot is used only
when all of these match the running gallery and configuration, its position is not
beyond the store's log, and every file has its recorded size and digest; otherwise it
is rejected with a log line saying why, and the index is rebuilt from the store (the
store is the truth; the snapshot is only a cache of it). A new snapshot is written
beside the old one and swapped in by renaming, so a crash while writing leaves the old
one (or none), never a mixture.

The digest is a sum and an exclusive-or of 64-bit words per 1 MiB chunk (NumPy, about
5 GB a second of CPU here, against 0.55 for CRC-32): it catches truncation,
torn writes and flipped bits, which is what it is for; the data directory is trusted
like the database beside it, so it is not a cryptographic check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
_DIGEST_CHUNK = 1 << 20  # the second pass over a chunk then reads from L2 cache


class SnapshotError(Exception):
    """A snapshot that cannot be used: the message says why."""


@runtime_checkable
class Snapshottable(Protocol):
    """An index that can write itself to a directory and read itself back."""

    @property
    def snapshot_min_size(self) -> int:
        """Galleries with at least this many templates keep a snapshot (0: never)."""
        ...

    def snapshot_config(self) -> dict[str, Any]:
        """The settings the stored structure depends on; a snapshot written under
        others is not used."""
        ...

    def write_snapshot(self, directory: Path) -> None:
        """Write the index's files into the existing, empty ``directory``."""
        ...

    def read_snapshot(self, directory: Path) -> None:
        """Fill this empty index from ``directory``; raise SnapshotError if unusable."""
        ...

    def count(self) -> int:
        """How many vectors the index holds."""
        ...


@dataclass(frozen=True, slots=True)
class SnapshotOwner:
    """What a snapshot must belong to: one gallery's index in one model space."""

    gallery_id: int
    gallery_created: str  # a gallery deleted and created again under the same id differs
    pack: str
    space_key: str
    dimension: int


def snapshot_dir(root: Path, name: str) -> Path:
    """Where the snapshot of the index called ``name`` lives."""
    return root / "index" / "snapshots" / name


def write_snapshot(root: Path, name: str, owner: SnapshotOwner, position: int, *,
                   anchor: str | None, index: Snapshottable) -> Path:
    """Write ``index`` (reflecting the log up to ``position``, whose change is
    identified by ``anchor``: see ``IndexCatalog._anchor``) as the snapshot of ``name``,
    replacing any older one."""
    final = snapshot_dir(root, name)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f"{name}.writing-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    started = time.perf_counter()
    count = index.count()
    try:
        index.write_snapshot(staging)
        files: dict[str, dict[str, Any]] = {
            p.name: {"bytes": p.stat().st_size, "digest": _digest(p)}
            for p in sorted(staging.iterdir())}
        manifest = {"format": FORMAT, "owner": asdict(owner), "config": index.snapshot_config(),
                    "position": position, "anchor": anchor, "count": count, "files": files,
                    "written_at": time.time()}
        _write_synced(staging / MANIFEST, json.dumps(manifest, indent=1).encode())
        for path in staging.iterdir():
            _fsync(path)
        old = final.with_name(f"{name}.old-{os.getpid()}")
        if final.exists():
            final.rename(old)
        staging.rename(final)
        _fsync(final.parent)
        # A process may still map the old files: unlinking them keeps its pages valid.
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(int(v["bytes"]) for v in files.values())
    logger.info("wrote index snapshot %s at change %d: %d templates, %.1f GiB in %.1f s",
                name, position, count, size / 2**30, time.perf_counter() - started)
    return final


def read_snapshot(root: Path, name: str, owner: SnapshotOwner, head: int,
                  index: Snapshottable) -> tuple[int, str | None] | None:
    """Fill the empty ``index`` from the snapshot of ``name``: (its change-log position,
    the anchor of that change), or None (logged) when there is none or it cannot be
    used, in which case ``index`` may be half-filled and must be thrown away."""
    directory = snapshot_dir(root, name)
    if not (directory / MANIFEST).exists():
        return None
    started = time.perf_counter()
    try:
        manifest = _checked_manifest(directory, owner, head, index)
        index.read_snapshot(directory)
    except (SnapshotError, OSError, EOFError, ValueError, RuntimeError, KeyError, IndexError,
            TypeError) as exc:
        logger.warning("index snapshot %s not used, rebuilding from the store: %s", name, exc)
        return None
    logger.info("loaded index snapshot %s at change %d (%d templates) in %.1f s", name,
                manifest["position"], manifest["count"], time.perf_counter() - started)
    anchor = manifest.get("anchor")
    return int(manifest["position"]), None if anchor is None else str(anchor)


def remove_snapshots(root: Path, prefix: str) -> None:
    """Delete every snapshot whose index name starts with ``prefix`` (a dropped gallery)."""
    parent = root / "index" / "snapshots"
    if not parent.is_dir():
        return
    for path in parent.iterdir():
        if path.name.startswith(prefix):
            shutil.rmtree(path, ignore_errors=True)


def _checked_manifest(directory: Path, owner: SnapshotOwner, head: int,
                      index: Snapshottable) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise SnapshotError("the manifest is not an object")
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"format {manifest.get('format')}, expected {FORMAT}")
    if manifest.get("owner") != asdict(owner):
        raise SnapshotError(f"written for {manifest.get('owner')}, not {asdict(owner)}")
    if manifest.get("config") != index.snapshot_config():
        raise SnapshotError(f"written with index settings {manifest.get('config')}, now "
                            f"{index.snapshot_config()}")
    position = manifest.get("position")
    if not isinstance(position, int) or not 0 <= position <= head:
        raise SnapshotError(f"its change-log position {position} is not in the store's log "
                            f"(head {head}): the store is older than the snapshot")
    _check_files(directory, manifest.get("files"))
    return manifest


def _check_files(directory: Path, files: Any) -> None:
    """Every file the manifest lists, and no other, with its size and digest."""
    if not isinstance(files, dict) or not files:
        raise SnapshotError("the manifest lists no files")
    present = {p.name for p in directory.iterdir()} - {MANIFEST}
    if present != set(files):
        raise SnapshotError(f"files {sorted(present)} differ from the manifest's {sorted(files)}")
    for file_name, expected in files.items():  # sizes first: cheap, catches truncation
        size = (directory / file_name).stat().st_size
        if size != expected["bytes"]:
            raise SnapshotError(f"{file_name} has {size} bytes, the manifest says "
                                f"{expected['bytes']} (truncated?)")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="frvs-digest") as pool:
        digests = dict(zip(files, pool.map(lambda f: _digest(directory / f), files),
                           strict=True))
    for file_name, expected in files.items():
        if digests[file_name] != expected["digest"]:
            raise SnapshotError(f"{file_name} does not match its digest (corrupt)")


def _digest(path: Path) -> str:
    """Per 1 MiB chunk, the wrapping sum and the exclusive-or of its 64-bit words (and
    its tail bytes), hashed together; NumPy releases the GIL, so files digest in parallel."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(size.to_bytes(8, "little"))
    if size == 0:
        return h.hexdigest()
    # Read into one buffer, not mapped: the pages stay in the page cache, out of the
    # process's resident memory (a 10M gallery's vectors are 5 GiB).
    buffer = bytearray(_DIGEST_CHUNK)
    with path.open("rb", buffering=0) as f:
        while read := f.readinto(buffer):
            chunk = np.frombuffer(buffer, dtype=np.uint8, count=read)
            whole = read // 8 * 8
            words = chunk[:whole].view(np.uint64)
            h.update(np.add.reduce(words, dtype=np.uint64).tobytes())
            h.update(np.bitwise_xor.reduce(words).tobytes())
            h.update(chunk[whole:].tobytes())
    return h.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
