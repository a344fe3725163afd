"""Camera leases: each enabled camera runs on exactly one replica at a time.

Several ``frvs serve`` processes (replicas) share one store. Each camera has a lease row
naming the replica that runs it and until when; the holder renews it every
``renew_seconds``, and any replica that finds a lease expired takes it over with one
atomic ``UPDATE ... WHERE expired OR holder = me`` (PostgreSQL re-checks the condition on
the row it waited for; SQLite's write transactions run one at a time), so two replicas
never both win. A replica killed with SIGKILL stops renewing; after at most
``seconds + scan_seconds`` another replica runs its cameras. A replica that cannot renew
(the store unreachable, or another replica took the lease while it stalled) stops the
camera before its lease could have passed to anyone else.

Which cameras the replicas run: every enabled camera when a replica starts (as one
process always did), and any camera whose lease a replica held and lost (failover). A
camera registered later runs when an operator starts it, on the replica asked.

Lease times are the database's clock on PostgreSQL (``clock_timestamp()``), never a
replica's: a replica whose clock runs 30 s ahead would otherwise see every other
replica's lease as expired and run their cameras too. How long this replica may keep a
camera without renewing is measured on its own monotonic clock, from before the renewal
was asked (so never past the lease's end in the store). On SQLite (one machine) the
injected clock is used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, select, text, update
from sqlalchemy.orm import Session

from frvs.core.errors import ConflictError
from frvs.core.times import Clock
from frvs.pipeline.camera import CameraRuntime
from frvs.pipeline.events import LeaseLostError
from frvs.pipeline.supervisor import Supervisor
from frvs.pipeline.tables import CameraLeaseRow
from frvs.storage.database import insert_absent
from frvs.storage.store import Store, UnitOfWork
from frvs.video.models import CameraStatus, Health
from frvs.video.service import CameraSpec

logger = logging.getLogger(__name__)



class ReplicaRole(StrEnum):
    """What a replica does: serve the API, run cameras, or both (the default)."""

    API = "api"
    CAMERAS = "cameras"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Replica:
    """This process among the replicas: its name (unique among them) and role."""

    name: str
    role: ReplicaRole = ReplicaRole.ALL

    @property
    def runs_cameras(self) -> bool:
        return self.role is not ReplicaRole.API

    @property
    def serves_api(self) -> bool:
        return self.role is not ReplicaRole.CAMERAS


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """How long a lease lasts and how often replicas look for cameras to take over:
    failover takes at most ``seconds + scan_seconds``."""

    seconds: float = 10.0
    scan_seconds: float = 2.0

    @property
    def renew_seconds(self) -> float:
        # Three renewals a lease: one slow transaction does not lose the camera.
        return self.seconds / 3


@dataclass(frozen=True, slots=True)
class Holding:
    """A live lease: which replica runs ``camera`` and its last reported health."""

    camera: str
    replica: str
    status: dict[str, object] | None
    expires_at: datetime


def _rowcount(result: object) -> int:
    return cast(CursorResult[Any], result).rowcount


class LeaseBook:
    """The lease rows in the store: claim, renew, release, list."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def now(self, session: Session) -> datetime:
        """The one clock every replica's lease times agree on (see the module's note)."""
        if session.get_bind().dialect.name == "postgresql":
            return cast(datetime, session.scalar(text("SELECT clock_timestamp()")))
        return self._clock()

    def claim(self, camera: str, holder: str, terms: LeaseTerms) -> int | None:
        """Take ``camera``'s lease if it is free, expired or already ours: its new
        generation, or None when another replica holds it."""
        with self._store.unit(write=True) as uow:
            # A lease row for the camera if there is none yet (expired, held by nobody).
            now = self.now(uow.session)
            insert_absent(uow.session, CameraLeaseRow, {
                "camera": camera, "holder": "", "generation": 0, "expires_at": now,
                "acquired_at": now, "renewed_at": now}, ["camera"])
            previous = uow.session.scalar(select(CameraLeaseRow.holder).where(
                CameraLeaseRow.camera == camera).with_for_update())
            now = self.now(uow.session)  # read once the row is ours to update
            stmt = (update(CameraLeaseRow)
                    .where(CameraLeaseRow.camera == camera,
                           (CameraLeaseRow.holder == holder)
                           | (CameraLeaseRow.expires_at <= now))
                    .values(holder=holder, generation=CameraLeaseRow.generation + 1,
                            expires_at=now + timedelta(seconds=terms.seconds),
                            acquired_at=now, renewed_at=now, status=None)
                    .execution_options(synchronize_session=False))
            if _rowcount(uow.session.execute(stmt)) != 1:
                return None
            generation = int(uow.session.scalar(select(CameraLeaseRow.generation).where(
                CameraLeaseRow.camera == camera)) or 0)
            uow.publish("camera.run", {"camera": camera, "replica": holder, "state": "running",
                                       "previous": previous or None,
                                       "generation": generation}, now)
            return generation

    def renew(self, camera: str, holder: str, generation: int, terms: LeaseTerms,
              status: dict[str, object] | None) -> datetime | None:
        """Extend our lease (with the camera's health): the new expiry, or None when the
        lease is no longer ours."""
        with self._store.unit(write=True) as uow:
            now = self.now(uow.session)
            expires = now + timedelta(seconds=terms.seconds)
            result = uow.session.execute(
                update(CameraLeaseRow)
                .where(CameraLeaseRow.camera == camera, CameraLeaseRow.holder == holder,
                       CameraLeaseRow.generation == generation)
                .values(expires_at=expires, renewed_at=now, status=status)
                .execution_options(synchronize_session=False))
            return expires if _rowcount(result) == 1 else None

    def release(self, camera: str, holder: str, generation: int,
                status: dict[str, object] | None = None) -> None:
        """Give our lease up at once (a clean stop): another replica takes the camera at
        its next scan instead of waiting for the lease to expire."""
        with self._store.unit(write=True) as uow:
            now = self.now(uow.session)
            result = uow.session.execute(
                update(CameraLeaseRow)
                .where(CameraLeaseRow.camera == camera, CameraLeaseRow.holder == holder,
                       CameraLeaseRow.generation == generation)
                .values(expires_at=now - timedelta(seconds=1), renewed_at=now,
                        status=status)
                .execution_options(synchronize_session=False))
            if _rowcount(result) == 1:
                uow.publish("camera.run", {"camera": camera, "replica": holder,
                                           "state": "released", "previous": holder,
                                           "generation": generation}, now)

    def rows(self) -> tuple[datetime, list[CameraLeaseRow]]:
        """The store's time and every lease row, read together."""
        with self._store.unit() as uow:
            return self.now(uow.session), list(uow.session.scalars(select(CameraLeaseRow)))

    def live(self) -> list[Holding]:
        """Leases not yet expired, by camera name."""
        now, rows = self.rows()
        return sorted((Holding(r.camera, r.holder, r.status, r.expires_at)
                       for r in rows if r.holder and r.expires_at > now),
                      key=lambda h: h.camera)


