"""Pairs and identity-tree readers, on small files written per test and on the shared tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frvs.core.errors import InvalidInputError
from frvs.core.templates import ModelSpace, Template
from frvs.evaluation.datasets import (
    load_identities,
    load_pairs,
    names_in_filename,
)
from frvs.evaluation.identification import StackedGallery, search_image


def test_pairs_csv_with_groups(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("image_a,image_b,same,group,note\na.jpg,b.jpg,1,g1,x\na.jpg,c.jpg,0,,y\n")
    data = load_pairs(csv)
    assert [p.same for p in data.pairs] == [True, False]
    assert [p.group for p in data.pairs] == ["g1", None]
    assert data.images == [tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"]
    assert (data.genuine, data.impostor, data.has_groups) == (1, 1, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [("image_a,image_b\na,b\n", "missing column"), ("image_a,image_b,same\na,b,maybe\n", ":2"),
     ("image_a,image_b,same\n", "no pairs")],
)
def test_bad_pairs_csv(tmp_path: Path, text: str, message: str) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        load_pairs(csv)


def test_lfw_pairs(tmp_path: Path) -> None:
    txt = tmp_path / "pairs.txt"
    txt.write_text("1\t2\nAbel_Pacheco\t1\t4\nAbdel_Madi_Shabneh\t1\tDean_Barker\t1\n")
    data = load_pairs(txt, tmp_path / "lfw")
    assert data.kind == "lfw"
    assert data.pairs[0].a == tmp_path / "lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert data.pairs[0].b.name == "Abel_Pacheco_0004.jpg" and data.pairs[0].same
    assert data.pairs[1].b == tmp_path / "lfw/Dean_Barker/Dean_Barker_0001.jpg"
    assert not data.pairs[1].same


PEOPLE = ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"]


@pytest.mark.parametrize(
    ("stem", "names"),
    [("alex_lacamoire1", ("alex_lacamoire",)), ("obama1", ("obama",)),
     ("obama_and_biden", ("biden", "obama")), ("kit_with_rose", ("kit_harington", "rose_leslie")),
     ("johnsnow_test1", ())],
)
def test_names_in_filename(stem: str, names: tuple[str, ...]) -> None:
    assert names_in_filename(stem, PEOPLE) == names


def test_shared_identities_layout(data_dir: Path) -> None:
    data = load_identities(data_dir / "identities")
    assert data.enrolled == PEOPLE
    assert len(data.gallery) == 9
    labelled = {p.path.name: p.identities for p in data.probes}
    assert labelled["kit_with_rose.jpg"] == ("kit_harington", "rose_leslie")
    assert [e.path.name for e in data.excluded] == ["johnsnow_test1.jpg"]
    assert "labels" in data.excluded[0].reason


def test_labels_csv_labels_every_probe(tmp_path: Path, data_dir: Path) -> None:
    labels = tmp_path / "labels.csv"
    test = data_dir / "identities" / "test"
    labels.write_text("image,identity\n" + "".join(
        f"{test / f},{who}\n" for f, who in [
            ("johnsnow_test1.jpg", "kit_harington"), ("obama1.jpg", "obama"),
            ("obama_and_biden.jpg", "obama"), ("obama_and_biden.jpg", "biden"),
            ("kit_with_rose.jpg", "kit_harington"), ("kit_with_rose.jpg", "rose_leslie"),
            ("alex_lacamoire1.jpg", "alex_lacamoire")]))
    data = load_identities(data_dir / "identities", labels)
    assert data.excluded == ()
    assert sum(len(p.identities) for p in data.probes) == 7


def test_seeded_split(tmp_path: Path) -> None:
    for person, n in [("p1", 3), ("p2", 2), ("p3", 1), ("p4", 2), ("p5", 2)]:
        (tmp_path / person).mkdir()
        for i in range(n):
            (tmp_path / person / f"{i}.jpg").write_bytes(b"x")
    a = load_identities(tmp_path, seed=3)
    assert a == load_identities(tmp_path, seed=3)
    assert len(a.enrolled) == 4  # one person in five held out as non-mated
    held = {p.identities[0] for p in a.probes} - set(a.enrolled)
    assert len(held) == 1
    assert len(a.gallery) + len(a.probes) == 10


SPACE = ModelSpace("test", "1", 3)


def _t(*v: float) -> Template:
    return Template.from_raw(np.array(v), SPACE)


def test_search_assigns_faces_and_handles_unenrolled() -> None:
    gallery = StackedGallery.build({"x": [_t(1, 0, 0)], "y": [_t(0, 1, 0), _t(0.7, 0.7, 0)]})
    faces = [_t(0.1, 1, 0), _t(1, 0.05, 0)]  # the first face is y, the second x
    out = {s.identity: s for s in search_image(gallery, "p", ("x", "y"), faces)}
    assert out["x"].rank == 1 and out["y"].rank == 1
    assert out["y"].mate_score == pytest.approx(float(_t(0.1, 1, 0).vector[1]))
    (s,) = search_image(gallery, "q", ("z",), [_t(0, 0, 1)])
    assert not s.mated and s.top_score == pytest.approx(0.0, abs=1e-6)
    (miss,) = search_image(gallery, "r", ("x",), [])
    assert miss.mated and miss.rank == float("inf")
    (fte,) = search_image(gallery, "s", ("w",), [_t(1, 0, 0)], frozenset({"w"}))
    assert fte.mated and fte.rank == float("inf")
