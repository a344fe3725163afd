"""Two services over one store, as two processes: each catches up with what the other
wrote by difference (removing and loading ids), never by rebuilding its index."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from callers import LOCAL
from gallery_helpers import CachingAnalyser, add_distractors, enrol_train, make_service

from frvs.config.settings import Settings
from frvs.galleries.models import GallerySpec
from frvs.galleries.service import GalleryService
from frvs.storage.index.base import VectorIndex


def _index_of(service: GalleryService, gallery: str) -> VectorIndex:
    g = service.get(gallery)
    space = service._ctx.analyser.packs.info(g.pack).space
    return service._catalog.fresh(g.id, space)


@pytest.mark.parametrize("kind", ["exact", "faiss_pq"])
def test_deletions_elsewhere_are_caught_up_in_place(
    kind: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    if kind != "exact":
        pytest.importorskip("faiss", reason="faiss not installed: pip install 'frvs[faiss]'")
    url = f"sqlite:///{tmp_path / 'frvs.db'}"
    # faiss_pq builds codes from 256 templates on: with 300 distractors it scans them.
    chosen: dict[str, object] = {"type": kind}
    if kind == "faiss_pq":
        chosen["options"] = {"train_size": 256}
    index = Settings(index=chosen).index
    writer = make_service(url, tmp_path, analyser, index=index)
    reader = make_service(url, tmp_path, analyser, index=index)
    enrol_train(writer, data_dir / "identities" / "train")
    add_distractors(writer, "people", 300)
    both = data_dir / "identities" / "test" / "obama_and_biden.jpg"
    matches = {f.match for f in reader.identify(LOCAL, "people", both).faces}
    assert {"obama", "biden"} <= matches
    built = _index_of(reader, "people")

    # Two templates, deleted by "another process".
    writer.delete_subject(LOCAL, "people", "biden")
    faces = reader.identify(LOCAL, "people", both).faces
    assert "biden" not in {f.match for f in faces} | {c.subject for f in faces
                                                       for c in f.candidates}
    assert "obama" in {f.match for f in faces}
    assert _index_of(reader, "people") is built  # the same index, caught up in place
    assert built.count() == 307

    # An id below the highest one loaded that the index lacks (another PostgreSQL session
    # committing out of order looks like this): loaded by difference on the next change.
    if kind == "faiss_pq":
        assert built.encoded  # type: ignore[attr-defined]
    lowest = int(min(built.ids()))
    built.remove([lowest])
    writer.delete_subject(LOCAL, "people", "rose_leslie")  # two more templates
    assert _index_of(reader, "people") is built
    assert built.count() == 305
    assert lowest in built.ids()
    writer._store.close()
    reader._store.close()


def test_one_gallery_catching_up_does_not_stall_searches_of_another(
    tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'frvs.db'}"
    writer = make_service(url, tmp_path, analyser)
    reader = make_service(url, tmp_path, analyser)
    enrol_train(writer, data_dir / "identities" / "train")  # gallery "people"
    writer.create(LOCAL, GallerySpec("visitors"))
    add_distractors(writer, "visitors", 5)
    people, visitors = _index_of(reader, "people"), _index_of(reader, "visitors")

    add_distractors(writer, "people", 10)  # reader's "people" index is now behind
    entered, release = threading.Event(), threading.Event()
    original = people.add

    def slow_add(ids: object, vectors: object) -> None:  # a catch-up that takes long
        entered.set()
        release.wait(30)
        original(ids, vectors)  # type: ignore[arg-type]

    people.add = slow_add  # type: ignore[method-assign]
    catching_up = threading.Thread(target=_index_of, args=(reader, "people"))
    catching_up.start()
    assert entered.wait(10)
    other = threading.Thread(target=_index_of, args=(reader, "visitors"))
    other.start()
    other.join(10)
    stalled = other.is_alive()
    release.set()
    catching_up.join(10)
    assert not stalled, "a search of 'visitors' waited for 'people' to catch up"
    assert _index_of(reader, "visitors") is visitors
    assert _index_of(reader, "people").count() == 19
    writer._store.close()
    reader._store.close()
