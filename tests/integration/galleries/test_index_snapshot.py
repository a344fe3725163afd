"""A restart loads the persisted index snapshot and applies only the changes made since
(additions, deletions and erasures made while it was down); a snapshot that is corrupt,
truncated, or written for another gallery or configuration is refused with a log line
and the index is rebuilt from the store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from callers import LOCAL
from gallery_helpers import CachingAnalyser, add_distractors, enrol_train, make_service
from sqlalchemy import select

from frvs.config.settings import Settings
from frvs.galleries.service import GalleryService
from frvs.storage.index.base import VectorIndex
from frvs.storage.index.snapshot import MANIFEST
from frvs.storage.schema import SubjectRow, TemplateRow

pytest.importorskip("faiss", reason="faiss not installed: pip install 'frvs[faiss]'")

_LOADED = "loaded index snapshot"
_REFUSED = "not used, rebuilding from the store"


def _settings(**options: object) -> Settings:
    # Codes from 256 templates on, and a snapshot from 300: the test gallery has both.
    return Settings(index={"type": "faiss_pq",
                           "options": {"train_size": 256, "snapshot_min_size": 300} | options})


def _index_of(service: GalleryService, gallery: str = "people") -> VectorIndex:
    g = service.get(gallery)
    space = service._ctx.analyser.packs.info(g.pack).space
    return service._catalog.fresh(g.id, space)


def _matches(service: GalleryService, photo: Path) -> set[str]:
    faces = service.identify(LOCAL, "people", photo).faces
    return {f.match for f in faces if f.match} | {c.subject for f in faces
                                                  for c in f.candidates}


@pytest.fixture
def gallery(tmp_path: Path, analyser: CachingAnalyser, data_dir: Path) -> tuple[str, Path]:
    """A gallery of 9 real and 320 synthetic templates, indexed once: its snapshot written."""
    url = f"sqlite:///{tmp_path / 'frvs.db'}"
    service = make_service(url, tmp_path, analyser, index=_settings().index)
    enrol_train(service, data_dir / "identities" / "train")
    add_distractors(service, "people", 320)
    assert _index_of(service).count() == 329
    service._store.close()
    directories = list((tmp_path / "index" / "snapshots").iterdir())
    assert len(directories) == 1 and (directories[0] / MANIFEST).exists()
    return url, directories[0]


def test_restart_loads_the_snapshot_and_catches_up_additions_and_erasures(
    gallery: tuple[str, Path], tmp_path: Path, analyser: CachingAnalyser, data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, _ = gallery
    both = data_dir / "identities" / "test" / "obama_and_biden.jpg"
    # While the searching process is down, another erases biden and enrols 40 more.
    other = make_service(url, tmp_path, analyser, index=_settings(snapshot_min_size=0).index)
    with other._store.unit() as uow:
        erased = set(uow.session.scalars(select(TemplateRow.id).join(SubjectRow).where(
            SubjectRow.external_id == "biden")))
    assert len(erased) == 2
    other.delete_subject(LOCAL, "people", "biden", action="subject.erase")
    add_distractors(other, "people", 40, seed=1)
    other._store.close()

    caplog.set_level(logging.INFO, logger="frvs.storage.index")
    restarted = make_service(url, tmp_path, analyser, index=_settings().index)
    matches = _matches(restarted, both)
    assert _LOADED in caplog.text and _REFUSED not in caplog.text
    assert "obama" in matches
    assert "biden" not in matches  # erased while down: never back from the snapshot
    index = _index_of(restarted)
    assert index.count() == 329 - 2 + 40
    assert erased.isdisjoint(index.ids().tolist())
    assert index.encoded  # type: ignore[attr-defined]
    restarted._store.close()


@pytest.mark.parametrize("damage", ["flipped", "truncated", "manifest", "other_config"])
def test_an_unusable_snapshot_falls_back_to_the_store(
    damage: str, gallery: tuple[str, Path], tmp_path: Path, *, analyser: CachingAnalyser,
    data_dir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    url, directory = gallery
    settings = _settings()
    if damage == "flipped":  # one bit of one float vector
        rows = directory / "rows.npy"
        data = bytearray(rows.read_bytes())
        data[len(data) // 2] ^= 0x10
        rows.write_bytes(bytes(data))
        reason = "digest"
    elif damage == "truncated":
        codes = directory / "codes0.faiss"
        codes.write_bytes(codes.read_bytes()[:-100])
        reason = "truncated"
    elif damage == "manifest":
        (directory / MANIFEST).write_text("{not json")
        reason = "unreadable manifest"
    else:
        settings = _settings(shards=1)  # codes laid out for two shards, now one
        reason = "index settings"
    caplog.set_level(logging.INFO, logger="frvs.storage.index")
    restarted = make_service(url, tmp_path, analyser, index=settings.index)
    both = data_dir / "identities" / "test" / "obama_and_biden.jpg"
    assert {"obama", "biden"} <= _matches(restarted, both)
    assert _REFUSED in caplog.text and reason in caplog.text
    assert _LOADED not in caplog.text
    assert _index_of(restarted).count() == 329
    # The rebuilt index wrote a good snapshot in its place.
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["count"] == 329
    restarted._store.close()


def test_a_deleted_gallery_takes_its_snapshot_with_it(
    gallery: tuple[str, Path], tmp_path: Path, analyser: CachingAnalyser,
) -> None:
    url, directory = gallery
    service = make_service(url, tmp_path, analyser, index=_settings().index)
    service.delete(LOCAL, "people")
    assert not directory.exists()
    service._store.close()


def test_a_clean_stop_snapshots_what_changed_since(
    gallery: tuple[str, Path], tmp_path: Path, analyser: CachingAnalyser,
) -> None:
    url, directory = gallery
    written = json.loads((directory / MANIFEST).read_text())
    service = make_service(url, tmp_path, analyser, index=_settings().index)
    add_distractors(service, "people", 7, seed=2)
    assert _index_of(service).count() == 329 + 7  # loaded from the snapshot, caught up
    service.save_snapshots()  # what Application.stop does before closing the store
    saved = json.loads((directory / MANIFEST).read_text())
    assert saved["count"] == 329 + 7 and saved["position"] > written["position"]
    service._store.close()


def test_a_snapshot_from_another_timeline_of_a_restored_backup_is_refused(
    gallery: tuple[str, Path], tmp_path: Path, analyser: CachingAnalyser, data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Attack: the database is restored from a backup and used again; SQLite (like a
    restored sequence) hands out the same change and template ids a second time, so the
    change at the snapshot's position can name the same template id in both timelines."""
    url, directory = gallery
    database = tmp_path / "frvs.db"
    backup = database.read_bytes()
    # Timeline 1: biden erased, one template (id 330) enrolled, snapshot saved at the stop.
    first = make_service(url, tmp_path, analyser, index=_settings().index)
    first.delete_subject(LOCAL, "people", "biden", action="subject.erase")
    add_distractors(first, "people", 1, seed=5)
    assert _index_of(first).count() == 328
    first.save_snapshots()
    first._store.close()
    assert json.loads((directory / MANIFEST).read_text())["count"] == 328
    # The backup comes back; timeline 2: obama erased, another template enrolled as id 330.
    database.write_bytes(backup)
    second = make_service(url, tmp_path, analyser, index=_settings(snapshot_min_size=0).index)
    second.delete_subject(LOCAL, "people", "obama", action="subject.erase")
    add_distractors(second, "people", 1, seed=6)
    second._store.close()

    caplog.set_level(logging.INFO, logger="frvs.storage.index")
    restarted = make_service(url, tmp_path, analyser, index=_settings().index)
    both = data_dir / "identities" / "test" / "obama_and_biden.jpg"
    matches = _matches(restarted, both)
    assert _REFUSED in caplog.text and "a restored backup" in caplog.text
    assert "biden" in matches and "obama" not in matches
    with restarted._store.unit() as uow:
        stored = set(uow.session.scalars(select(TemplateRow.id)))
    assert set(_index_of(restarted).ids().tolist()) == stored
    restarted._store.close()
