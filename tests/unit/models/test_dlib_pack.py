"""The optional dlib pack on real photographs: detection, landmark order, templates,
the derived thresholds, accuracy on the test pairs and the CLI. The default 5-point
landmark model is tested throughout; the 68-point option in one small test."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from frvs.app import Application
from frvs.core.errors import ModelSpaceMismatchError, NoFaceError, PackUnavailableError
from frvs.core.templates import Template
from frvs.faces.service import detect_at_working_size
from frvs.imaging.decode import read_image
from frvs.models import dlib_pack
from frvs.models.registry import PackRegistry, default_pack_configs

HAVE_DLIB = importlib.util.find_spec("dlib") is not None
NO_DLIB = "dlib is not installed (pip install 'frvs[dlib]')"
FRVS = Path(sys.executable).parent / "frvs"


def calibration_photos(data_dir: Path) -> list[Path]:
    """Non-test photographs: the only ones the threshold derivation may look at."""
    train = sorted((data_dir / "identities/train").glob("*/*"))
    return train + sorted((data_dir / "video").glob("*.png"))


# --- pure functions, no dlib needed -------------------------------------------------------


@pytest.mark.parametrize(
    ("margin", "score"), [(0.0, 0.5), (0.5, 0.731), (1.0, 0.881), (-1.0, 0.119), (3.0, 0.998)]
)
def test_margin_maps_to_score_and_back(margin: float, score: float) -> None:
    assert dlib_pack.score_from_margin(margin) == pytest.approx(score, abs=1e-3)
    assert dlib_pack.margin_from_score(dlib_pack.score_from_margin(margin)) == pytest.approx(margin)


def test_five_landmarks_from_68_points() -> None:
    points = np.zeros((68, 2), dtype=np.float32)
    points[36:42] = [10, 20]
    points[42:48] = [30, 20]
    points[30] = [20, 30]
    points[48] = [12, 40]
    points[54] = [28, 40]
    lm = dlib_pack.landmarks_from_68(points)
    assert lm.points.tolist() == [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]]


def test_five_landmarks_from_5_points_estimate_the_mouth() -> None:
    # dlib's order: image-right eye's corners, image-left eye's corners, nose base.
    points = np.array([[140, 100], [120, 100], [60, 100], [80, 100], [100, 140]], np.float32)
    lm = dlib_pack.landmarks_from_5(points)
    e = 60.0  # between the eye centres (70, 100) and (130, 100)
    drop, half = dlib_pack.MOUTH_DROP * e, dlib_pack.MOUTH_HALF_WIDTH * e
    expected = np.array(
        [
            [70, 100],
            [130, 100],
            [100, 140 - dlib_pack.NOSE_RAISE * e],
            [100 - half, 100 + drop],
            [100 + half, 100 + drop],
        ],
        dtype=np.float64,
    )
    np.testing.assert_allclose(lm.points.astype(np.float64), expected, atol=1e-3)
    # The estimate turns with the eye line (a face rolled by 90 degrees, chin to the left).
    rolled = dlib_pack.landmarks_from_5(points[:, ::-1] * [-1, 1])
    np.testing.assert_allclose(
        rolled.points.astype(np.float64), expected[:, ::-1] * [-1, 1], atol=1e-3
    )


@pytest.mark.parametrize("landmarks", ["5", "68"])
def test_threshold_is_dlib_distance_converted_to_cosine(landmarks: str) -> None:
    # Two descriptors of norm n at Euclidean distance 0.6 have exactly this cosine.
    n = dlib_pack.CALIBRATION_MEDIAN_NORMS[landmarks]  # type: ignore[index]
    a = np.zeros(128)
    a[0] = n
    angle = 2 * np.arcsin(0.6 / (2 * n))
    b = np.zeros(128)
    b[0], b[1] = n * np.cos(angle), n * np.sin(angle)
    assert np.linalg.norm(a - b) == pytest.approx(0.6)
    thresholds = dlib_pack.THRESHOLDS_BY_LANDMARKS[landmarks]  # type: ignore[index]
    assert thresholds.default == pytest.approx(float(np.cos(angle)), abs=5e-4)


def test_default_is_the_public_domain_5_point_model() -> None:
    assert dlib_pack.DlibConfig().landmarks == "5"
    assert dlib_pack.INFO.space == dlib_pack.SPACE == dlib_pack.SPACES["5"]
    assert dlib_pack.INFO.thresholds is dlib_pack.THRESHOLDS
    assert dlib_pack.SPACES["5"] != dlib_pack.SPACES["68"]  # templates differ: no comparing
    default_files = {f.filename for f in dlib_pack.INFO.files}
    assert "shape_predictor_5_face_landmarks.dat" in default_files
    assert not any("68" in name for name in default_files)
    assert "only those public-domain model files" in dlib_pack.INFO.licence
    assert "estimated" in dlib_pack.INFO.description.lower()
    assert "excludes commercial use" in dlib_pack.INFO_68.licence
    assert "shape_predictor_68_face_landmarks.dat" in {f.filename for f in dlib_pack.INFO_68.files}
    with pytest.raises(ValueError, match="landmarks"):
        dlib_pack.DlibConfig.model_validate({"landmarks": "194"})


def test_pack_is_known_and_configured_without_importing_dlib() -> None:
    code = (
        "import sys\n"
        "from frvs.models.registry import PackRegistry, default_pack_configs\n"
        "packs = PackRegistry(default_pack_configs(), 'yunet_sface')\n"
        "assert packs.info('dlib').as_dict()['space'] == 'dlib@resnet_v1-sp5/128/cosine'\n"
        "assert 'dlib' not in sys.modules and 'face_recognition_models' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    sp68 = PackRegistry([dlib_pack.DlibConfig(landmarks="68")], "dlib")
    assert sp68.info("dlib") == dlib_pack.INFO_68
    assert [c.type for c in default_pack_configs()] == ["yunet_sface", "dlib"]


def test_missing_dlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes 'import dlib' raise ImportError
    with pytest.raises(PackUnavailableError, match=r"pip install 'frvs\[dlib\]'"):
        dlib_pack.build(dlib_pack.DlibConfig())


def test_config_refuses_unknown_fields_and_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="extra"):
        dlib_pack.DlibConfig.model_validate({"type": "dlib", "detectr": "cnn"})
    with pytest.raises(ValueError, match="upsample"):
        dlib_pack.DlibConfig(upsample=9)


# --- the real pack ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(session_app: Application) -> Application:
    if not HAVE_DLIB:
        pytest.skip(NO_DLIB)
    return session_app


@pytest.mark.dlib
@pytest.mark.skipif(not HAVE_DLIB, reason=NO_DLIB)
class TestDlibPack:
    def test_couple_gives_two_faces(self, app: Application, data_dir: Path) -> None:
        image = read_image(data_dir / "pairs/images/couple.jpg")
        faces = app.engine.detect(image, "dlib")
        assert len(faces) == 2
        for face in faces:
            assert 0.5 <= face.detection.score <= 1.0
            assert face.detection.landmarks.inter_eye_distance > 20

    @pytest.mark.parametrize(
        "photo",
        [
            "identities/train/obama/obama.jpg",
            "identities/train/rose_leslie/img2.jpg",
            "video/lin-manuel-miranda.png",
            "identities/train/alex_lacamoire/img1.jpg",
        ],
    )
    def test_landmark_order_matches_yunet(
        self, app: Application, data_dir: Path, photo: str
    ) -> None:
        image = read_image(data_dir / photo)
        ours = app.engine.detect(image, "dlib")[0].detection.landmarks
        yunet = app.engine.detect(image, "yunet_sface")[0].detection.landmarks
        # Swapped eyes or mouth corners would be about one inter-eye distance off.
        off = np.linalg.norm(ours.points - yunet.points, axis=1) / yunet.inter_eye_distance
        assert off.max() < 0.3, f"landmark offsets / inter-eye distance: {off.round(2)}"

    def test_templates_are_normalised_dlib_templates(
        self, app: Application, data_dir: Path
    ) -> None:
        image = read_image(data_dir / "identities/test/obama_and_biden.jpg")
        embedded = app.engine.analyse(image, "dlib")
        assert len(embedded) >= 2
        for e in embedded:
            assert e.template.space == dlib_pack.SPACE
            assert np.linalg.norm(e.template.vector) == pytest.approx(1.0, abs=1e-4)

    def test_dlib_and_yunet_templates_do_not_compare(
        self, app: Application, data_dir: Path
    ) -> None:
        image = read_image(data_dir / "identities/train/obama/obama.jpg")
        ours = app.engine.probe(image, "obama", "dlib").face.template
        theirs = app.engine.probe(image, "obama", "yunet_sface").face.template
        with pytest.raises(ModelSpaceMismatchError):
            ours.similarity(theirs)

    @pytest.mark.slow
    def test_estimated_landmarks_match_yunet_proportions_on_calibration_photos(
        self, app: Application, data_dir: Path
    ) -> None:
        # Re-measures MOUTH_DROP, MOUTH_HALF_WIDTH and NOSE_RAISE: YuNet's mouth and nose
        # in the frame of dlib's eye centres, averaged over the non-test photos, must land
        # where the 5-point estimate puts them.
        dlib, yunet = app.packs.get("dlib"), app.packs.get("yunet_sface")
        residuals = []
        for path in calibration_photos(data_dir):
            image = read_image(path)
            ours = max(detect_at_working_size(dlib, image, 640), key=lambda f: f.box.area)
            theirs = max(detect_at_working_size(yunet, image, 640), key=lambda f: f.box.area)
            p, y = ours.landmarks.points.astype(np.float64), theirs.landmarks.points
            across = p[1] - p[0]
            down = np.array([-across[1], across[0]])
            e2 = float(across @ across)
            residuals.append(
                [(y[i] - p[i]) @ axis / e2 for i in (2, 3, 4) for axis in (across, down)]
            )
        mean = np.mean(residuals, axis=0)
        # Mean offsets (nose x, nose y, mouth-right x, y, mouth-left x, y) in eye distances.
        assert np.abs(mean).max() < 0.03, mean.round(3)

    @pytest.mark.slow
    def test_threshold_derivation_holds_on_calibration_photos(
        self, app: Application, data_dir: Path
    ) -> None:
        pack = app.packs.get("dlib")
        norms = []
        for path in calibration_photos(data_dir):
            image = read_image(path)
            faces = detect_at_working_size(pack, image, 640)
            largest = max(faces, key=lambda f: f.box.area)
            (raw,) = pack.embedder.raw_descriptors(image, [largest])  # type: ignore[attr-defined]
            norms.append(float(np.linalg.norm(raw)))
        median = float(np.median(norms))
        assert median == pytest.approx(dlib_pack.CALIBRATION_MEDIAN_NORMS["5"], abs=0.01)
        derived = dlib_pack.cosine_for_euclidean(dlib_pack.DLIB_EUCLIDEAN_THRESHOLD, median)
        assert derived == pytest.approx(dlib_pack.THRESHOLDS.default, abs=0.002)

    @pytest.mark.slow
    def test_accuracy_on_test_pairs(self, app: Application, data_dir: Path) -> None:
        root = data_dir / "pairs"
        with (root / "pairs.csv").open() as f:
            rows = list(csv.DictReader(f))
        cache: dict[str, Template | None] = {}

        def template(name: str) -> Template | None:
            if name not in cache:
                try:
                    probe = app.engine.probe(read_image(root / name), name, "dlib")
                    cache[name] = probe.face.template
                except NoFaceError:
                    cache[name] = None  # counts as an error for every pair it is in
            return cache[name]

        threshold = dlib_pack.THRESHOLDS.default
        correct = 0
        for row in rows:
            a, b = template(row["image_a"]), template(row["image_b"])
            if a is not None and b is not None:
                correct += (a.similarity(b) >= threshold) == (row["same"] == "1")
        accuracy = correct / len(rows)
        missing = sorted(k for k, v in cache.items() if v is None)
        assert len(rows) == 280
        assert accuracy >= 0.98, f"accuracy {accuracy:.4f}; no face in {missing}"

    def test_cli_verify_with_dlib(self, data_dir: Path, data_path: Path) -> None:
        train = data_dir / "identities/train/obama"
        out = subprocess.run(
            [
                str(FRVS),
                "verify",
                "--pack",
                "dlib",
                str(train / "obama.jpg"),
                str(train / "obama2.jpg"),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["pack"] == "dlib"
        assert doc["same"] is True
        assert doc["threshold"] == dlib_pack.THRESHOLDS.default < doc["score"]
        assert len(doc["faces"]) == 2
        assert len(doc["faces"][0]["landmarks"]) == 5


@pytest.mark.dlib
@pytest.mark.skipif(not HAVE_DLIB, reason=NO_DLIB)
def test_68_point_option_is_its_own_space(session_app: Application, data_dir: Path) -> None:
    """The non-commercial 68-point model still works, in a space of its own."""
    pack = dlib_pack.build(dlib_pack.DlibConfig(landmarks="68"))
    assert pack.info is not dlib_pack.INFO and pack.info.space == dlib_pack.SPACES["68"]
    assert pack.info.thresholds.default == dlib_pack.INFO_68.thresholds.default
    image = read_image(data_dir / "identities/train/obama/obama.jpg")
    face = max(detect_at_working_size(pack, image, 640), key=lambda f: f.box.area)
    yunet = session_app.engine.detect(image, "yunet_sface")[0].detection.landmarks
    off = np.linalg.norm(face.landmarks.points - yunet.points, axis=1) / yunet.inter_eye_distance
    assert off.max() < 0.3, f"landmark offsets / inter-eye distance: {off.round(2)}"
    (sp68,) = pack.embedder.embed(image, [face])
    sp5 = session_app.engine.probe(image, "obama", "dlib").face.template
    assert sp68.space == dlib_pack.SPACES["68"] and sp5.space == dlib_pack.SPACES["5"]
    with pytest.raises(ModelSpaceMismatchError):
        sp68.similarity(sp5)
