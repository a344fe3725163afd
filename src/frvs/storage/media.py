"""Face crops on disk, under ``<data_dir>/media/<gallery id>/``, only when a gallery
allows them. A crop is written before its template commits (atomically, under a name
derived from the image hash and the subject), so a crash leaves at worst an orphan
file that the retried enrolment overwrites, never a template pointing at nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


class MediaStore:
    """Crops as JPEG files; paths in the store are relative to ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def crop_path(self, gallery_id: int, external_id: str, image_sha256: str) -> str:
        subject_tag = hashlib.sha256(external_id.encode("utf-8")).hexdigest()[:12]
        return f"{gallery_id}/{image_sha256[:32]}-{subject_tag}.jpg"

    def write(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self, relatives: list[str | None]) -> int:
        """Delete these crops; returns how many files existed."""
        removed = 0
        for relative in relatives:
            if relative:
                path = self.root / relative
                if path.is_file():
                    path.unlink()
                    removed += 1
        return removed

    def remove_folder(self, relative: str) -> None:
        """Delete a folder of files under the root (an identity check's kept images)."""
        shutil.rmtree(self.root / relative, ignore_errors=True)

    def remove_gallery(self, gallery_id: int) -> None:
        shutil.rmtree(self.root / str(gallery_id), ignore_errors=True)

    def sweep(self, referenced: set[str], older_than: float, under: str | None = None) -> int:
        """Delete crops nothing refers to, if last written before ``older_than`` (epoch
        seconds): left by a crash between a deletion's commit and its file removal.
        Younger files may belong to an enrolment about to commit. ``under`` names the
        folder swept (``sightings``, ``alerts``); without it, the galleries' folders
        (``<gallery id>/``) only, never sightings' crops or alerts' evidence."""
        removed = 0
        if not self.root.is_dir():
            return 0
        if under is None:
            folders = [p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit()]
        else:
            folders = [self.root / under]
        for path in (p for folder in folders for p in folder.rglob("*.jpg")):
            relative = path.relative_to(self.root).as_posix()
            if relative not in referenced and path.stat().st_mtime < older_than:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def sweep_folders(self, under: str, referenced: set[str], older_than: float) -> int:
        """Delete the folders directly under ``under`` that ``referenced`` (relative
        paths) does not name, if last changed before ``older_than`` (epoch seconds);
        returns how many. For folders written before a commit that never came."""
        parent = self.root / under
        if not parent.is_dir():
            return 0
        removed = 0
        for path in parent.iterdir():
            relative = path.relative_to(self.root).as_posix()
            if (path.is_dir() and relative not in referenced
                    and path.stat().st_mtime < older_than):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        return removed

    def exists(self, relative: str) -> bool:
        return (self.root / relative).is_file()

    def read(self, relative: str) -> bytes | None:
        """The bytes of the file at ``relative``; None when there is none (never kept, or
        removed by retention or an erasure, possibly a moment ago)."""
        path = self.root / relative
        if not path.is_file():
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:  # removed between the check and the read
            return None
