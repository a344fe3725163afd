"""Records validate where they are made, with expected-versus-actual messages."""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from frvs.core.detections import FaceDetection
from frvs.core.errors import InvalidRecordError, ModelSpaceMismatchError
from frvs.core.geometry import Box, Landmarks
from frvs.core.templates import ModelSpace, Template

SPACE = ModelSpace("yunet_sface", "v1", 4)


def unit(values: list[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(
    ("vector", "expectation"),
    [
        (unit([1, 2, 3, 4]), does_not_raise()),
        (unit([1, 2, 3]), pytest.raises(InvalidRecordError, match="must have 4 values, got 3")),
        (np.array([1, 2, 3, 4], dtype=np.float32), pytest.raises(InvalidRecordError, match="norm")),
        (unit([1, 2, 3, 4]).astype(np.float64), pytest.raises(InvalidRecordError, match="float32")),
        (unit([1, 2, 3, 4]).reshape(2, 2), pytest.raises(InvalidRecordError, match="1-D")),
    ],
)
def test_template_validates_where_made(
    vector: np.ndarray, expectation: AbstractContextManager[object]
) -> None:
    with expectation:
        Template(vector, SPACE)


def test_from_raw_normalises_and_refuses_zero() -> None:
    t = Template.from_raw([3.0, 0.0, 4.0, 0.0], SPACE)
    assert t.vector.tolist() == pytest.approx([0.6, 0.0, 0.8, 0.0])
    with pytest.raises(InvalidRecordError, match="norm 0"):
        Template.from_raw([0.0, 0.0, 0.0, 0.0], SPACE)
    with pytest.raises(InvalidRecordError):
        Template.from_raw([np.nan, 1.0, 0.0, 0.0], SPACE)


def test_similarity_within_space_and_refused_across_spaces() -> None:
    a = Template.from_raw([1, 0, 0, 0], SPACE)
    b = Template.from_raw([1, 1, 0, 0], SPACE)
    assert a.similarity(b) == pytest.approx(2**-0.5)
    other = ModelSpace("dlib", "v1", 4)
    with pytest.raises(ModelSpaceMismatchError, match="yunet_sface@v1/4/cosine vs dlib@v1"):
        a.similarity(Template.from_raw([1, 0, 0, 0], other))
    newer = ModelSpace("yunet_sface", "v2", 4)
    with pytest.raises(ModelSpaceMismatchError):
        a.similarity(Template.from_raw([1, 0, 0, 0], newer))


@pytest.mark.parametrize(
    ("points", "expectation"),
    [
        (np.zeros((5, 2), np.float32), does_not_raise()),
        (np.zeros((4, 2), np.float32), pytest.raises(InvalidRecordError, match=r"\(5, 2\)")),
        (np.full((5, 2), np.inf, np.float32), pytest.raises(InvalidRecordError, match="finite")),
    ],
)
def test_landmarks_shape(points: np.ndarray, expectation: AbstractContextManager[object]) -> None:
    with expectation:
        Landmarks(points)


def test_detection_scaling_maps_box_and_landmarks() -> None:
    landmarks = Landmarks.from_sequence([[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]])
    face = FaceDetection(Box(5, 5, 20, 20), landmarks, 0.9)
    big = face.scaled(2.0)
    assert big.box == Box(10, 10, 40, 40)
    assert big.landmarks.points[1].tolist() == [40, 20]
    assert big.landmarks.inter_eye_distance == pytest.approx(20.0)
    with pytest.raises(InvalidRecordError, match="score"):
        FaceDetection(Box(0, 0, 1, 1), landmarks, 1.5)
    with pytest.raises(InvalidRecordError, match="box size"):
        Box(0, 0, -1, 3)
