"""Repaired models read from the user's cache: only bytes whose digest is pinned, and a
process that finds them there never imports onnx."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from frvs.core.errors import ModelChecksumError
from frvs.models import model_cache, yunet_sface_ort
from frvs.models.pack import ModelFile
from frvs.models.yunet_sface import DETECTOR_FILE, EMBEDDER_FILE

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"

SHIPPED = [(DETECTOR_FILE, yunet_sface_ort.repair_yunet),
           (EMBEDDER_FILE, yunet_sface_ort.repair_sface)]


def _source(file: ModelFile) -> bytes:
    return file.verified().read_bytes()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "frvs" / "models"


@pytest.mark.parametrize(("file", "repair"), SHIPPED, ids=["yunet", "sface"])
def test_the_pins_are_what_the_repairs_give_here(file: ModelFile,
                                                 repair: Callable[[bytes], bytes]) -> None:
    """Otherwise the cache is never used (after an onnx upgrade: pin the new digests)."""
    assert _digest(repair(_source(file))) == model_cache.PINNED[file.sha256]


def test_a_repair_is_kept_and_then_read_instead(cache: Path) -> None:
    path = EMBEDDER_FILE.verified()
    calls: list[bytes] = []

    def counted(data: bytes) -> bytes:
        calls.append(data)
        return yunet_sface_ort.repair_sface(data)

    first = model_cache.repaired(path, EMBEDDER_FILE.sha256, counted)
    second = model_cache.repaired(path, EMBEDDER_FILE.sha256, counted)
    assert first == second
    assert len(calls) == 1
    assert [p.name for p in cache.iterdir()] == [f"{model_cache.PINNED[EMBEDDER_FILE.sha256]}.onnx"]


def test_a_cached_file_without_the_pinned_digest_is_never_loaded(cache: Path) -> None:
    """Another model (here the detector, a valid ONNX file) put in the embedder's place,
    or a truncated copy: repaired again from the verified source, and the cache healed."""
    want = model_cache.PINNED[EMBEDDER_FILE.sha256]
    target = cache / f"{want}.onnx"
    cache.mkdir(parents=True)
    good = yunet_sface_ort.repair_sface(_source(EMBEDDER_FILE))
    for planted in (yunet_sface_ort.repair_yunet(_source(DETECTOR_FILE)), good[:-1]):
        target.write_bytes(planted)
        got = model_cache.repaired(EMBEDDER_FILE.verified(), EMBEDDER_FILE.sha256,
                                   yunet_sface_ort.repair_sface)
        assert _digest(got) == want
        assert _digest(target.read_bytes()) == want


def test_a_fifo_planted_in_the_cache_neither_blocks_nor_loads(cache: Path) -> None:
    """A plain open() of a FIFO waits for a writer: every start would hang."""
    want = model_cache.PINNED[DETECTOR_FILE.sha256]
    cache.mkdir(parents=True)
    os.mkfifo(cache / f"{want}.onnx")
    got = model_cache.repaired(DETECTOR_FILE.verified(), DETECTOR_FILE.sha256,
                               yunet_sface_ort.repair_yunet)
    assert _digest(got) == want
    assert (cache / f"{want}.onnx").is_file()  # replaced by the real repair


def test_a_source_without_a_pin_is_repaired_at_every_load(cache: Path) -> None:
    calls: list[bytes] = []

    def repair(data: bytes) -> bytes:
        calls.append(data)
        return b"repaired"

    path = DETECTOR_FILE.verified()
    for _ in range(2):
        assert model_cache.repaired(path, DETECTOR_FILE.sha256, repair, pinned={}) == b"repaired"
    assert calls == [path.read_bytes()] * 2
    assert not cache.exists()


def test_repairs_that_differ_from_the_pin_are_not_cached(cache: Path) -> None:
    """Another onnx version serialising otherwise: used, never written as the pin."""
    got = model_cache.repaired(DETECTOR_FILE.verified(), DETECTOR_FILE.sha256,
                               lambda _: b"other bytes", pinned={DETECTOR_FILE.sha256: "b" * 64})
    assert got == b"other bytes"
    assert not cache.exists()


def test_a_source_changed_after_its_check_is_refused(tmp_path: Path, cache: Path) -> None:
    """What is repaired is what was checked: a swap between the check and the read is
    caught by hashing the very bytes repaired."""
    swapped = tmp_path / "model.onnx"
    swapped.write_bytes(b"not the checked model")
    with pytest.raises(ModelChecksumError, match="changed after its check"):
        model_cache.repaired(swapped, DETECTOR_FILE.sha256, yunet_sface_ort.repair_yunet)


def test_an_unwritable_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    caplog.set_level(logging.INFO, logger="frvs.models.model_cache")
    got = model_cache.repaired(DETECTOR_FILE.verified(), DETECTOR_FILE.sha256,
                               yunet_sface_ort.repair_yunet)
    assert _digest(got) == model_cache.PINNED[DETECTOR_FILE.sha256]
    assert "repaired at every load" in caplog.text


@pytest.mark.parametrize("where", ["relative/cache", ""])
def test_a_relative_or_empty_xdg_cache_home_means_the_home_cache(
        where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", where)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert model_cache.cache_dir() == tmp_path / ".cache" / "frvs" / "models"


def test_no_home_means_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user with no home (HOME unset, no passwd entry) loads, repairing every time."""
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)
    assert model_cache.cache_dir() is None
    got = model_cache.repaired(DETECTOR_FILE.verified(), DETECTOR_FILE.sha256,
                               yunet_sface_ort.repair_yunet)
    assert _digest(got) == model_cache.PINNED[DETECTOR_FILE.sha256]


