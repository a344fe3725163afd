"""YuNet + SFace on ONNX Runtime: the same files and results as the OpenCV runtime.

The shipped files need load-time repairs (``onnx_repair``) before ORT accepts them at
any size and runs them fast; they are applied in memory after the checksum check, and
the repaired bytes of the shipped files are kept in the user's cache (``model_cache``).
YuNet's post-processing is OpenCV's ``FaceDetectorYN`` (objdetect/src/face_detect.cpp)
re-done with numpy: pad the image to multiples of 32, decode each stride's grid,
score = sqrt(cls * obj), then ``cv2.dnn.NMSBoxes`` on integer boxes, so both runtimes
return the same faces.

ORT sessions' ``run`` is thread-safe, so neither class takes a lock around a run.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from frvs.core.detections import FaceDetection
from frvs.core.templates import Template
from frvs.imaging.decode import BGRImage
from frvs.models import model_cache
from frvs.models.alignment import ALIGNED_SIZE
from frvs.models.yunet_sface import (
    SPACE,
    SFaceEmbedderBase,
    YuNetSFaceConfig,
    detections_from_yunet,
)

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

DIVISOR = 32
STRIDES = (8, 16, 32)
_ORT_WARNING = 3  # ORT severity: 0 verbose .. 3 error; its load warnings are about the file


def cuda_available() -> bool:
    """Whether the installed ONNX Runtime build offers the CUDA provider."""
    return CUDA in ort.get_available_providers()


def runtime_name(providers: Sequence[str] | None = None) -> str:
    """'onnxruntime-cuda' when CUDA runs (or, without ``providers``, is available)."""
    active = ort.get_available_providers() if providers is None else providers
    return "onnxruntime-cuda" if CUDA in active else "onnxruntime-cpu"


def session_options(threads: int = 0) -> ort.SessionOptions:
    """Options for every session: all graph optimisations, ``threads`` intra-op threads
    (0: every core, up to 8).

    Ops run sequentially, so there is no separate inter-op pool competing for the same
    cores. Idle pool threads sleep instead of spinning: a server runs cameras, the API and
    the index beside inference, and on a busy 2-core machine spinning pool threads doubled
    ORT's latency in our measurements.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or _cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = _ORT_WARNING
    # Fold the weight-only DequantizeLinear nodes into fp32 weights once, at load time.
    # Otherwise ORT keeps them (to preserve QDQ patterns for int8 kernels, which these
    # weight-only graphs cannot use) and dequantises every weight on every run: 2-3x slower.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _cores() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def create_session(model: bytes, name: str) -> ort.InferenceSession:
    """A session on CUDA (then CPU) when ORT offers CUDA, else on CPU.

    A CUDA session that cannot be created (no driver, missing cuDNN, ...) is logged as a
    warning and replaced by a CPU session.
    """
    if cuda_available():
        try:
            return ort.InferenceSession(model, session_options(), providers=[CUDA, CPU])
        except Exception as exc:
            logger.warning("%s: CUDA session failed (%s); falling back to CPU", name, exc)
    return ort.InferenceSession(model, session_options(), providers=[CPU])


class Sessions:
    """One model in two sessions: every core for a run that has the machine to itself,
    one core for a run that overlaps another.

    Splitting one run over two cores shortens it (YuNet at 960x544: 22 ms alone, 16 ms on
    two threads) but costs CPU time to hand work between threads (25 ms CPU), and SFace
    more so (32 ms alone, 38 ms CPU on two threads). When runs overlap (cameras detecting
    side by side, concurrent API requests) the cores are busy anyway, so each run takes one
    and nothing is spent on handing over. A lone request keeps the shorter latency.
    On CUDA both are the same session.

    The one-core session is created when a run first overlaps another (a one-shot
    command never needs it); until then the model's bytes are kept to create it from.
    """

    def __init__(self, model: bytes, name: str) -> None:
        self._wide = create_session(model, name)
        cpu_only = self._wide.get_providers() == [CPU]
        self._model: bytes | None = model if cpu_only and _cores() > 1 else None
        self._narrow: ort.InferenceSession | None = None if self._model is not None else self._wide
        self._running = 0
        self._lock = threading.Lock()
        self._narrow_lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        return list(self._wide.get_providers())

    @property
    def input_name(self) -> str:
        return str(self._wide.get_inputs()[0].name)

    @property
    def output_name(self) -> str:
        return str(self._wide.get_outputs()[0].name)

    @contextmanager
    def claimed(self) -> Iterator[ort.InferenceSession]:
        """The session for one run: the wide one when no other run is under way."""
        with self._lock:
            overlaps = self._running > 0
            self._running += 1
        try:
            yield self._one_core() if overlaps else self._wide
        finally:
            with self._lock:
                self._running -= 1

    def _one_core(self) -> ort.InferenceSession:
        """The one-core session, created once, by the first run that needs it."""
        narrow = self._narrow
        if narrow is not None:
            return narrow
        with self._narrow_lock:
            if self._narrow is None:
                assert self._model is not None
                self._narrow = ort.InferenceSession(self._model, session_options(1),
                                                    providers=[CPU])
                self._model = None
            return self._narrow

    def run(self, outputs: list[str], feeds: dict[str, npt.NDArray[np.float32]]
            ) -> list[npt.NDArray[np.float32]]:
        """``InferenceSession.run`` on the session that suits what else is running."""
        with self.claimed() as session:
            return list(session.run(outputs, feeds))


