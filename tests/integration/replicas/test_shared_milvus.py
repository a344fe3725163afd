"""Replicas sharing one Milvus server collection per gallery (``index.shared``): the first
replica loads it from the store, the next one uses it as it is (no rebuild), and each
change committed anywhere is applied once, by whichever replica searches first.

Two stores and two catalogs over one database stand for two replicas; the Milvus server
is the embedded one (PyPI ``milvus``), slow to start: marked slow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select

from frvs.config.settings import Settings
from frvs.core.templates import Metric, ModelSpace
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.schema import GalleryRow, SharedIndexRow, SubjectRow, TemplateRow
from frvs.storage.store import Store

pytestmark = pytest.mark.slow

SPACE = ModelSpace("test", "1", 8, Metric.COSINE)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, SPACE.dimension)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _add(store: Store, gallery_id: int, vectors: np.ndarray) -> list[int]:
    """Templates written as an enrolment would, their additions logged."""
    now = datetime.now(UTC)
    with store.unit(write=True) as uow:
        subjects = uow.session.scalars(insert(SubjectRow).returning(SubjectRow.id), [
            {"gallery_id": gallery_id, "external_id": f"s{now.timestamp()}-{i}",
             "display_name": None, "attributes": {}, "created_at": now, "expires_at": None}
            for i in range(len(vectors))]).all()
        ids = list(uow.session.scalars(insert(TemplateRow).returning(TemplateRow.id), [
            {"subject_id": sid, "gallery_id": gallery_id, "space_key": SPACE.key,
             "pack": SPACE.pack, "pack_version": SPACE.version, "dimension": SPACE.dimension,
             "metric": SPACE.metric.value, "vector": v.astype("<f4").tobytes(),
             "quality": 1.0, "image_sha256": f"{sid}", "source": None, "box": [0, 0, 1, 1],
             "crop_path": None, "created_at": now} for sid, v in zip(subjects, vectors,
                                                                     strict=True)]).all())
        uow.templates.record_added(gallery_id, SPACE.key, ids)
    return ids


def test_replicas_share_one_collection_kept_in_step_by_the_change_log(
        tmp_path: Path, milvus_server: str) -> None:
    url = f"sqlite:///{tmp_path / 'frvs.db'}"
    settings = Settings(index={"type": "milvus", "path": milvus_server, "shared": True})
    a, b = (Store(url, tmp_path / "media").open() for _ in range(2))
    with a.unit(write=True) as uow:
        gallery = GalleryRow(name="watch", kind="general", pack=SPACE.pack, revision=0,
                             keep_crops=False, created_at=datetime.now(UTC))
        uow.session.add(gallery)
        uow.session.flush()
        gid = gallery.id
    rng = np.random.default_rng(5)
    first = _unit(rng, 20)
    ids = _add(a, gid, first)
    replica_a = IndexCatalog(a, settings.index, tmp_path / "a")
    replica_b = IndexCatalog(b, settings.index, tmp_path / "b")

    index_a = replica_a.fresh(gid, SPACE)  # the first replica loads the collection
    assert index_a.count() == 20
    stray = _unit(rng, 1)
    index_a.add([10**9], stray)  # a marker the store does not know: kept unless rebuilt
    index_b = replica_b.fresh(gid, SPACE)  # the second uses it as it is
    assert index_b.count() == 21
    assert int(index_b.search(stray, 1).ids[0, 0]) == 10**9
    index_a.remove([10**9])

    # One enrolment and one deletion, committed by "another replica".
    (new,) = _add(b, gid, fresh := _unit(rng, 1))
    with b.unit(write=True) as uow:
        uow.templates.delete([ids[0]])
    found = replica_a.fresh(gid, SPACE).search(np.vstack([fresh, first[:1]]), 1).ids
    assert found[0, 0] == new and found[1, 0] != ids[0]
    with a.unit() as uow:
        (position,) = uow.session.scalars(select(SharedIndexRow.position)).all()
        assert position == uow.templates.change_head(gid)
    # B finds the log applied already: it moves to the recorded position, changes nothing.
    assert replica_b.fresh(gid, SPACE).count() == 20
    for store in (a, b):
        store.close()
