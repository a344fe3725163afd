"""Galleries end to end on a fresh store per test, on SQLite and PostgreSQL: rules,
refusals, idempotence, deletion, retention purge, cross-match and cross-process freshness."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from callers import LOCAL
from gallery_helpers import CachingAnalyser, FakeClock, make_service
from PIL import Image

from frvs.core.errors import (
    ConflictError,
    InvalidInputError,
    ModelSpaceMismatchError,
    NotFoundError,
    ProhibitedAttributeError,
)
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec, OutcomeStatus

TRAIN = "identities/train"


def _items(data_dir: Path, subject: str, *names: str, folder: str | None = None) -> list[EnrolItem]:
    return [EnrolItem(subject, data_dir / TRAIN / (folder or subject) / n) for n in names]


def test_watch_list_needs_purpose_and_legal_basis() -> None:
    with pytest.raises(InvalidInputError, match="purpose"):
        GallerySpec("wl", GalleryKind.WATCH_LIST, purpose="find x")
    GallerySpec("wl", GalleryKind.WATCH_LIST, purpose="find x", legal_basis="court order 1")


@pytest.mark.parametrize("key", ["race", "Ethnicity", "skin_colour", "skinColor", "religion",
                                 "political_opinion", "health_status", "sexual-orientation",
                                 "emotion", "mood"])
def test_metadata_naming_a_special_category_is_refused(
    key: str, store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    service = make_service(store_url, tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g"))
    item = EnrolItem("obama", data_dir / TRAIN / "obama/obama.jpg", None, {key: "x"})
    (outcome,) = service.enrol(LOCAL, "g", [item]).outcomes
    assert outcome.status is OutcomeStatus.REFUSED
    assert outcome.error_code == ProhibitedAttributeError.code
    assert key in (outcome.reason or "")
    assert service.show("g")[0].subjects == 0


def test_folder_metadata_file_is_checked_too(tmp_path: Path, analyser: CachingAnalyser,
                                             data_dir: Path) -> None:
    tree = tmp_path / "tree" / "obama"
    tree.mkdir(parents=True)
    shutil.copy(data_dir / TRAIN / "obama/obama.jpg", tree / "a.jpg")
    (tree / "subject.json").write_text('{"name": "B. O.", "metadata": {"Religion": "x"}}')
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g"))
    report = service.enrol(LOCAL, "g", service.plan_folder(tmp_path / "tree"))
    assert [o.error_code for o in report.outcomes] == [ProhibitedAttributeError.code]


def test_harmless_metadata_is_kept(tmp_path: Path, analyser: CachingAnalyser,
                                   data_dir: Path) -> None:
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g"))
    item = EnrolItem("obama", data_dir / TRAIN / "obama/obama.jpg", "Barack",
                     {"badge": "17", "trace_id": "t"})
    service.enrol(LOCAL, "g", [item])
    (subject,) = service.show("g")[1]
    assert subject.metadata == {"badge": "17", "trace_id": "t"}
    assert subject.display_name == "Barack"


def test_refusals_name_the_reason_and_the_image(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    service = make_service(store_url, tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g"))
    items = [EnrolItem("x", blank), EnrolItem("x", not_image),
             EnrolItem("x", data_dir / "pairs/images/couple.jpg"),
             EnrolItem("x", tmp_path / "missing.jpg")]
    report = service.enrol(LOCAL, "g", items)
    codes = [o.error_code for o in report.outcomes]
    assert codes == ["no_face", "not_an_image", "multiple_faces", "file_not_found"]
    for item, outcome in zip(items, report.outcomes, strict=True):
        assert outcome.status is OutcomeStatus.REFUSED
        assert str(item.image) in (outcome.reason or "")
    assert "2 faces" in (report.outcomes[2].reason or "")
    assert service.show("g")[0].subjects == 0


def test_the_same_image_twice_is_one_template(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    service = make_service(store_url, tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g"))
    copy = tmp_path / "same.jpg"
    shutil.copy(data_dir / TRAIN / "obama/obama.jpg", copy)
    items = [*_items(data_dir, "obama", "obama.jpg"), EnrolItem("obama", copy)]
    first = service.enrol(LOCAL, "g", items)
    again = service.enrol(LOCAL, "g", items)
    assert [o.status for o in first.outcomes] == [OutcomeStatus.ENROLLED, OutcomeStatus.DUPLICATE]
    assert {o.status for o in again.outcomes} == {OutcomeStatus.DUPLICATE}
    assert service.show("g")[0].templates == 1


def test_subject_deletion_removes_templates_crops_and_index_entries(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    service = make_service(store_url, tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g", keep_crops=True))
    service.enrol(LOCAL, "g", _items(data_dir, "obama", "obama.jpg", "obama2.jpg")
                  + _items(data_dir, "biden", "biden.jpg"))
    crops = sorted((tmp_path / "media").rglob("*.jpg"))
    assert len(crops) == 3
    probe = data_dir / "identities/test/obama1.jpg"
    assert service.identify(LOCAL, "g", probe).faces[0].match == "obama"
    deleted = service.delete_subject(LOCAL, "g", "obama")
    assert (deleted.templates, deleted.crops) == (2, 2)
    assert len(list((tmp_path / "media").rglob("*.jpg"))) == 1
    face = service.identify(LOCAL, "g", probe).faces[0]
    assert face.match is None and [c.subject for c in face.candidates] == ["biden"]
    with pytest.raises(NotFoundError):
        service.delete_subject(LOCAL, "g", "obama")


def test_purge_deletes_only_subjects_past_retention(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    clock = FakeClock()
    service = make_service(store_url, tmp_path, analyser, clock=clock)
    service.create(LOCAL, GallerySpec("short", retention_days=30, keep_crops=True))
    service.create(LOCAL, GallerySpec("forever"))
    service.enrol(LOCAL, "short", _items(data_dir, "obama", "obama.jpg"))
    service.enrol(LOCAL, "forever", _items(data_dir, "obama", "obama.jpg"))
    clock.advance(20)
    service.enrol(LOCAL, "short", _items(data_dir, "biden", "biden.jpg"))
    assert service.purge(LOCAL) == []
    clock.advance(11)  # obama is 31 days old, biden 11
    purged = service.purge(LOCAL)
    assert [(d.gallery, d.subject, d.templates, d.crops) for d in purged] == [
        ("short", "obama", 1, 1)]
    assert [s.external_id for s in service.show("short")[1]] == ["biden"]
    assert [s.external_id for s in service.show("forever")[1]] == ["obama"]
    face = service.identify(LOCAL, "short", data_dir / "identities/test/obama1.jpg").faces[0]
    assert face.match is None


def test_crossmatch_finds_duplicates_and_pairs_across_galleries(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    service = make_service(store_url, tmp_path, analyser)
    service.create(LOCAL, GallerySpec("a"))
    service.create(LOCAL, GallerySpec("b"))
    service.enrol(LOCAL, "a", _items(data_dir, "obama", "obama.jpg")
                  + _items(data_dir, "barack", "obama2.jpg", folder="obama")
                  + _items(data_dir, "biden", "biden.jpg"))
    service.enrol(LOCAL, "b", _items(data_dir, "potus44", "obama2.jpg", folder="obama")
                  + _items(data_dir, "rose", "img1.jpg", folder="rose_leslie"))
    dupes = service.crossmatch(LOCAL, "a")
    assert [(p.subject_a, p.subject_b) for p in dupes.pairs] == [("barack", "obama")]
    across = service.crossmatch(LOCAL, "a", "b")
    assert {(p.subject_a, p.subject_b) for p in across.pairs} == {
        ("obama", "potus44"), ("barack", "potus44")}
    assert all(p.score >= across.threshold for p in across.pairs)
    everything = service.crossmatch(LOCAL, "a", "b", threshold=-1.0)
    assert len(everything.pairs) == 6


def test_a_second_process_sees_writes_and_deletions_at_once(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    writer = make_service(store_url, tmp_path, analyser)
    reader = make_service(store_url, tmp_path, analyser)  # its own indexes, same store
    writer.create(LOCAL, GallerySpec("g"))
    probe = data_dir / "identities/test/obama1.jpg"
    assert reader.identify(LOCAL, "g", probe).faces[0].match is None
    writer.enrol(LOCAL, "g", _items(data_dir, "obama", "obama.jpg"))
    assert reader.identify(LOCAL, "g", probe).faces[0].match == "obama"
    writer.delete_subject(LOCAL, "g", "obama")
    assert reader.identify(LOCAL, "g", probe).faces[0].candidates == ()
    writer.enrol(LOCAL, "g", _items(data_dir, "obama", "obama2.jpg"))
    assert reader.identify(LOCAL, "g", probe).faces[0].match == "obama"
    writer.delete(LOCAL, "g")
    with pytest.raises(NotFoundError):
        reader.identify(LOCAL, "g", probe)


def test_gallery_names_are_unique_and_deletion_is_total(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    service = make_service(store_url, tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g", keep_crops=True))
    with pytest.raises(ConflictError):
        service.create(LOCAL, GallerySpec("g"))
    service.enrol(LOCAL, "g", _items(data_dir, "obama", "obama.jpg"))
    assert service.delete(LOCAL, "g").templates == 1
    assert not list((tmp_path / "media").rglob("*.jpg"))
    assert service.all() == []


def test_reindex_to_the_same_pack_is_refused(tmp_path: Path, analyser: CachingAnalyser) -> None:
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g"))
    with pytest.raises(ConflictError):
        service.reindex(LOCAL, "g", "yunet_sface")


@pytest.mark.dlib
def test_reindex_with_dlib_switches_the_space(
    tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    pytest.importorskip("dlib", reason="the dlib extra is not installed")
    if "dlib" not in analyser.packs.names:
        pytest.skip("no dlib pack configured")
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g"))
    service.create(LOCAL, GallerySpec("other"))
    service.enrol(LOCAL, "g", _items(data_dir, "obama", "obama.jpg")
                  + _items(data_dir, "biden", "biden.jpg"))
    service.enrol(LOCAL, "other", _items(data_dir, "obama", "obama2.jpg"))
    report = service.reindex(LOCAL, "g", "dlib")
    assert report.switched and len(report.outcomes) == 2
    overview = service.show("g")[0]
    assert (overview.gallery.pack, overview.templates) == ("dlib", 2)
    result = service.identify(LOCAL, "g", data_dir / "identities/test/obama1.jpg")
    assert result.pack == "dlib" and result.faces[0].match == "obama"
    with pytest.raises(ModelSpaceMismatchError):
        service.crossmatch(LOCAL, "g", "other")


def test_purge_sweeps_crops_orphaned_by_a_crash(tmp_path: Path, analyser: CachingAnalyser,
                                                data_dir: Path) -> None:
    service = make_service(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path, analyser)
    service.create(LOCAL, GallerySpec("g", keep_crops=True))
    service.enrol(LOCAL, "g", _items(data_dir, "obama", "obama.jpg"))
    orphan = tmp_path / "media" / "1" / "orphan.jpg"
    orphan.write_bytes(b"face")
    fresh = tmp_path / "media" / "1" / "in-flight.jpg"
    fresh.write_bytes(b"face")
    os.utime(orphan, (0, 0))  # written long ago: no enrolment is about to commit it
    service.purge(LOCAL)
    assert not orphan.exists() and fresh.exists()
    assert len(list((tmp_path / "media").rglob("*.jpg"))) == 2  # obama's crop stays
