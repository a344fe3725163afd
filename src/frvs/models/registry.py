"""Which packs exist, and building them lazily from their configs.

Each pack is a plugin (``frvs.core.plugins``): its config class, in the pack's own module,
says what the pack is (``info``) and loads it (``load``); ``PackConfig`` is their union.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import Field

from frvs.core.errors import ConfigurationError
from frvs.models import dlib_pack, yunet_sface
from frvs.models.pack import ModelPack, PackInfo, ThresholdOverride

logger = logging.getLogger(__name__)

PackConfig = Annotated[
    yunet_sface.YuNetSFaceConfig | dlib_pack.DlibConfig, Field(discriminator="type")
]


def default_pack_configs() -> list[PackConfig]:
    # dlib is listed even when not installed: building it is lazy and says how to install.
    return [yunet_sface.YuNetSFaceConfig(), dlib_pack.DlibConfig()]


class PackRegistry:
    """Owns the loaded packs of one application; builds each on first use."""

    def __init__(
        self,
        configs: Sequence[PackConfig],
        default: str,
        thresholds: Mapping[str, ThresholdOverride] | None = None,
    ) -> None:
        self._configs: dict[str, PackConfig] = {c.type: c for c in configs}
        if default not in self._configs:
            raise ConfigurationError(
                f"default pack {default!r} is not configured; configured: {sorted(self._configs)}"
            )
        self._thresholds = dict(thresholds or {})
        unknown = sorted(set(self._thresholds) - set(self._configs))
        if unknown:
            raise ConfigurationError(
                f"thresholds given for unknown pack(s) {unknown}; configured: "
                f"{sorted(self._configs)}"
            )
        self.default_name = default
        self._loaded: dict[str, ModelPack] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._configs)

    def info(self, name: str) -> PackInfo:
        """The pack's description, with thresholds from the configuration applied."""
        key = self._resolve(name)
        shipped = self._configs[key].info()
        override = self._thresholds.get(key)
        if override is None:
            return shipped
        return dataclasses.replace(shipped, thresholds=override.apply(shipped.thresholds))

    def get(self, name: str | None = None) -> ModelPack:
        """The pack called ``name`` (the default when None), loading it on first use."""
        key = self._resolve(name or self.default_name)
        with self._lock:
            if key not in self._loaded:
                pack = self._configs[key].load()
                if key in self._thresholds:
                    pack = dataclasses.replace(pack, info=self.info(key))
                logger.info("loaded model pack %s (runtime %s)", key, pack.runtime)
                self._loaded[key] = pack
            return self._loaded[key]

    def _resolve(self, name: str) -> str:
        if name not in self._configs:
            raise ConfigurationError(
                f"unknown model pack {name!r}; available: {', '.join(sorted(self._configs))}"
            )
        return name
