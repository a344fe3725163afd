"""The supervisor: runs several cameras in one process, starts and stops them in one
place, and answers for their health.

Cameras of the same model pack share one embedder (``EmbedBatcher``), so faces due at
the same time on several cameras are embedded in one batch. Run listeners hear when
each camera run starts and ends (the audit trail records both, EU AI Act Art. 12(3)).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from frvs.core.errors import ConflictError, InvalidInputError, NotFoundError
from frvs.galleries.ports import PackCatalog
from frvs.pipeline.batching import EmbedBatcher
from frvs.pipeline.camera import CameraPipeline, CameraRun, CameraRuntime, StepSink
from frvs.video.models import CameraStatus
from frvs.video.ports import Matcher
from frvs.video.service import CameraSpec
from frvs.video.source_policy import EDGE_SOURCE

logger = logging.getLogger(__name__)

RunListener = Callable[[CameraRun], None]


class Supervisor:
    """Owns the running camera pipelines of a process."""

    def __init__(self, packs: PackCatalog, matcher: Matcher, router: StepSink) -> None:
        self._packs = packs
        self._matcher = matcher
        self.router = router
        self._cameras: dict[str, CameraPipeline] = {}
        self._batchers: dict[str, EmbedBatcher] = {}
        self._listeners: list[RunListener] = []
        self._lock = threading.Lock()

    def add_run_listener(self, listener: RunListener) -> None:
        """Call ``listener`` when a camera run starts (before anything runs: a listener
        that raises, such as an audit trail that cannot record the start, keeps the
        camera from starting) and when it ends (from the camera's own thread; a failure
        then is logged)."""
        self._listeners.append(listener)

    def _announce(self, run: CameraRun) -> None:
        for listener in self._listeners:
            if run.started:
                listener(run)
                continue
            try:
                listener(run)
            except Exception:  # the run has ended either way: report, do not re-raise
                logger.exception("run listener failed for camera %s", run.camera)

    def _batcher(self, pack_name: str) -> EmbedBatcher:
        batcher = self._batchers.get(pack_name)
        if batcher is None:
            batcher = self._batchers[pack_name] = EmbedBatcher(self._packs.get(pack_name))
            batcher.start()
        return batcher

    def start_camera(self, spec: CameraSpec, runtime: CameraRuntime | None = None) -> None:
        """Start one camera; its pack is its galleries' pack (checked here, not later)."""
        if spec.source_url == EDGE_SOURCE:
            raise InvalidInputError(f"camera {spec.name!r} is run by an edge node ('frvs edge "
                                    "run'); the centre never opens its source")
        pack_name = self._matcher.pack_for(spec.galleries)
        pack = self._packs.get(pack_name)
        with self._lock:
            previous = self._cameras.get(spec.name)
            # A finished run (a file that ended, a stopped camera) may run again.
            if previous is not None and not previous.wait(0):
                raise ConflictError(f"camera {spec.name!r} is already running")
            pipeline = CameraPipeline(spec, pack, self._matcher, self.router, runtime,
                                      embed=self._batcher(pack_name), on_run=self._announce)
            self._cameras[spec.name] = pipeline
        try:
            pipeline.start()
        except BaseException:
            with self._lock:
                if self._cameras.get(spec.name) is pipeline:
                    del self._cameras[spec.name]
            raise
        logger.info("camera %s started", spec.name)

    def start(self, specs: list[CameraSpec], runtime: CameraRuntime | None = None) -> None:
        """Start every enabled camera; one that cannot start is logged, not fatal."""
        for spec in specs:
            # An edge camera is run by its node; the centre only takes its reports.
            if not spec.enabled or spec.source_url == EDGE_SOURCE:
                continue
            try:
                self.start_camera(spec, runtime)
            except Exception:  # one bad camera must not keep the others down
                logger.exception("camera %s could not start", spec.name)

    def spec_of(self, name: str) -> CameraSpec | None:
        """The settings the camera was last started with here, or None."""
        with self._lock:
            pipeline = self._cameras.get(name)
        return pipeline.spec if pipeline is not None else None

    def stop_camera(self, name: str) -> bool:
        """Stop one camera and forget it (its status goes with it); False when it was
        not known here."""
        with self._lock:
            pipeline = self._cameras.pop(name, None)
        if pipeline is None:
            return False
        pipeline.stop()
        logger.info("camera %s stopped", name)
        return True

    def stop(self) -> None:
        """Stop every camera, in reverse order of starting, then the shared embedders."""
        with self._lock:
            cameras = list(self._cameras.values())[::-1]
            batchers = list(self._batchers.values())
            self._batchers.clear()
        for pipeline in cameras:
            pipeline.stop()
        for batcher in batchers:
            batcher.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every (finite) camera to finish; True when all did."""
        with self._lock:
            cameras = list(self._cameras.values())
        return all(p.wait(timeout) for p in cameras)

    def camera(self, name: str) -> CameraPipeline:
        with self._lock:
            if name not in self._cameras:
                raise NotFoundError(f"camera {name!r} is not running")
            return self._cameras[name]

    def status(self) -> list[CameraStatus]:
        with self._lock:
            cameras = list(self._cameras.values())
        return [p.status() for p in cameras]
