"""Keeping the running cameras in line with the registered ones.

A camera is registered by whoever may (``frvs camera add`` in another process, the API,
the console), and the service runs it: at start, and while it runs by looking at the
cameras table every ``interval`` seconds (one small query). An enabled camera that is
new, or whose settings changed, starts (a changed one restarts) at once; a disabled or
removed one stops. A camera whose run ended (a file played to its end) or failed is not
started again until its settings change or an operator presses Start: the sync acts on
changes of settings, never on a camera's health.

With several replicas each camera runs on one of them, the holder of its lease
(``pipeline/leases.py``): a new camera is started through its lease (whichever replica's
sync claims it first runs it), a changed one is restarted by the replica that holds it,
and a removed one is stopped there and its lease given back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from frvs.core.errors import ConflictError
from frvs.pipeline.camera import CameraRuntime
from frvs.pipeline.leases import CameraLeases
from frvs.pipeline.supervisor import Supervisor
from frvs.video.service import CameraSpec

logger = logging.getLogger(__name__)


class CameraSync:
    """Starts, restarts and stops cameras as their registrations change."""

    def __init__(self, registered: Callable[[], list[CameraSpec]], leases: CameraLeases,
                 supervisor: Supervisor, runtime: Callable[[], CameraRuntime],
                 interval: float = 2.0) -> None:
        self._registered = registered
        self._leases = leases
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
                if self._leases.holds(name):
                    logger.info("camera %s removed or disabled: stopping it", name)
                    self._leases.stop_here(name)
                del self._known[name]
            for name, spec in wanted.items():
                if self._known.get(name) == spec:
                    continue
                if name not in self._known and self._supervisor.spec_of(name) == spec:
                    # Started with these very settings (its lease at the service's start,
                    # or an operator's Start): leave it.
                    self._known[name] = spec
                    continue
                self._known[name] = spec  # tried once per version of its settings
                try:
                    if self._leases.holds(name):
                        # Changed while it runs here: restart it, keeping its lease.
                        logger.info("camera %s changed: restarting it", name)
                        self._supervisor.stop_camera(name)
                        self._supervisor.start_camera(spec, self._runtime())
                    else:
                        self._leases.run_here(spec, self._runtime())
                except ConflictError:  # it runs on another replica, or an operator's
                    pass               # Start won a race: either way it runs
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
