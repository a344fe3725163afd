"""Acceptance: enrol identities/train from the folder tree, then every enrolled person in
every identities/test photo is identified, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from callers import LOCAL
from gallery_helpers import (
    IDENTITIES_WANTED,
    CachingAnalyser,
    add_distractors,
    enrol_train,
    make_service,
)
from postgres import fresh_database

from frvs.config.settings import Settings
from frvs.galleries.models import GallerySpec
from frvs.galleries.service import GalleryService


def _check_identities(service: GalleryService, test_dir: Path) -> None:
    for image, people in IDENTITIES_WANTED.items():
        result = service.identify(LOCAL, "people", test_dir / image, top=3)
        matches = [f.match for f in result.faces if f.match is not None]
        assert set(matches) == people, (image, [f.as_dict() for f in result.faces])
        assert len(matches) == len(people), f"{image}: someone matched twice: {matches}"
        for face in result.faces:
            scores = [c.score for c in face.candidates]
            assert scores == sorted(scores, reverse=True)
            assert len({c.subject for c in face.candidates}) == len(face.candidates)


def test_every_enrolled_person_is_identified_sqlite(people: GalleryService, data_dir: Path) -> None:
    _check_identities(people, data_dir / "identities" / "test")


@pytest.mark.postgres
def test_every_enrolled_person_is_identified_postgres(
    tmp_path: Path, analyser: CachingAnalyser, data_dir: Path,
) -> None:
    with fresh_database("frvs_test") as url:
        service = make_service(url, tmp_path, analyser)
        enrol_train(service, data_dir / "identities" / "train")
        _check_identities(service, data_dir / "identities" / "test")
        service._store.close()


@pytest.mark.parametrize("kind", ["faiss_pq", "faiss"])
def test_every_enrolled_person_is_identified_with_a_faiss_index(
    kind: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    pytest.importorskip("faiss", reason="faiss not installed: pip install 'frvs[faiss]'")
    # With 300 distractors and codes from 256 templates on, faiss_pq scans its codes and
    # re-ranks, as it does with millions: the real faces must come through that path.
    options = {"train_size": 256} if kind == "faiss_pq" else {}
    index = Settings(index={"type": kind, "options": options}).index
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser, index=index)
    enrol_train(service, data_dir / "identities" / "train")
    add_distractors(service, "people", 300)
    _check_identities(service, data_dir / "identities" / "test")
    if kind == "faiss_pq":
        gallery = service.get("people")
        space = analyser.packs.info(gallery.pack).space
        assert service._catalog.fresh(gallery.id, space).encoded  # type: ignore[attr-defined]
    service._store.close()


def test_obama_and_biden_has_both_and_an_unknown_face(people: GalleryService,
                                                      data_dir: Path) -> None:
    probe = data_dir / "identities/test/obama_and_biden.jpg"
    result = people.identify(LOCAL, "people", probe, top=5)
    assert len(result.faces) == 3
    assert [f.match for f in result.faces].count(None) == 1
    assert result.threshold == pytest.approx(0.363)
    doc = result.as_dict()
    face = doc["faces"][0]  # type: ignore[index]
    assert set(face) >= {"box", "candidates", "match"}


def test_top_k_is_per_subject_and_bounded(people: GalleryService, data_dir: Path) -> None:
    result = people.identify(LOCAL, "people", data_dir / "identities/test/obama1.jpg", top=10)
    (face,) = result.faces
    assert len(face.candidates) == 5  # five subjects, each once, though nine templates
    assert face.candidates[0].subject == "obama"


def test_an_empty_gallery_answers_no_match(tmp_path: Path, analyser: CachingAnalyser,
                                           data_dir: Path) -> None:
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser)
    service.create(LOCAL, GallerySpec("empty"))
    result = service.identify(LOCAL, "empty", data_dir / "identities/test/obama1.jpg")
    assert [f.match for f in result.faces] == [None]
    assert result.faces[0].candidates == ()
