"""Helpers of the galleries tests (a module with a unique name, importable by tests)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from callers import LOCAL
from sqlalchemy import insert, select

from frvs.config.settings import AuditSettings, QualitySettings
from frvs.core.times import Clock
from frvs.faces.models import EmbeddedFace
from frvs.galleries.enrolment import EnrolContext
from frvs.galleries.models import GallerySpec
from frvs.galleries.ports import FaceAnalyser, PackCatalog
from frvs.galleries.service import GalleryService
from frvs.imaging.decode import BGRImage, ImageLimits
from frvs.models.registry import PackRegistry, default_pack_configs
from frvs.oversight.audit import AuditTrail
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.index.factory import ExactIndexSettings, IndexSettings
from frvs.storage.schema import SubjectRow, TemplateRow
from frvs.storage.store import Store

IDENTITIES_WANTED = {
    "alex_lacamoire1.jpg": {"alex_lacamoire"},
    "johnsnow_test1.jpg": {"kit_harington"},
    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
    "obama1.jpg": {"obama"},
    "obama_and_biden.jpg": {"obama", "biden"},
}


class CachingAnalyser:
    """The real engine, but each distinct image is analysed once per pack per session."""

    def __init__(self, engine: FaceAnalyser) -> None:
        self._engine = engine
        self._cache: dict[tuple[str, str | None], list[EmbeddedFace]] = {}
        self.calls = 0

    @property
    def packs(self) -> PackCatalog:
        return self._engine.packs

    def analyse(self, image: BGRImage, pack: str | None = None) -> list[EmbeddedFace]:
        key = (image_key(image), pack)
        if key not in self._cache:
            self.calls += 1
            self._cache[key] = self._engine.analyse(image, pack)
        return self._cache[key]

    def precomputed(self) -> PrecomputedAnalyser:
        return PrecomputedAnalyser(dict(self._cache))


class PrecomputedAnalyser:
    """Answers from a ``CachingAnalyser``'s cache and never runs a model: handed to
    spawned worker processes (pickled), so they exercise the store, not the CPU."""

    def __init__(self, cache: dict[tuple[str, str | None], list[EmbeddedFace]]) -> None:
        self._cache = cache
        self._packs: PackRegistry | None = None  # built in the worker: it holds a lock

    def __getstate__(self) -> dict[str, object]:
        return {"_cache": self._cache, "_packs": None}

    @property
    def packs(self) -> PackCatalog:
        if self._packs is None:
            self._packs = PackRegistry(default_pack_configs(), "yunet_sface")
        return self._packs

    def analyse(self, image: BGRImage, pack: str | None = None) -> list[EmbeddedFace]:
        return self._cache[(image_key(image), pack)]


def image_key(image: BGRImage) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest() + str(image.shape)


@dataclass
class FakeClock:
    """A clock the test moves by hand (retention without sleeping)."""

    now: datetime = field(default_factory=lambda: datetime(2030, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += timedelta(days=days)


def make_service(
    url: str,
    data_dir: Path,
    analyser: FaceAnalyser,
    clock: Clock | None = None,
    index: IndexSettings | None = None,
) -> GalleryService:
    """A gallery service over the store at ``url``, built like ``build_application`` does
    (with the audit trail as the store's journal)."""
    clock = clock or (lambda: datetime.now(UTC))
    store = Store(url, data_dir / "media").open()
    store.attach_journal(AuditTrail(store, clock, AuditSettings().retention_days))
    catalog = IndexCatalog(store, index or ExactIndexSettings(), data_dir)
    context = EnrolContext(analyser, QualitySettings().minimums(), ImageLimits(), clock)
    return GalleryService(store, catalog, context)


def enrol_train(service: GalleryService, train: Path, name: str = "people") -> None:
    service.create(LOCAL, GallerySpec(name))
    report = service.enrol(LOCAL, name, service.plan_folder(train))
    refused = [o for o in report.outcomes if o.reason]
    assert not refused, refused
    assert len(report.outcomes) == 9




def add_distractors(service: GalleryService, gallery: str, count: int, seed: int = 0) -> None:
    """``count`` synthetic subjects of one random unit template each, written straight to
    the store (no photographs): enough templates for an index to build its codes."""
    g = service.get(gallery)
    space = service._ctx.analyser.packs.info(g.pack).space
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, space.dimension)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = datetime.now(UTC)
    with service._store.unit(write=True) as uow:
        s = uow.session
        s.execute(insert(SubjectRow), [
            {"gallery_id": g.id, "external_id": f"distractor-{seed}-{i}", "display_name": None,
             "attributes": {}, "created_at": now, "expires_at": None} for i in range(count)])
        ids = {name: sid for name, sid in s.execute(
            select(SubjectRow.external_id, SubjectRow.id).where(SubjectRow.gallery_id == g.id))}
        added = s.scalars(insert(TemplateRow).returning(TemplateRow.id), [
            {"subject_id": ids[f"distractor-{seed}-{i}"], "gallery_id": g.id,
             "space_key": space.key, "pack": space.pack, "pack_version": space.version,
             "dimension": space.dimension, "metric": space.metric.value,
             "vector": vectors[i].tobytes(), "quality": 0.9, "image_sha256": f"{seed}-{i}",
             "source": None, "box": [0, 0, 1, 1], "crop_path": None, "created_at": now}
            for i in range(count)]).all()
        uow.templates.record_added(g.id, space.key, list(added))  # for the indexes
        uow.galleries.bump_revision(g.id)
