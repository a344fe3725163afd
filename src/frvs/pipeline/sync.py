"""Keeping the running cameras in line with the registered ones.

A camera is registered by whoever may (``frvs camera add`` in another process, the API,
the console), and the service runs it: at start, and while it runs by looking at the
cameras table every ``interval`` seconds (one small query). An enabled camera that is
new, or whose settings changed, starts (a changed one restarts) at once; a disabled or
removed one stops. A camera whose run ended (a file played to its end) or failed is not
started again until its settings change or an operator presses Start: the sync acts on
changes of settings, never on a camera's health.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from frvs.core.errors import ConflictError
from frvs.pipeline.camera import CameraRuntime
from frvs.pipeline.supervisor import Supervisor
from frvs.video.service import CameraSpec

logger = logging.getLogger(__name__)


class CameraSync:
    """Starts, restarts and stops cameras as their registrations change."""

    def __init__(self, registered: Callable[[], list[CameraSpec]], supervisor: Supervisor,
                 runtime: Callable[[], CameraRuntime], interval: float = 2.0) -> None:
        self._registered = registered
        self._supervisor = supervisor
        self._runtime = runtime
        self._interval = interval
        self._known: dict[str, CameraSpec] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        """Bring the running cameras in line with the registered ones, now."""
        with self._lock:
            wanted = {spec.name: spec for spec in self._registered() if spec.enabled}
            for name in [n for n in self._known if n not in wanted]:
                logger.info("camera %s removed or disabled: stopping it", name)
                self._supervisor.stop_camera(name)
                del self._known[name]
            for name, spec in wanted.items():
                if self._known.get(name) == spec:
                    continue
                if name not in self._known and self._supervisor.spec_of(name) == spec:
                    # Started by an operator (Start) with these very settings: leave it.
                    self._known[name] = spec
                    continue
                if name in self._known:
                    logger.info("camera %s changed: restarting it", name)
                    self._supervisor.stop_camera(name)
                self._known[name] = spec  # tried once per version of its settings
                try:
                    self._supervisor.start_camera(spec, self._runtime())
                except ConflictError:  # an operator's Start won a race: it runs
                    pass
                except Exception:  # one bad camera must not keep the others down
                    logger.exception("camera %s could not start", name)

    def start(self) -> None:
        """The first sync (the service's cameras start), then one every ``interval``."""
        self.sync()
        if self._interval > 0:
            self._thread = threading.Thread(target=self._run, name="camera-sync", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sync()
            except Exception:  # a loop boundary (the store unreachable a moment): next time
                logger.exception("camera sync failed")