@dataclass
class _Held:
    generation: int
    deadline: float  # time.monotonic() past which the lease may be another's


class CameraLeases:
    """Runs this replica's share of the cameras: claims free and expired leases, starts
    their cameras in the supervisor, renews the leases of the cameras it runs, and stops
    a camera whose lease it lost. One thread; started and stopped with the service."""

    def __init__(self, book: LeaseBook, supervisor: Supervisor,
                 cameras: Callable[[], Iterable[CameraSpec]], terms: LeaseTerms,
                 clock: Clock) -> None:
        self._book = book
        self._supervisor = supervisor
        self._cameras = cameras
        self.terms = terms
        self._clock = clock
        self.replica = Replica("local")
        self._held: dict[str, _Held] = {}
        self._startup: set[str] = set()
        self._failed: set[str] = set()
        # Cameras whose lease this replica gave up or lost: fenced until started again.
        self._lost: set[str] = set()
        self._runtime: CameraRuntime | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bind(self, replica: Replica) -> None:
        """Name this replica (before ``start``)."""
        self.replica = replica

    def start(self, runtime: CameraRuntime) -> None:
        """Claim and start the enabled cameras no live replica runs, then keep doing so
        (and renewing) on a thread. A replica for the API only runs no camera."""
        if not self.replica.runs_cameras:
            return
        self._runtime = runtime
        self._startup = {spec.name for spec in self._cameras() if spec.enabled}
        self._stop.clear()
        self.scan()
        self._thread = threading.Thread(target=self._run, name="camera-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking, stop this replica's cameras, then release their leases so that
        other replicas take them over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self._supervisor.stop()
        with self._lock:
            held, self._held = dict(self._held), {}
        for camera, lease in held.items():
            try:
                self._book.release(camera, self.replica.name, lease.generation,
                                   self._status_of(camera))
            except Exception:  # the lease then expires by itself
                logger.exception("lease of camera %s could not be released", camera)

    def acquire(self, spec: CameraSpec) -> None:
        """Take ``spec``'s lease for this replica before an operator's start: a
        ``ConflictError`` naming the replica that runs it elsewhere."""
        with self._lock:
            if not self.replica.runs_cameras:
                raise ConflictError(f"replica {self.replica.name} does not run cameras "
                                    "(role api): start the camera on another replica")
            asked = time.monotonic()
            generation = self._book.claim(spec.name, self.replica.name, self.terms)
            if generation is None:
                holder = next((h.replica for h in self._book.live()
                               if h.camera == spec.name), "another replica")
                raise ConflictError(f"camera {spec.name!r} is running on replica {holder}")
            self._held[spec.name] = _Held(generation, asked + self.terms.seconds)
            self._failed.discard(spec.name)
            self._lost.discard(spec.name)

    def run_here(self, spec: CameraSpec, runtime: CameraRuntime) -> None:
        """Start ``spec`` on this replica now (an operator's start): its lease first, so
        it never runs on two replicas; a start that fails gives a new lease back."""
        held_before = self.holds(spec.name)
        self.acquire(spec)
        try:
            self._supervisor.start_camera(spec, runtime)
        except BaseException:
            with self._lock:
                lease = None if held_before else self._held.pop(spec.name, None)
            if lease is not None:
                self._book.release(spec.name, self.replica.name, lease.generation)
            raise
        self.renew_one(spec.name)

    def fence(self, uow: UnitOfWork, camera: str) -> None:
        """In an alert's transaction: raise ``LeaseLostError`` unless this replica still
        holds ``camera``'s lease (same generation). The row stays locked until that
        transaction ends, so no replica takes the camera over while the alert commits; a
        lease of ours that lapsed while this process stalled, but that nobody took, is
        extended here. A camera this replica never ran through a lease (``frvs watch``
        runs one directly) is not fenced."""
        with self._lock:
            lease = self._held.get(camera)
            lost = camera in self._lost
        if lease is None and not lost:
            return
        row = uow.session.scalar(select(CameraLeaseRow).where(
            CameraLeaseRow.camera == camera).with_for_update())
        if (lease is None or row is None or row.holder != self.replica.name
                or row.generation != lease.generation):
            raise LeaseLostError(f"the lease of camera {camera!r} is held by replica "
                                 f"{(row.holder if row else '') or 'none'}, not "
                                 f"{self.replica.name}")
        now = self._book.now(uow.session)
        if row.expires_at <= now + timedelta(seconds=self.terms.seconds / 2):
            row.expires_at = now + timedelta(seconds=self.terms.seconds)

    def holds(self, camera: str) -> bool:
        with self._lock:
            return camera in self._held

    def _run(self) -> None:
        next_renew = time.monotonic() + self.terms.renew_seconds
        while not self._stop.wait(self.terms.scan_seconds):
            try:
                if time.monotonic() >= next_renew:
                    self.renew()
                    next_renew = time.monotonic() + self.terms.renew_seconds
                self.scan()
            except Exception:  # a loop boundary: the store may be back at the next turn
                logger.exception("camera lease round failed")
                self._drop_overdue()

    def renew(self) -> None:
        """Renew every lease held; stop each camera whose lease is no longer ours."""
        with self._lock:
            held = dict(self._held)
        for camera, lease in held.items():
            asked = time.monotonic()
            expires = self._book.renew(camera, self.replica.name, lease.generation,
                                       self.terms, self._status_of(camera))
            if expires is None:
                logger.warning("camera %s: lease lost to another replica; stopping it here",
                               camera)
                self._let_go(camera)
            else:
                lease.deadline = asked + self.terms.seconds

    def _drop_overdue(self) -> None:
        # Unable to renew: a lease that has passed may be another replica's by now.
        now = time.monotonic()
        with self._lock:
            overdue = [c for c, lease in self._held.items() if lease.deadline <= now]
        for camera in overdue:
            logger.warning("camera %s: lease expired without renewal; stopping it here",
                           camera)
            self._let_go(camera)

    def stop_here(self, camera: str) -> None:
        """Stop ``camera`` on this replica and give its lease back (the camera was
        removed or disabled)."""
        with self._lock:
            lease = self._held.pop(camera, None)
            if lease is not None:
                self._lost.add(camera)
        self._supervisor.stop_camera(camera)
        if lease is not None:
            self._book.release(camera, self.replica.name, lease.generation)

    def _let_go(self, camera: str) -> None:
        with self._lock:
            self._held.pop(camera, None)
            self._lost.add(camera)
        try:
            self._supervisor.camera(camera).stop()
        except Exception:  # already gone
            logger.debug("camera %s was not running here", camera)

    def scan(self) -> None:
        """Claim and start each enabled camera that no live replica runs: free at this
        replica's start, or held by a replica that stopped renewing."""
        runtime = self._runtime
        if runtime is None or self._stop.is_set():
            return
        now, rows = self._book.rows()
        leases = {row.camera: row for row in rows}
        for spec in self._cameras():
            if not spec.enabled or spec.name in self._failed or self.holds(spec.name):
                continue
            row = leases.get(spec.name)
            free = (spec.name in self._startup) if row is None else row.expires_at <= now
            if not free:
                continue
            generation = self._book.claim(spec.name, self.replica.name, self.terms)
            if generation is None:
                continue  # another replica was quicker
            self._start(spec, generation, runtime,
                        taken_from=row.holder if row is not None else "")

    def _start(self, spec: CameraSpec, generation: int, runtime: CameraRuntime,
               taken_from: str) -> None:
        with self._lock:
            # Claimed just now: a scan's claim is at most one transaction old.
            self._held[spec.name] = _Held(generation, time.monotonic() + self.terms.seconds)
            self._lost.discard(spec.name)
        try:
            self._supervisor.start_camera(spec, runtime)
        except Exception:  # one bad camera must not keep the others down
            logger.exception("camera %s could not start", spec.name)
            with self._lock:
                self._held.pop(spec.name, None)
            self._failed.add(spec.name)  # not retried here; another replica may try
            self._book.release(spec.name, self.replica.name, generation)
            return
        if taken_from and taken_from != self.replica.name:
            logger.info("camera %s taken over from replica %s", spec.name, taken_from)
        self.renew_one(spec.name)

    def renew_one(self, camera: str) -> None:
        """Publish a camera's health now (right after it started here)."""
        with self._lock:
            lease = self._held.get(camera)
        if lease is not None:
            asked = time.monotonic()
            expires = self._book.renew(camera, self.replica.name, lease.generation,
                                       self.terms, self._status_of(camera))
            if expires is not None:
                lease.deadline = asked + self.terms.seconds

    def _status_of(self, camera: str) -> dict[str, object] | None:
        try:
            return self._supervisor.camera(camera).status().as_dict()
        except Exception:  # not running here (any more)
            return None

    def status(self) -> list[dict[str, object]]:
        """Every running camera of every replica, with the replica running it: this
        replica's from its own supervisor, the others' as their holders last reported."""
        others = {h.camera: h for h in self._book.live() if h.replica != self.replica.name}
        out: list[dict[str, object]] = []
        for status in self._supervisor.status():
            if status.camera not in others:
                out.append(status.as_dict() | {"replica": self.replica.name})
        for holding in others.values():
            reported = holding.status or CameraStatus(
                holding.camera, Health.STARTING, 0.0, 0.0, 0, 0, 0, 0.0, 0, None).as_dict()
            out.append(reported | {"camera": holding.camera, "replica": holding.replica})
        return sorted(out, key=lambda s: str(s["camera"]))
