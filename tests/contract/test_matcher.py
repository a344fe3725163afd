"""The ``Matcher`` port (``frvs.video.ports``): the same behaviour asserted on both
implementations, the production ``GalleryMatcher`` (galleries in the store, their
vector indexes) and the in-memory ``TemplateMatcher`` (tests, benchmarks, one-off runs).

Both hold the same real SFace templates of the photos in ``identities/train``: the
gallery matcher through real enrolment, the template matcher the templates read back
from that store. Probes are real photos of ``identities/test`` and of ``pairs/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from callers import LOCAL

from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.errors import ModelSpaceMismatchError, NotFoundError
from frvs.core.templates import ModelSpace, Template
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec, OutcomeStatus
from frvs.galleries.search import decision_threshold
from frvs.imaging.decode import read_image
from frvs.pipeline.gallery_matcher import GalleryMatcher
from frvs.video.memory_matcher import TemplateMatcher
from frvs.video.models import GalleryCandidate
from frvs.video.ports import Matcher

# Two galleries with different kinds and thresholds, and one with nobody in it.
WATCH = ("watch", GalleryKind.WATCH_LIST, 0.45, ("obama", "biden", "kit_harington"))
STAFF = ("staff", GalleryKind.ATTENDANCE, None, ("alex_lacamoire", "rose_leslie", "obama"))
EMPTY = ("empty", GalleryKind.GENERAL, None, ())


@dataclass(frozen=True)
class Enrolled:
    """What both matchers hold: per gallery its kind, decision threshold and each
    subject's templates; the pack they share."""

    pack: str
    kinds: dict[str, str]
    thresholds: dict[str, float]
    templates: dict[str, dict[str, list[Template]]]


def _enrol_store(app: Application, train: Path) -> Enrolled:
    thresholds: dict[str, float] = {}
    kinds: dict[str, str] = {}
    for name, kind, threshold, people in (WATCH, STAFF, EMPTY):
        extra = {"purpose": "test", "legal_basis": "test"} if kind is GalleryKind.WATCH_LIST \
            else {}
        app.galleries.create(LOCAL, GallerySpec(name, kind, threshold=threshold, **extra))
        items = [EnrolItem(person, photo) for person in people
                 for photo in sorted((train / person).iterdir())]
        if items:
            report = app.galleries.enrol(LOCAL, name, items)
            assert report.count(OutcomeStatus.ENROLLED) == len(items), report.as_dict()
        kinds[name] = kind.value
    templates: dict[str, dict[str, list[Template]]] = {name: {} for name in kinds}
    with app.store.unit() as uow:
        for name in kinds:
            gallery = uow.galleries.get(name)
            info = app.engine.packs.info(gallery.pack)
            thresholds[name] = decision_threshold(gallery, info)
            owners = {subject.id: subject.external_id
                      for subject in uow.subjects.in_gallery(gallery.id)}
            for stored in uow.templates.in_space(gallery.id):
                templates[name].setdefault(owners[stored.subject_id], []).append(
                    stored.template)
        pack = uow.galleries.get(WATCH[0]).pack
    return Enrolled(pack, kinds, thresholds, templates)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path
          ) -> Iterator[tuple[Application, Enrolled]]:
    """One application whose store holds the three galleries (enrolled once a module)."""
    app = build_application(load_settings(data_dir=tmp_path_factory.mktemp("matcher")))
    app.store.open()
    enrolled = _enrol_store(app, data_dir / "identities" / "train")
    yield app, enrolled
    app.stop()


def _template_matcher(app: Application, enrolled: Enrolled) -> Matcher:
    space = app.engine.packs.info(enrolled.pack).space
    matcher = TemplateMatcher()
    for name, kind in enrolled.kinds.items():
        matcher.add_gallery(name, kind, enrolled.thresholds[name], enrolled.pack, space)
        for subject, templates in enrolled.templates[name].items():
            for template in templates:
                matcher.enrol(name, subject, template)
    return matcher


@pytest.fixture(params=["GalleryMatcher", "TemplateMatcher"])
def matcher(request: pytest.FixtureRequest, world: tuple[Application, Enrolled]) -> Matcher:
    app, enrolled = world
    if request.param == "GalleryMatcher":
        built: Matcher = app.video.matcher
        assert isinstance(built, GalleryMatcher)  # the production wiring, not a copy
        return built
    return _template_matcher(app, enrolled)


def _probe(app: Application, photo: Path) -> Template:
    """The template of the largest face of ``photo``."""
    return app.engine.analyse(read_image(photo))[0].template


def _expected(enrolled: Enrolled, gallery: str, probe: Template) -> dict[str, float]:
    """Each subject's score: the best of its templates."""
    return {subject: max(probe.similarity(t) for t in templates)
            for subject, templates in enrolled.templates[gallery].items()}


