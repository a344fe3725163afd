"""Composition root: build every service from the configuration, start and stop them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from frvs.config.settings import Settings
from frvs.faces.service import EngineOptions, FaceEngine
from frvs.galleries.enrolment import EnrolContext
from frvs.galleries.ports import utc_now
from frvs.galleries.service import GalleryService
from frvs.imaging.decode import ImageLimits
from frvs.models.registry import PackRegistry
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store

logger = logging.getLogger(__name__)


@dataclass
class Application:
    """Everything one FRVS process runs, built from one ``Settings``."""

    settings: Settings
    packs: PackRegistry
    engine: FaceEngine
    image_limits: ImageLimits
    store: Store
    galleries: GalleryService

    def start(self) -> None:
        """Open the store (migrating it) and rebuild the vector indexes from it."""
        logger.info("FRVS starting with data dir %s", self.settings.data_dir)
        self.store.open()
        self.galleries.warm()

    def stop(self) -> None:
        """Stop background work in reverse order, then close the store."""
        self.store.close()
        logger.info("FRVS stopped")


def build_application(settings: Settings) -> Application:
    """Wire the services; model packs load lazily on first use."""
    packs = PackRegistry(settings.packs, settings.default_pack)
    engine = FaceEngine(packs, EngineOptions(max_side=settings.detection.max_side))
    limits = settings.limits.image_limits()
    # Nothing below touches the disk or a model until used: 'frvs gallery list' stays fast.
    store = Store(settings.store_url(), settings.data_dir / "media")
    catalog = IndexCatalog(store, settings.index, settings.data_dir)
    context = EnrolContext(engine, settings.quality.minimums(), limits, utc_now)
    galleries = GalleryService(store, catalog, context)
    return Application(settings, packs, engine, limits, store, galleries)
