"""Template acquisition for an evaluation run: once per image, optionally in processes.

Failure to acquire (an unreadable image, no face) is recorded with its reason, never
raised and never dropped: the metrics count it (see ``frvs.evaluation.metrics``). A
missing file is different — a broken data set — and stops the run before any work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

from frvs.app import build_application
from frvs.config.settings import Settings
from frvs.core.errors import FrvsError
from frvs.core.templates import Template
from frvs.faces.service import FaceEngine
from frvs.imaging.decode import ImageLimits, read_image

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Acquisition:
    """The templates made from one image (largest face first); none means failure."""

    image: Path
    templates: tuple[Template, ...]
    faces_found: int
    failure: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.templates)


@dataclass(frozen=True, slots=True)
class AcquireOptions:
    """Which pack, whether every face or only the largest, and how many processes."""

    pack: str
    all_faces: bool = False
    workers: int = 1


class Progress(Protocol):
    """Opens a progress task of ``total`` steps; the yielded callable advances it."""

    def __call__(self, label: str, total: int) -> AbstractContextManager[Callable[[], None]]: ...


@contextmanager
def no_progress(label: str, total: int) -> Iterator[Callable[[], None]]:  # noqa: ARG001
    """A progress reporter that reports nothing (library default)."""
    yield lambda: None


def acquire_one(engine: FaceEngine, limits: ImageLimits, path: Path,
                options: AcquireOptions) -> Acquisition:
    """Templates of one image; a domain error becomes a recorded failure."""
    try:
        image = read_image(path, limits)
        faces = engine.detect(image, options.pack)
        if not faces:
            return Acquisition(path, (), 0, "no_face", "no face found")
        chosen = faces if options.all_faces else faces[:1]
        embedded = engine.embed(image, chosen, options.pack)
        return Acquisition(path, tuple(e.template for e in embedded), len(faces))
    except FrvsError as exc:
        return Acquisition(path, (), 0, exc.code, exc.message)


# Worker processes build their own application once (initializer); this module-level
# slot lives only inside those processes, never in the parent.
_WORKER: tuple[FaceEngine, ImageLimits] | None = None


def _init_worker(settings: Settings) -> None:
    global _WORKER  # noqa: PLW0603 - per-process state of a pool worker, see above
    app = build_application(settings)
    _WORKER = (app.engine, app.image_limits)


def _work(path: Path, options: AcquireOptions) -> Acquisition:
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker not initialised")
    return acquire_one(_WORKER[0], _WORKER[1], path, options)


def acquire(
    images: Sequence[Path],
    engine: FaceEngine,
    settings: Settings,
    options: AcquireOptions,
    progress: Progress = no_progress,
) -> dict[Path, Acquisition]:
    """Templates for each distinct image, once. ``workers > 1`` spreads the images over
    processes, each loading the pack itself (spawned: forked ONNX/OpenCV threads are
    unsafe)."""
    unique = list(dict.fromkeys(images))
    missing = [p for p in unique if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise FileNotFoundError(f"image(s) not found: {', '.join(map(str, missing[:3]))}{more}")
    results: dict[Path, Acquisition] = {}
    with progress(f"templates ({options.pack})", len(unique)) as advance:
        if options.workers <= 1 or len(unique) < 2 * options.workers:
            limits = settings.limits.image_limits()
            for path in unique:
                results[path] = acquire_one(engine, limits, path, options)
                advance()
        else:
            context = get_context("spawn")
            with ProcessPoolExecutor(options.workers, context, _init_worker,
                                     (settings,)) as pool:
                for path, result in zip(unique, pool.map(_work, unique,
                                                         [options] * len(unique)), strict=True):
                    results[path] = result
                    advance()
    failed = sum(not a.ok for a in results.values())
    logger.info("acquired %d images with %s, %d failures", len(results), options.pack, failed)
    return results
