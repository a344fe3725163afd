"""What the galleries domain needs from outside: faces from images and pack facts.

``frvs.faces.service.FaceEngine`` satisfies ``FaceAnalyser``; tests wrap it to cache
templates per image. The clock is `frvs.core.times.Clock`.
"""

from __future__ import annotations

from typing import Protocol

from frvs.faces.models import EmbeddedFace
from frvs.imaging.decode import BGRImage
from frvs.models.pack import ModelPack, PackInfo


class PackCatalog(Protocol):
    """Which packs exist; ``info`` never loads a model, ``get`` does."""

    @property
    def default_name(self) -> str: ...

    @property
    def names(self) -> list[str]: ...

    def info(self, name: str) -> PackInfo: ...

    def get(self, name: str | None = None) -> ModelPack: ...


class FaceAnalyser(Protocol):
    """Detect, assess and embed every face of an image with a given pack."""

    @property
    def packs(self) -> PackCatalog: ...

    def analyse(self, image: BGRImage, pack: str | None = None) -> list[EmbeddedFace]: ...
