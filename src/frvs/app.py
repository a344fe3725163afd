"""Composition root: build every service from the configuration, start and stop them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from frvs.config.settings import Settings
from frvs.faces.service import EngineOptions, FaceEngine
from frvs.imaging.decode import ImageLimits
from frvs.models.registry import PackRegistry

logger = logging.getLogger(__name__)


@dataclass
class Application:
    """Everything one FRVS process runs, built from one ``Settings``."""

    settings: Settings
    packs: PackRegistry
    engine: FaceEngine
    image_limits: ImageLimits

    def start(self) -> None:
        """Start background work in dependency order (nothing runs in the background yet)."""
        logger.info("FRVS starting with data dir %s", self.settings.data_dir)

    def stop(self) -> None:
        """Stop background work in reverse order."""
        logger.info("FRVS stopped")


def build_application(settings: Settings) -> Application:
    """Wire the services; model packs load lazily on first use."""
    packs = PackRegistry(settings.packs, settings.default_pack)
    engine = FaceEngine(packs, EngineOptions(max_side=settings.detection.max_side))
    return Application(settings, packs, engine, settings.limits.image_limits())
