"""The optional ``dlib`` pack: dlib's HOG (or CNN) face detector, its 68-point shape
predictor and its ResNet face descriptor, from the PyPI packages ``dlib-bin`` (the
``dlib`` module) and ``face_recognition_models`` (the ``.dat`` files).

Installed with ``pip install 'frvs[dlib]'``. Nothing here imports ``dlib`` until
``build()`` runs, so ``frvs models`` can list the pack on a machine without it.

Plugin config and implementation live together here; ``registry`` builds the union.

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
``../shared/data/video/*.png`` (never the test pairs) is 1.431, which puts ``d = 0.6`` at
cosine 0.912. ``tests/unit/test_dlib_pack.py`` re-measures this.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from frvs.core.detections import FaceDetection
from frvs.core.errors import PackUnavailableError
from frvs.core.geometry import Box, Landmarks
from frvs.core.templates import Metric, ModelSpace, Template
from frvs.imaging.decode import BGRImage
from frvs.models.alignment import ALIGNED_SIZE, align_face
from frvs.models.pack import ModelFile, ModelPack, PackInfo, Thresholds

PACK_NAME = "dlib"
PACK_VERSION = "resnet_v1-sp68"

_PACKAGE = "face_recognition_models"
RECOGNITION_FILE = ModelFile(
    "dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    package=_PACKAGE,
)
LANDMARK_FILE = ModelFile(
    "shape_predictor_68_face_landmarks.dat",
    "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    package=_PACKAGE,
)
CNN_DETECTOR_FILE = ModelFile(
    "mmod_human_face_detector.dat",
    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    package=_PACKAGE,
)

SPACE = ModelSpace(PACK_NAME, PACK_VERSION, 128, Metric.COSINE)

# dlib's published Euclidean threshold and the median raw descriptor norm measured on
# non-test photos (see the module docstring); the cosine threshold follows from them.
DLIB_EUCLIDEAN_THRESHOLD = 0.6
CALIBRATION_MEDIAN_NORM = 1.431


def cosine_for_euclidean(distance: float, norm: float) -> float:
    """The cosine of two descriptors of equal ``norm`` that lie ``distance`` apart."""
    return 1.0 - distance**2 / (2.0 * norm**2)


THRESHOLDS = Thresholds(
    default=round(cosine_for_euclidean(DLIB_EUCLIDEAN_THRESHOLD, CALIBRATION_MEDIAN_NORM), 3),
    source=(
        "dlib's published operating point, Euclidean distance 0.6 on raw descriptors "
        "(99.38% on LFW), converted to cosine as 1 - 0.6^2 / (2 n^2) with n = 1.431, the "
        "median descriptor norm on the non-test photos of shared/data/identities/train and "
        "shared/data/video. Thresholds per target FMR come from 'frvs calibrate' on the "
        "deployer's own labelled data."
    ),
)

INFO = PackInfo(
    name=PACK_NAME,
    version=PACK_VERSION,
    space=SPACE,
    description="dlib HOG face detector (or the MMOD CNN detector), 68-point shape predictor "
    "(reduced to FRVS's 5 landmarks) and the ResNet-29 128-d face descriptor",
    provenance="Davis King's dlib models (github.com/davisking/dlib-models), as shipped in the "
    "PyPI package face_recognition_models 0.3.0 (face_recognition_models/models/); run by "
    "dlib from the PyPI package dlib-bin",
    licence="dlib: Boost Software License 1.0. Model files: CC0 1.0 per face_recognition_models' "
    "LICENSE; dlib-models' README releases the ResNet descriptor and MMOD detector into the "
    "public domain, BUT the 68-point predictor is trained on iBUG 300-W, whose licence "
    "excludes commercial use: check with a lawyer before using this pack commercially",
    files=(RECOGNITION_FILE, LANDMARK_FILE, CNN_DETECTOR_FILE),
    thresholds=THRESHOLDS,
)

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


class DlibConfig(BaseModel):
    """Settings of the dlib pack."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["dlib"] = "dlib"
    detector: Literal["hog", "cnn"] = Field(
        "hog",
        title="Face detector",
        description="'hog' (frontal faces, fast on CPU) or 'cnn' (mmod_human_face_detector.dat: "
        "finds turned and small faces too, but is many times slower without a GPU; the "
        "68-point predictor is tuned on HOG boxes, so landmarks are a little looser).",
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


def score_from_margin(margin: float) -> float:
    """dlib's detection margin as an FRVS score in [0, 1] (monotonic logistic)."""
    return 1.0 / (1.0 + math.exp(-_MARGIN_SLOPE * margin))


def margin_from_score(score: float) -> float:
    """The inverse of ``score_from_margin``: the dlib margin for an FRVS score."""
    return math.log(score / (1.0 - score)) / _MARGIN_SLOPE


def five_landmarks(points: np.ndarray) -> Landmarks:
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
    lock: threading.Lock


class DlibDetector:
    """HOG or CNN detection plus the 68-point predictor, reduced to five landmarks."""

    def __init__(self, models: _Models, config: DlibConfig) -> None:
        self._m = models
        self._cnn = config.detector == "cnn"
        self._upsample = config.upsample
        self._threshold = config.score_threshold

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
            faces.append(FaceDetection(box, five_landmarks(points), score_from_margin(margin)))
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
    """dlib's ResNet descriptor, computed on the 68-point shape of each detection's box."""

    def __init__(self, models: _Models, num_jitters: int) -> None:
        self._m = models
        self._jitters = num_jitters

    @property
    def space(self) -> ModelSpace:
        return SPACE

    def align(self, image: BGRImage, face: FaceDetection) -> BGRImage:
        """A 112x112 crop aligned on the five landmarks.

        dlib's own 150x150 chip is what the descriptor sees, but quality measures
        (sharpness, contrast) and their minimums are defined on FRVS's 112x112 crop, so
        every pack hands the same kind of crop to quality.
        """
        return align_face(image, face.landmarks, ALIGNED_SIZE)

    def embed(self, image: BGRImage, faces: Sequence[FaceDetection]) -> list[Template]:
        """One template per face, in order."""
        return [Template.from_raw(d, SPACE) for d in self.raw_descriptors(image, faces)]

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
    predictor_path = LANDMARK_FILE.verified(config.models_dir)
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
        lock=threading.Lock(),
    )
    runtime = f"dlib {dlib.__version__} ({config.detector})"
    return ModelPack(
        INFO, DlibDetector(models, config), DlibEmbedder(models, config.num_jitters), runtime
    )
