"""A folder camera reads only what its policy allows, judged on the file it actually
opens: a link swapped after the folder was checked (time of check, time of use) cannot
make it read FRVS's data directory, and a link inside a media-root folder cannot lead
outside the media roots."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from frvs.video.source_policy import SourceOrigin, SourcePolicy
from frvs.video.sources import ImageFolderSource, SourceOptions


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 60, 3), value, np.uint8))


def _frames(source: ImageFolderSource) -> list[int]:
    values = []
    while (frame := source.read()) is not None:
        values.append(int(frame.image.mean()))
    return values


def test_a_link_swapped_to_the_data_directory_after_the_check_is_not_read(
        tmp_path: Path) -> None:
    data, root = tmp_path / "data", tmp_path / "media"
    _png(root / "a.png", 10)
    _png(data / "secret.png", 200)
    folder = root / "cam"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.png").symlink_to(root / "a.png")
    policy = SourcePolicy(protected=(data.resolve(),), media_roots=(root,))
    source = ImageFolderSource(folder, "cam", SourceOptions(
        policy=policy, origin=SourceOrigin.SERVICE))
    for i in range(2, 5):  # after the folder was opened and checked: swap the links
        (folder / f"f{i}.png").unlink()
        (folder / f"f{i}.png").symlink_to(data / "secret.png")
    assert _frames(source) == [10, 10]


def test_a_link_in_a_media_root_folder_does_not_lead_outside_the_roots(
        tmp_path: Path) -> None:
    root, outside = tmp_path / "media", tmp_path / "elsewhere"
    _png(root / "cam" / "inside.png", 10)
    _png(outside / "private.png", 120)
    (root / "cam" / "z-outside.png").symlink_to(outside / "private.png")
    policy = SourcePolicy(media_roots=(root,))
    source = ImageFolderSource(root / "cam", "cam", SourceOptions(
        policy=policy, origin=SourceOrigin.SERVICE))
    assert _frames(source) == [10]


def test_a_local_folder_outside_the_roots_still_follows_its_links(tmp_path: Path) -> None:
    """The command line's own folders (not under a media root) may link anywhere but
    FRVS's data: 'frvs watch FOLDER' keeps working as documented."""
    folder, other = tmp_path / "mine", tmp_path / "photos"
    _png(other / "p.png", 60)
    folder.mkdir()
    (folder / "p.png").symlink_to(other / "p.png")
    source = ImageFolderSource(folder, "cam", SourceOptions(
        policy=SourcePolicy(), origin=SourceOrigin.LOCAL))
    assert _frames(source) == [60]