def repair_yunet(data: bytes) -> bytes:
    """The YuNet file's bytes, repaired for ORT."""
    from frvs.models import onnx_repair  # imports onnx: 0.6 s, only when not cached

    model = onnx_repair.parsed(data)
    onnx_repair.per_tensor_dequantize(model)
    name = model.graph.input[0].name
    onnx_repair.free_dimensions(model, {name: {2: "height", 3: "width"}})
    return onnx_repair.serialized(model)


def repair_sface(data: bytes) -> bytes:
    """The SFace file's bytes, repaired for ORT."""
    from frvs.models import onnx_repair  # imports onnx: 0.6 s, only when not cached

    model = onnx_repair.parsed(data)
    onnx_repair.drop_unused_graph_inputs(model)
    onnx_repair.initializers_not_inputs(model)
    onnx_repair.prelu_as_relu_and_min(model)
    name = model.graph.input[0].name
    onnx_repair.free_dimensions(model, {name: {0: "batch"}})
    return onnx_repair.serialized(model)


class OrtYuNetDetector:
    """YuNet 2023mar through ONNX Runtime, post-processed as OpenCV's FaceDetectorYN."""

    grid = 32  # YuNet's strides are 8, 16 and 32

    def __init__(self, model_path: Path, sha256: str, config: YuNetSFaceConfig) -> None:
        self._session = Sessions(model_cache.repaired(model_path, sha256, repair_yunet),
                                 model_path.name)
        self._input = self._session.input_name
        self._outputs = [
            f"{head}_{stride}" for head in ("cls", "obj", "bbox", "kps") for stride in STRIDES
        ]
        self._score_threshold = config.score_threshold
        self._nms_threshold = config.nms_threshold
        self._top_k = config.top_k

    @property
    def providers(self) -> list[str]:
        return self._session.providers

    def detect(self, image: BGRImage) -> list[FaceDetection]:
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            return []
        pad_h = ((h - 1) // DIVISOR + 1) * DIVISOR
        pad_w = ((w - 1) // DIVISOR + 1) * DIVISOR
        blob = np.zeros((1, 3, pad_h, pad_w), dtype=np.float32)
        blob[0, :, :h, :w] = image.transpose(2, 0, 1)
        heads = self._session.run(self._outputs, {self._input: blob})
        rows = self._decode(heads, pad_w)
        return detections_from_yunet(self._suppress(rows))

    def _decode(
        self, heads: Sequence[npt.NDArray[np.float32]], pad_w: int
    ) -> npt.NDArray[np.float32]:
        """(N, 15) rows — box, landmarks, score — of every cell above the threshold."""
        found = []
        n = len(STRIDES)
        for i, stride in enumerate(STRIDES):
            cols = pad_w // stride
            cls = np.clip(heads[i].reshape(-1), 0.0, 1.0)
            obj = np.clip(heads[i + n].reshape(-1), 0.0, 1.0)
            score = np.sqrt(cls * obj)
            keep = np.flatnonzero(score >= np.float32(self._score_threshold))
            if keep.size == 0:
                continue
            bbox = heads[i + 2 * n].reshape(-1, 4)[keep]
            kps = heads[i + 3 * n].reshape(-1, 5, 2)[keep]
            cell = np.stack([keep % cols, keep // cols], axis=1).astype(np.float32)
            s = np.float32(stride)
            centre = (cell + bbox[:, :2]) * s
            size = np.exp(bbox[:, 2:]) * s
            points = (kps + cell[:, None, :]) * s
            out = np.empty((keep.size, 15), dtype=np.float32)
            out[:, :2] = centre - size / np.float32(2.0)
            out[:, 2:4] = size
            out[:, 4:14] = points.reshape(-1, 10)
            out[:, 14] = score[keep]
            found.append(out)
        if not found:
            return np.empty((0, 15), dtype=np.float32)
        return np.concatenate(found)

    def _suppress(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """OpenCV's NMS on integer-truncated boxes; a single candidate is kept as is."""
        if len(rows) <= 1:
            return rows
        boxes = [tuple(int(v) for v in r[:4]) for r in rows]
        keep = cv2.dnn.NMSBoxes(
            boxes,
            rows[:, 14].tolist(),
            self._score_threshold,
            self._nms_threshold,
            top_k=self._top_k,
        )
        return rows[np.asarray(keep, dtype=np.int64).reshape(-1)]


class OrtSFaceEmbedder(SFaceEmbedderBase):
    """SFace through ONNX Runtime, batched; same input as ``OpenCVSFaceEmbedder``."""

    def __init__(self, model_path: Path, sha256: str) -> None:
        self._session = Sessions(model_cache.repaired(model_path, sha256, repair_sface),
                                 model_path.name)
        self._input = self._session.input_name
        self._output = self._session.output_name

    @property
    def providers(self) -> list[str]:
        return self._session.providers

    def embed_aligned(self, crops: Sequence[BGRImage]) -> list[Template]:
        """Templates for crops that are already aligned 112x112 BGR faces."""
        if not crops:
            return []
        batch = np.stack([np.asarray(c) for c in crops])
        if batch.shape[1:] != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            batch = np.stack(
                [cv2.resize(c, (ALIGNED_SIZE, ALIGNED_SIZE)) for c in crops]  # as blobFromImages
            )
        # BGR -> RGB, scale 1, NCHW float32: what cv2.dnn.blobFromImages(swapRB=True) makes.
        blob = np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        (out,) = self._session.run([self._output], {self._input: blob})
        vectors = np.asarray(out, dtype=np.float32).reshape(len(crops), -1)
        return [Template.from_raw(row, SPACE) for row in vectors]
