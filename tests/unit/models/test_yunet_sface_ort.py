"""The ONNX Runtime runtime of YuNet + SFace: same faces and templates as OpenCV's.

Real photographs from ``../shared/data``; the OpenCV runtime is the reference.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from frvs.core.detections import FaceDetection
from frvs.core.errors import ModelChecksumError
from frvs.faces.service import detect_at_working_size
from frvs.imaging.decode import BGRImage, decode_image
from frvs.models import onnx_repair, yunet_sface_ort
from frvs.models.pack import ModelPack
from frvs.models.yunet_sface import DETECTOR_FILE, EMBEDDER_FILE, YuNetSFaceConfig, build

PHOTOS = (
    "pairs/images/couple.jpg",
    "pairs/images/selfie-many-people.jpg",
    "pairs/images/img1.jpg",
    "pairs/images/img11_reflection.jpg",
    "pairs/images/img38.jpg",
    "identities/test/obama_and_biden.jpg",
)
PIXEL_TOLERANCE = 1.0
COSINE_MIN = 0.9999


@pytest.fixture(scope="module")
def opencv_pack() -> ModelPack:
    return build(YuNetSFaceConfig(runtime="opencv"))


@pytest.fixture(scope="module")
def ort_pack() -> ModelPack:
    return build(YuNetSFaceConfig(runtime="onnxruntime"))


def _read(path: Path) -> BGRImage:
    return decode_image(path.read_bytes(), name=path.name)


def _assert_same_faces(a: Sequence[FaceDetection], b: Sequence[FaceDetection]) -> None:
    assert len(a) == len(b), f"OpenCV found {len(a)} faces, ORT {len(b)}"
    for x, y in zip(a, b, strict=True):
        box_x = np.array([x.box.x, x.box.y, x.box.w, x.box.h])
        box_y = np.array([y.box.x, y.box.y, y.box.w, y.box.h])
        assert np.abs(box_x - box_y).max() <= PIXEL_TOLERANCE, (box_x, box_y)
        assert np.abs(x.landmarks.points - y.landmarks.points).max() <= PIXEL_TOLERANCE
        assert x.score == pytest.approx(y.score, abs=1e-3)


# --- the repairs --------------------------------------------------------------------


def test_drop_unused_graph_inputs_leaves_only_the_image_to_feed() -> None:
    model = onnx.load(str(EMBEDDER_FILE.verified()))
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    initialized = {i.name for i in graph.initializer}

    dropped = onnx_repair.drop_unused_graph_inputs(model)

    assert len(dropped) == 29
    assert not set(dropped) & read, "a dropped input was read by a node"
    to_feed = [i.name for i in graph.input if i.name not in initialized]
    assert to_feed == ["data"]
    assert onnx_repair.drop_unused_graph_inputs(model) == []  # idempotent


def test_per_tensor_dequantize_rewrites_one_element_scales_only() -> None:
    model = onnx.load(str(DETECTOR_FILE.verified()))
    before = {n.name: onnx.NodeProto.FromString(n.SerializeToString()) for n in model.graph.node}
    values_before = {i.name: numpy_helper.to_array(i).copy() for i in model.graph.initializer}

    rewritten = onnx_repair.per_tensor_dequantize(model)

    assert len(rewritten) == 26
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        attributes = {a.name for a in node.attribute}
        scale = inits[node.input[1]]
        if node.name in rewritten:
            assert "block_size" not in attributes
            assert "axis" not in attributes
            assert list(scale.dims) == []
            assert list(inits[node.input[2]].dims) == []
            old = before[node.name]
            assert node.input[0] == old.input[0], "the quantised weights must not change"
            assert numpy_helper.to_array(scale) == values_before[old.input[1]].item()
        else:
            assert "block_size" in attributes
            assert int(np.prod(scale.dims)) > 1
    assert onnx_repair.per_tensor_dequantize(model) == []  # idempotent


def test_free_dimensions_makes_declared_axes_symbolic() -> None:
    model = onnx.load(str(DETECTOR_FILE.verified()))
    onnx_repair.free_dimensions(model, {"input": {2: "height", 3: "width"}})
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[:2]] == [1, 3]
    assert [d.dim_param for d in dims[2:]] == ["height", "width"]
    assert len(model.graph.value_info) == 0
    assert all(d.dim_param for o in model.graph.output for d in o.type.tensor_type.shape.dim)


def test_repaired_files_run_at_any_size_and_batch() -> None:
    yunet = ort.InferenceSession(
        yunet_sface_ort.repair_yunet(DETECTOR_FILE.verified().read_bytes()),
        providers=["CPUExecutionProvider"],
    )
    heads = yunet.run(["cls_8", "kps_32"], {"input": np.zeros((1, 3, 96, 160), np.float32)})
    assert heads[0].shape == (1, 12 * 20, 1)
    assert heads[1].shape == (1, 3 * 5, 10)
    sface = ort.InferenceSession(
        yunet_sface_ort.repair_sface(EMBEDDER_FILE.verified().read_bytes()),
        providers=["CPUExecutionProvider"],
    )
    (out,) = sface.run(None, {"data": np.zeros((3, 3, 112, 112), np.float32)})
    assert out.shape == (3, 128)


def test_prelu_rewrite_gives_bit_identical_templates(data_dir: Path,
                                                     ort_pack: ModelPack) -> None:
    """The PRelu nodes become Relu + slope * Min and the network's output on real faces
    does not change in a single bit (every other repair applied to both)."""
    def sface(rewrite: bool) -> tuple[onnx.ModelProto, ort.InferenceSession]:
        model = onnx.load(str(EMBEDDER_FILE.verified()))
        onnx_repair.drop_unused_graph_inputs(model)
        onnx_repair.initializers_not_inputs(model)
        replaced = onnx_repair.prelu_as_relu_and_min(model) if rewrite else []
        assert len(replaced) == (27 if rewrite else 0)
        onnx_repair.free_dimensions(model, {"data": {0: "batch"}})
        return model, ort.InferenceSession(onnx_repair.serialized(model),
                                           providers=["CPUExecutionProvider"])

    plain, before = sface(False)
    rewritten, after = sface(True)
    assert any(n.op_type == "PRelu" for n in plain.graph.node)
    assert not any(n.op_type == "PRelu" for n in rewritten.graph.node)
    image = _read(data_dir / "pairs/images/selfie-many-people.jpg")
    faces = detect_at_working_size(ort_pack, image, 640)
    assert len(faces) >= 3
    crops = np.stack([ort_pack.embedder.align(image, f) for f in faces])  # type: ignore[attr-defined]
    blob = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    (a,) = before.run(None, {"data": blob})
    (b,) = after.run(None, {"data": blob})
    assert np.array_equal(a, b)


def test_prelu_rewrite_names_nodes_after_their_outputs() -> None:
    """Two PRelu nodes without names (allowed by ONNX) still make a valid graph."""
    from onnx import TensorProto, helper

    slope = numpy_helper.from_array(np.array([0.25, -0.5], np.float32).reshape(2, 1, 1), "s")
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "s"], ["y"]),
         helper.make_node("PRelu", ["y", "s"], ["z"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 2, 2])], [slope])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = np.array([-3.0, -0.0, 0.0, 2.0, -1.5, 7.0, -8.0, 1.0], np.float32).reshape(1, 2, 2, 2)
    before = ort.InferenceSession(onnx_repair.serialized(model),
                                  providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert len(onnx_repair.prelu_as_relu_and_min(model)) == 2
    after = ort.InferenceSession(onnx_repair.serialized(model),
                                 providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.array_equal(before, after)


# --- same results as OpenCV ---------------------------------------------------------


@pytest.mark.parametrize("photo", PHOTOS)
def test_detections_match_opencv(
    data_dir: Path, opencv_pack: ModelPack, ort_pack: ModelPack, photo: str
) -> None:
    image = _read(data_dir / photo)
    reference = detect_at_working_size(opencv_pack, image, 640)
    assert reference, f"{photo}: the reference runtime found no face"
    _assert_same_faces(reference, detect_at_working_size(ort_pack, image, 640))


@pytest.mark.parametrize(("height", "width"), [(257, 301), (480, 640), (33, 65)])
def test_detections_match_opencv_at_sizes_needing_padding(
    data_dir: Path, opencv_pack: ModelPack, ort_pack: ModelPack, height: int, width: int
) -> None:
    image = _read(data_dir / "pairs/images/couple.jpg")
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    _assert_same_faces(opencv_pack.detector.detect(canvas), ort_pack.detector.detect(canvas))


def test_embeddings_match_opencv(
    data_dir: Path, opencv_pack: ModelPack, ort_pack: ModelPack
) -> None:
    for photo in PHOTOS:
        image = _read(data_dir / photo)
        faces = detect_at_working_size(opencv_pack, image, 640)
        batched = ort_pack.embedder.embed(image, faces)
        for face, template in zip(faces, batched, strict=True):
            # OpenCV one face at a time: its batched SFace output is not usable (see report).
            (reference,) = opencv_pack.embedder.embed(image, [face])
            assert reference.similarity(template) >= COSINE_MIN, photo


def test_batch_gives_the_same_templates_as_one_by_one(data_dir: Path, ort_pack: ModelPack) -> None:
    image = _read(data_dir / "pairs/images/selfie-many-people.jpg")
    faces = detect_at_working_size(ort_pack, image, 640)
    assert len(faces) >= 3
    batched = ort_pack.embedder.embed(image, faces)
    for face, template in zip(faces, batched, strict=True):
        (single,) = ort_pack.embedder.embed(image, [face])
        assert single.similarity(template) >= 0.99999
    assert ort_pack.embedder.embed(image, []) == []


def test_detector_is_thread_safe(data_dir: Path, ort_pack: ModelPack) -> None:
    images = [_read(data_dir / p) for p in PHOTOS[:3]]
    expected = [detect_at_working_size(ort_pack, im, 640) for im in images]
    results: dict[int, list[list[FaceDetection]]] = {}

    def work(k: int) -> None:
        results[k] = [detect_at_working_size(ort_pack, im, 640) for im in images]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        for a, b in zip(expected, got, strict=True):
            _assert_same_faces(a, b)


def test_a_lone_run_takes_every_core_and_an_overlapping_run_one(data_dir: Path) -> None:
    model = yunet_sface_ort.repair_sface(EMBEDDER_FILE.verified().read_bytes())
    sessions = yunet_sface_ort.Sessions(model, "sface")
    crop = cv2.resize(_read(data_dir / "pairs/images/img38.jpg"), (112, 112))
    blob = {sessions.input_name: np.ascontiguousarray(
        crop[None, ..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)}
    with sessions.claimed() as lone, sessions.claimed() as overlapping:
        assert lone is not overlapping
        (a,) = lone.run(None, blob)
        (b,) = overlapping.run(None, blob)
    threads = [s.get_session_options().intra_op_num_threads for s in (lone, overlapping)]
    assert threads == [max(1, min(os.cpu_count() or 1, 8)), 1]
    assert np.allclose(a, b, atol=1e-4)  # the same model, only the thread count differs
    with sessions.claimed() as again:
        assert again is lone  # the overlap is over


# --- loading ------------------------------------------------------------------------


@pytest.mark.parametrize("corrupt", [DETECTOR_FILE.filename, EMBEDDER_FILE.filename])
def test_a_changed_byte_is_refused(tmp_path: Path, corrupt: str) -> None:
    for f in (DETECTOR_FILE, EMBEDDER_FILE):
        shutil.copy(f.verified(), tmp_path / f.filename)
    target = tmp_path / corrupt
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError):
        build(YuNetSFaceConfig(runtime="onnxruntime", models_dir=tmp_path))


def test_an_intact_copy_loads_from_models_dir(tmp_path: Path) -> None:
    for f in (DETECTOR_FILE, EMBEDDER_FILE):
        shutil.copy(f.verified(), tmp_path / f.filename)
    pack = build(YuNetSFaceConfig(runtime="onnxruntime", models_dir=tmp_path))
    assert pack.runtime.startswith("onnxruntime-")


@pytest.mark.parametrize(
    ("providers", "name"),
    [
        (["CPUExecutionProvider"], "onnxruntime-cpu"),
        (["CUDAExecutionProvider", "CPUExecutionProvider"], "onnxruntime-cuda"),
    ],
)
def test_runtime_name(providers: list[str], name: str) -> None:
    assert yunet_sface_ort.runtime_name(providers) == name


def test_cuda_failure_falls_back_to_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_session = ort.InferenceSession
    requested: list[list[str]] = []

    def session(model: bytes, options: Any, providers: list[str]) -> Any:
        requested.append(list(providers))
        if "CUDAExecutionProvider" in providers:
            raise RuntimeError("CUDA driver not found")
        return real_session(model, options, providers=providers)

    monkeypatch.setattr(
        yunet_sface_ort.ort,
        "get_available_providers",
        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    monkeypatch.setattr(yunet_sface_ort.ort, "InferenceSession", session)
    with caplog.at_level(logging.WARNING, logger=yunet_sface_ort.__name__):
        embedder = yunet_sface_ort.OrtSFaceEmbedder(EMBEDDER_FILE.verified(), EMBEDDER_FILE.sha256)
    assert requested[:2] == [
        ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ["CPUExecutionProvider"],
    ]
    assert requested[2:] in ([], [["CPUExecutionProvider"]])  # the one-core session, if any
    assert caplog.text.count("falling back to CPU") == 1
    assert embedder.providers == ["CPUExecutionProvider"]
    assert "falling back to CPU" in caplog.text


def test_cuda_is_not_requested_when_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    requested: list[list[str]] = []
    real_session = ort.InferenceSession

    def session(model: bytes, options: Any, providers: list[str]) -> Any:
        requested.append(list(providers))
        return real_session(model, options, providers=providers)

    monkeypatch.setattr(
        yunet_sface_ort.ort, "get_available_providers", lambda: ["CPUExecutionProvider"]
    )
    monkeypatch.setattr(yunet_sface_ort.ort, "InferenceSession", session)
    yunet_sface_ort.OrtSFaceEmbedder(EMBEDDER_FILE.verified(), EMBEDDER_FILE.sha256)
    assert requested and all(p == ["CPUExecutionProvider"] for p in requested)


# --- accuracy -----------------------------------------------------------------------


def test_onnxruntime_pack_verifies_the_shared_pairs(data_dir: Path, ort_pack: ModelPack) -> None:
    """>= 99% of the 280 labelled pairs right at the pack's default threshold."""
    pairs_dir = data_dir / "pairs"
    with (pairs_dir / "pairs.csv").open(newline="") as f:
        pairs = [(r["image_a"], r["image_b"], r["same"] == "1") for r in csv.DictReader(f)]
    templates: dict[str, Any] = {}

    def template(name: str) -> Any:
        if name not in templates:
            image = _read(pairs_dir / name)
            faces = detect_at_working_size(ort_pack, image, 640)
            largest = max(faces, key=lambda d: d.box.area, default=None)
            templates[name] = (
                None if largest is None else ort_pack.embedder.embed(image, [largest])[0]
            )
        return templates[name]

    threshold = ort_pack.info.thresholds.default
    right = 0
    for a, b, same in pairs:
        ta, tb = template(a), template(b)
        if ta is not None and tb is not None:
            right += (ta.similarity(tb) >= threshold) == same
    accuracy = right / len(pairs)
    assert len(pairs) == 280
    assert accuracy >= 0.99, f"{right}/{len(pairs)} right ({accuracy:.2%})"