@pytest.mark.parametrize("planted", ["folder", "symlink to /", "dangling symlink"])
def test_other_things_planted_in_the_cache_neither_stop_nor_load(
        planted: str, cache: Path) -> None:
    want = model_cache.PINNED[DETECTOR_FILE.sha256]
    target = cache / f"{want}.onnx"
    cache.mkdir(parents=True)
    if planted == "folder":
        target.mkdir()
    elif planted == "symlink to /":
        target.symlink_to("/")
    else:
        target.symlink_to(cache / "nowhere")
    got = model_cache.repaired(DETECTOR_FILE.verified(), DETECTOR_FILE.sha256,
                               yunet_sface_ort.repair_yunet)
    assert _digest(got) == want
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".part-")]


def test_an_interrupted_write_leaves_no_part_file(cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(model_cache.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model_cache.repaired(DETECTOR_FILE.verified(), DETECTOR_FILE.sha256,
                             yunet_sface_ort.repair_yunet)
    assert list(cache.iterdir()) == []


_LOAD_AND_DETECT = """
import json, sys
from pathlib import Path
from frvs.imaging.decode import read_image
from frvs.models.yunet_sface import YuNetSFaceConfig, build
pack = build(YuNetSFaceConfig())
image = read_image(Path(sys.argv[1]))
faces = pack.detector.detect(image)
template = pack.embedder.embed(image, faces[:1])[0]
print(json.dumps({"onnx": "onnx" in sys.modules, "boxes": [f.box.x for f in faces],
                  "template": [round(float(v), 6) for v in template.vector[:8]]}))
"""


def test_a_process_finding_the_cache_never_imports_onnx(tmp_path: Path) -> None:
    """Two real processes: the first repairs and keeps; the second reads the cache, runs
    the same detections and templates, and has not imported onnx (0.6 s saved)."""
    photo = DATA / "pairs" / "images" / "img38.jpg"
    env = os.environ | {"XDG_CACHE_HOME": str(tmp_path)}

    def run() -> dict[str, object]:
        out = subprocess.run([sys.executable, "-c", _LOAD_AND_DETECT, str(photo)], env=env,
                             capture_output=True, text=True, check=True, timeout=120)
        result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    cold, warm = run(), run()
    assert cold["onnx"] is True
    assert warm["onnx"] is False
    assert warm["boxes"] == cold["boxes"] and cold["boxes"]
    assert warm["template"] == cold["template"]