def test_an_enrolled_person_ranks_first_above_the_threshold(
        matcher: Matcher, world: tuple[Application, Enrolled], data_dir: Path) -> None:
    app, _ = world
    probe = _probe(app, data_dir / "identities" / "test" / "obama1.jpg")
    (candidates,) = matcher.match([probe], ["watch"])
    assert candidates[0].subject == "obama"
    assert candidates[0].score >= candidates[0].threshold
    assert all(c.score < c.threshold for c in candidates[1:]), candidates


def test_a_stranger_stays_below_every_threshold(
        matcher: Matcher, world: tuple[Application, Enrolled], data_dir: Path) -> None:
    app, _ = world
    # Angelina Jolie (pairs/img1.jpg) is in neither gallery.
    probe = _probe(app, data_dir / "pairs" / "images" / "img1.jpg")
    (candidates,) = matcher.match([probe], ["watch", "staff"])
    assert candidates
    assert all(c.score < c.threshold for c in candidates), candidates


def test_a_subject_scores_its_best_template_and_appears_once(
        matcher: Matcher, world: tuple[Application, Enrolled], data_dir: Path) -> None:
    app, enrolled = world
    probe = _probe(app, data_dir / "identities" / "test" / "obama_and_biden.jpg")
    (candidates,) = matcher.match([probe], ["watch"])
    expected = _expected(enrolled, "watch", probe)
    assert len(enrolled.templates["watch"]["obama"]) == 2  # two photos: the best counts
    assert sorted(c.subject for c in candidates) == sorted(expected)
    for c in candidates:
        assert c.score == pytest.approx(expected[c.subject], abs=1e-5)


def test_candidates_are_ranked_and_cut_at_top(
        matcher: Matcher, world: tuple[Application, Enrolled], data_dir: Path) -> None:
    app, enrolled = world
    probe = _probe(app, data_dir / "identities" / "test" / "kit_with_rose.jpg")
    (everyone,) = matcher.match([probe], ["staff"], top=5)
    (two,) = matcher.match([probe], ["staff"], top=2)
    scores = [c.score for c in everyone]
    assert scores == sorted(scores, reverse=True)
    assert len(everyone) == len(enrolled.templates["staff"]) == 3
    assert [c.subject for c in two] == [c.subject for c in everyone[:2]]


def test_each_gallery_answers_with_its_name_kind_and_threshold(
        matcher: Matcher, world: tuple[Application, Enrolled], data_dir: Path) -> None:
    app, enrolled = world
    probe = _probe(app, data_dir / "identities" / "test" / "obama1.jpg")
    (candidates,) = matcher.match([probe], ["watch", "staff", "empty"])
    by_gallery: dict[str, list[GalleryCandidate]] = {}
    for c in candidates:
        by_gallery.setdefault(c.gallery, []).append(c)
    assert set(by_gallery) == {"watch", "staff"}  # nobody in 'empty', no candidate from it
    for name, found in by_gallery.items():
        assert {c.gallery_kind for c in found} == {enrolled.kinds[name]}
        assert [c.threshold for c in found] == pytest.approx(
            [enrolled.thresholds[name]] * len(found))
    assert enrolled.thresholds["watch"] == 0.45  # the gallery's own, not the pack's
    # Obama is in both: the same template scores him alike in each.
    obama = {c.gallery: c.score for c in candidates if c.subject == "obama"}
    assert obama["watch"] == pytest.approx(obama["staff"], abs=1e-5)


def test_one_answer_per_template_in_order(
        matcher: Matcher, world: tuple[Application, Enrolled], data_dir: Path) -> None:
    app, _ = world
    test = data_dir / "identities" / "test"
    probes = [_probe(app, test / "alex_lacamoire1.jpg"), _probe(app, test / "obama1.jpg")]
    answers = matcher.match(probes, ["staff"])
    assert [a[0].subject for a in answers] == ["alex_lacamoire", "obama"]
    assert matcher.match([], ["staff"]) == []


def test_pack_for_names_the_shared_pack_and_refuses_unknown_or_no_gallery(
        matcher: Matcher, world: tuple[Application, Enrolled]) -> None:
    _, enrolled = world
    assert matcher.pack_for(["watch", "staff", "empty"]) == enrolled.pack
    with pytest.raises(NotFoundError):
        matcher.pack_for(["watch", "nowhere"])
    with pytest.raises(NotFoundError):
        matcher.pack_for([])


def test_unknown_gallery_and_foreign_template_are_refused(
        matcher: Matcher, world: tuple[Application, Enrolled], data_dir: Path) -> None:
    app, _ = world
    probe = _probe(app, data_dir / "identities" / "test" / "obama1.jpg")
    with pytest.raises(NotFoundError):
        matcher.match([probe], ["nowhere"])
    other = ModelSpace("other-pack", "1", probe.space.dimension)
    with pytest.raises(ModelSpaceMismatchError):
        matcher.match([Template(probe.vector.copy(), other)], ["watch"])
