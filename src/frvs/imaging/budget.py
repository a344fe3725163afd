"""A process-wide budget of pixels being decoded or analysed at once.

Memory for a still image grows with its pixels (a 40 Mpx upload is 120 MB as BGR, more
while it is decoded), not with its bytes: eight 70 KB uploads can ask for gigabytes.
Every path that decodes an upload reserves the image's pixels, read from its header,
before decoding and keeps them until its analysis is done. A request that does not fit
waits its turn (first come, first served) for at most ``wait_s``, then is refused with
``BusyError`` (503 with Retry-After over HTTP). One image larger than the whole budget
waits until the budget is empty and then takes all of it, so any image the pixel limit
accepts can still be processed.

After a large reservation ends, glibc is asked to give freed heap pages back to the
system (``malloc_trim``): decoders free their buffers in many medium blocks that the
allocator would otherwise keep, and the process would stay gigabytes above its idle
size after an attack is over.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from frvs.core.errors import BusyError
from frvs.imaging.decode import (
    BGRImage,
    ImageLimits,
    ScaledImage,
    decode_image,
    decode_scaled,
    inspect_image,
)

logger = logging.getLogger(__name__)

DEFAULT_PIXEL_BUDGET = 80_000_000
"""Two images at the default pixel limit at once (about 600 MB while both decode)."""

TRIM_AFTER_PIXELS = 4_000_000
"""Reservations at least this large give freed memory back to the system when they end."""


@dataclass
class Reservation:
    """Pixels held in a budget until ``release`` (idempotent)."""

    pixels: int
    give_back: Callable[[int], None]
    released: bool = field(default=False, init=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.give_back(self.pixels)


ImageT = TypeVar("ImageT", BGRImage, ScaledImage)


@dataclass
class Decoded(Generic[ImageT]):
    """Images decoded inside a reservation that lasts until ``release`` (or the end of a
    ``with`` block, which yields the images)."""

    images: list[ImageT]
    reservation: Reservation

    def release(self) -> None:
        self.reservation.release()

    def __enter__(self) -> list[ImageT]:
        return self.images

    def __exit__(self, *_: object) -> None:
        self.release()


class PixelBudget:
    """At most ``capacity`` pixels decoded or analysed at once in this process.

    Thread-safe; waiters are served in arrival order, so a large image is not starved
    by a stream of small ones.
    """

    def __init__(self, capacity: int, wait_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or wait_s < 0:
            raise ValueError(f"capacity must be >= 1 and wait_s >= 0, got {capacity}, "
                             f"{wait_s}")
        self.capacity = capacity
        self.wait_s = wait_s
        self._clock = clock
        self._used = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        """Pixels reserved now."""
        with self._changed:
            return self._used

    @property
    def waiting(self) -> int:
        """Requests queued for room now."""
        with self._changed:
            return len(self._queue)

    def reserve(self, pixels: int, what: str = "image") -> Reservation:
        """Hold ``pixels`` (at most the capacity), waiting up to ``wait_s`` for room;
        ``BusyError`` when there is none by then."""
        need = max(0, min(pixels, self.capacity))
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            try:
                deadline = self._clock() + self.wait_s
                while self._queue[0] is not ticket or self._used + need > self.capacity:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        raise BusyError(
                            f"{what}: the service is already decoding or analysing "
                            f"{self._used} of its {self.capacity} pixels; retry in "
                            f"{math.ceil(self.wait_s) or 1} s",
                            retry_after=max(1.0, self.wait_s))
                    self._changed.wait(remaining)
                self._used += need
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()
        return Reservation(need, self._give_back)

    @contextmanager
    def hold(self, pixels: int, what: str = "image") -> Iterator[None]:
        """``reserve`` for the duration of a ``with`` block."""
        reservation = self.reserve(pixels, what)
        try:
            yield
        finally:
            reservation.release()

    def decode(self, uploads: Sequence[tuple[bytes, str]],
               limits: ImageLimits) -> Decoded[BGRImage]:
        """Decode (bytes, name) pairs inside one reservation of all their pixels, read
        from their headers first (a refused header costs no wait). Analyse the images
        inside ``with budget.decode(...) as images:`` (or call ``release`` after)."""
        pixels = sum(inspect_image(data, limits, name).pixels for data, name in uploads)
        reservation = self.reserve(pixels, ", ".join(name for _, name in uploads))
        try:
            images = [decode_image(data, limits, name) for data, name in uploads]
        except BaseException:
            reservation.release()
            raise
        return Decoded(images, reservation)

    def decode_scaled(self, uploads: Sequence[tuple[bytes, str]], limits: ImageLimits,
                      min_side: int) -> Decoded[ScaledImage]:
        """As ``decode``, each image at the smallest DCT scale that keeps its longer side
        at least ``min_side`` (``decode_scaled``), several images at once on as many
        threads (the decoders release the GIL). The reservation is of every pixel the
        headers announce: a face too small in a reduced image is aligned from the image
        decoded again at full size, inside the same reservation."""
        pixels = sum(inspect_image(data, limits, name).pixels for data, name in uploads)
        reservation = self.reserve(pixels, ", ".join(name for _, name in uploads))
        try:
            if len(uploads) == 1:
                (data, name), = uploads
                images = [decode_scaled(data, min_side, limits, name)]
            else:
                with ThreadPoolExecutor(len(uploads) - 1,
                                        thread_name_prefix="decode") as others:
                    later = [others.submit(decode_scaled, data, min_side, limits, name)
                             for data, name in uploads[1:]]
                    first = decode_scaled(uploads[0][0], min_side, limits, uploads[0][1])
                    images = [first, *(f.result() for f in later)]
        except BaseException:
            reservation.release()
            raise
        return Decoded(images, reservation)

    def _give_back(self, pixels: int) -> None:
        with self._changed:
            self._used -= pixels
            self._changed.notify_all()
        if pixels >= TRIM_AFTER_PIXELS:
            release_free_memory()


def release_free_memory() -> None:
    """Return the allocator's free pages to the system (glibc; elsewhere nothing)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        logger.debug("malloc_trim is not available: freed memory stays with the allocator")
        return None
    return trim
