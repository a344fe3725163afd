"""One embedder shared by every camera of a pack, batching what waits.

Each camera's analysis thread asks for the templates of its due shots and blocks
until they are ready. A worker thread takes the oldest request and every other request
already waiting (up to ``max_batch`` shots) and embeds them in one call, so cameras that
reach their identity attempts at the same time share one ONNX Runtime run. There is no
waiting to fill a batch: a lone camera's latency is one embedding call, and batches only
form when embedding is the bottleneck. Every camera has at most one request in flight,
so the inbox is bounded by the number of cameras.

There is a worker per core (``workers``). On a CPU a batch costs its shots' time one by
one (SFace on one core: 18 ms a face alone or in a batch of four), so batching saves
little there, while one worker left every other core idle whenever cameras met faces at
once: with ten 720p cameras at 5 fps a single worker's batches of up to 32 shots held
the cameras waiting long enough to drop a fifth of their frames with a quarter of the
machine unused. ``max_batch`` bounds how long one batch holds its cameras.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from frvs.core.errors import FrvsError
from frvs.core.metrics import EMBED_BATCH_SIZE, EMBED_SECONDS
from frvs.core.templates import Template
from frvs.models.pack import ModelPack
from frvs.video.models import Shot
from frvs.video.processor import embed_shots

logger = logging.getLogger(__name__)


class EmbedderStoppedError(FrvsError):
    """The shared embedder was stopped while a camera still asked for templates."""

    code = "embedder_stopped"


@dataclass(eq=False)
class _Request:
    shots: Sequence[Shot]
    done: threading.Event = field(default_factory=threading.Event)
    templates: list[Template] = field(default_factory=list)
    error: BaseException | None = None


class EmbedBatcher:
    """An ``EmbedFn`` for many cameras: thread-safe, ``workers`` embedding threads per pack
    (default: one per core, at most four)."""

    def __init__(self, pack: ModelPack, max_batch: int = 8, workers: int = 0) -> None:
        self._pack = pack
        self._max_batch = max(1, max_batch)
        self._inbox: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        count = workers if workers > 0 else max(1, min(os.cpu_count() or 1, 4))
        self._threads = [threading.Thread(target=self._run, name=f"embed-{pack.info.name}-{i}",
                                          daemon=True) for i in range(count)]
        self._lock = threading.Lock()
        self._stopped = False
        self._running = len(self._threads)
        self.calls = 0
        self.shots = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopped = True
        for _ in self._threads:
            self._inbox.put(None)  # one for each worker
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __call__(self, shots: Sequence[Shot]) -> list[Template]:
        if not shots:
            return []
        request = _Request(shots)
        with self._lock:
            if self._stopped:
                raise EmbedderStoppedError("the shared embedder is stopped")
            self._inbox.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.templates

    @property
    def mean_batch(self) -> float:
        """Shots per embedding call so far (1.0 means no batching happened)."""
        return self.shots / self.calls if self.calls else 0.0

    def _run(self) -> None:
        carry: _Request | None = None
        while True:
            first = carry or self._inbox.get()
            carry = None
            if first is None:
                break
            batch, size = [first], len(first.shots)
            while size < self._max_batch:
                try:
                    more = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._inbox.put(None)  # stop after this batch
                    break
                if size + len(more.shots) > self._max_batch:
                    carry = more
                    break
                batch.append(more)
                size += len(more.shots)
            self._embed(batch)
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:  # earlier, it would take the stop markers meant for the other workers
            self._fail_waiting()

    def _embed(self, batch: list[_Request]) -> None:
        shots = [s for r in batch for s in r.shots]
        started = time.perf_counter()
        try:
            templates = embed_shots(self._pack, shots)
        except Exception as exc:  # a loop boundary: the callers re-raise it
            logger.exception("embedding a batch of %d shots failed", len(shots))
            for r in batch:
                r.error = exc
                r.done.set()
            return
        with self._lock:
            self.calls += 1
            self.shots += len(shots)
        EMBED_SECONDS.labels(self._pack.info.name).observe(time.perf_counter() - started)
        EMBED_BATCH_SIZE.labels(self._pack.info.name).observe(len(shots))
        start = 0
        for r in batch:
            r.templates = templates[start:start + len(r.shots)]
            start += len(r.shots)
            r.done.set()

    def _fail_waiting(self) -> None:
        while True:
            try:
                request = self._inbox.get_nowait()
            except queue.Empty:
                return
            if request is not None:
                request.error = EmbedderStoppedError("the shared embedder is stopped")
                request.done.set()
