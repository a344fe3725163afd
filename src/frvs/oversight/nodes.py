"""The registry of edge nodes at the centre: which device key runs which cameras, with
what software and model pack, when it last called in, its backlog as it last reported
it, and how far its clock is from the centre's.

A node calls in with a heartbeat (``POST /v1/edge/heartbeat``). Its first heartbeat is
audited (``edge.register``); so is every heartbeat that reports reports or crops its
outbox had to drop (``edge.drops``, with the counts since the last report): a gap in
what the centre holds is on the record. The answer tells the node the centre's clock
and, per camera, whether it should ship best-shot crops.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from frvs.core.caller import AuditContext, AuditDraft, record_refusal
from frvs.core.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from frvs.core.times import Clock, check_time
from frvs.oversight.keys import KeyService
from frvs.oversight.models import Role
from frvs.oversight.repository import NodeRepository, NodeState, StoredNode
from frvs.storage.store import Store
from frvs.video.service import CameraService

WATCH_LIST = "watch_list"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a node says of itself; drop counts are cumulative since its outbox began."""

    name: str
    version: str
    pack: str | None
    cameras: tuple[str, ...]
    location: str | None
    backlog: int
    backlog_bytes: int
    oldest_pending: datetime | None
    dropped_crops: int
    dropped_reports: int
    sent_at: datetime

    def __post_init__(self) -> None:
        check_time(self.sent_at, "sent_at")
        if self.oldest_pending is not None:
            check_time(self.oldest_pending, "oldest_pending")
        if min(self.backlog, self.backlog_bytes, self.dropped_crops, self.dropped_reports) < 0:
            raise InvalidInputError("backlog and drop counts must be >= 0")


@dataclass(frozen=True, slots=True)
class CameraPolicy:
    """What the centre asks of a node for one camera: ship best-shot crops when its
    sightings keep crops or it feeds a watch list (reviewers compare the alert's picture)."""

    crops: bool


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    now: datetime
    clock_offset_s: float
    clock_ok: bool
    cameras: dict[str, CameraPolicy]

    def as_dict(self) -> dict[str, object]:
        return {"now": self.now.isoformat(), "clock_offset_s": round(self.clock_offset_s, 3),
                "clock_ok": self.clock_ok,
                "cameras": {k: {"crops": v.crops} for k, v in self.cameras.items()}}


@dataclass(frozen=True, slots=True)
class NodeRecord:
    key_id: str
    name: str
    cameras: tuple[str, ...]
    version: str | None
    pack: str | None
    location: str | None
    first_contact: datetime
    last_heartbeat: datetime | None
    status: str
    lagging: bool
    backlog: int
    backlog_bytes: int
    oldest_pending: datetime | None
    clock_offset_s: float | None
    clock_ok: bool
    dropped_crops: int
    dropped_reports: int
    reports: int

    def as_dict(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"key_id": self.key_id, "name": self.name, "cameras": list(self.cameras),
                "version": self.version, "pack": self.pack, "location": self.location,
                "first_contact": self.first_contact.isoformat(),
                "last_heartbeat": iso(self.last_heartbeat), "status": self.status,
                "lagging": self.lagging,
                "backlog": self.backlog, "backlog_bytes": self.backlog_bytes,
                "oldest_pending": iso(self.oldest_pending),
                "clock_offset_s": self.clock_offset_s, "clock_ok": self.clock_ok,
                "dropped_crops": self.dropped_crops, "dropped_reports": self.dropped_reports,
                "reports": self.reports}


@dataclass(frozen=True, slots=True)
class NodePolicy:
    """When a node counts as offline (no heartbeat for ``offline_after_s``), as lagging
    (its oldest undelivered report older than ``lagging_after_s`` when it last called
    in: its backlog is not draining) and how far its clock may be off (the device
    clock-skew limit)."""

    offline_after_s: float = 60.0
    clock_skew_s: float = 120.0
    lagging_after_s: float = 300.0


class NodeRegistry:
    """Heartbeats in, the node list out."""

    def __init__(self, store: Store, keys: KeyService, cameras: CameraService, *,
                 clock: Clock, policy: NodePolicy | None = None) -> None:
        self._store = store
        self._keys = keys
        self._cameras = cameras
        self._clock = clock
        self.policy = policy or NodePolicy()

    def heartbeat(self, context: AuditContext, beat: Heartbeat) -> HeartbeatAnswer:
        """Record a node's heartbeat; audit its first one and any new drops."""
        actor = context.actor
        inputs: dict[str, object] = {"node": beat.name, "cameras": list(beat.cameras)}
        try:
            if actor.role is not Role.DEVICE or actor.key_id is None:
                raise PermissionDeniedError("only device keys send node heartbeats")
            for field, text in (("name", beat.name), ("version", beat.version),
                                ("pack", beat.pack), ("location", beat.location)):
                _printable(field, text)
            key = self._keys.get(actor.key_id)
            unbound = sorted(set(beat.cameras) - set(key.cameras))
            if unbound:
                raise PermissionDeniedError(
                    f"device key {key.key_id} is not bound to camera(s) {', '.join(unbound)}")
            now = self._clock()
            offset = (beat.sent_at - now).total_seconds()
            with self._store.unit(write=True) as uow:
                nodes = uow.repo(NodeRepository)
                before = nodes.state(key.key_id)
                first = before is None
                before_crops = 0 if before is None else before.dropped_crops
                before_reports = 0 if before is None else before.dropped_reports
                nodes.save(key.key_id, NodeState(
                    beat.name[:200], tuple(beat.cameras), beat.version[:50], beat.pack,
                    beat.location, now, beat.backlog, beat.backlog_bytes, beat.oldest_pending,
                    offset, beat.dropped_crops, beat.dropped_reports), now)
                if first:
                    uow.audit(context, AuditDraft("edge.register", inputs | {
                        "version": beat.version, "pack": beat.pack}, {"key_id": key.key_id}))
                new_crops = _delta(beat.dropped_crops, before_crops)
                new_reports = _delta(beat.dropped_reports, before_reports)
                if new_crops or new_reports:
                    uow.audit(context, AuditDraft("edge.drops", inputs, {
                        "crops": new_crops, "reports": new_reports,
                        "total_crops": beat.dropped_crops,
                        "total_reports": beat.dropped_reports}))
        except Exception as exc:
            record_refusal(self._store, context, "edge.heartbeat", inputs, exc)
            raise
        return HeartbeatAnswer(now, offset, abs(offset) <= self.policy.clock_skew_s,
                               {c: self._camera_policy(c) for c in key.cameras})

    def _camera_policy(self, name: str) -> CameraPolicy:
        spec = self._cameras.find(name)
        if spec is None:
            return CameraPolicy(crops=True)
        kinds = set()
        with self._store.unit() as uow:
            for gallery in spec.galleries:
                try:
                    kinds.add(uow.galleries.get(gallery).kind.value)
                except NotFoundError:
                    continue  # a gallery removed since: nothing to ship crops for
        return CameraPolicy(crops=spec.keep_crops or WATCH_LIST in kinds)

    def nodes(self) -> list[NodeRecord]:
        """Every node that has called in, by name, with its status now."""
        now = self._clock()
        with self._store.unit() as uow:
            stored = uow.repo(NodeRepository).all()
        return [self._record(n, now) for n in stored]

    def _record(self, node: StoredNode, now: datetime) -> NodeRecord:
        state = node.state
        last = state.last_heartbeat
        offline = last is None or now - last > timedelta(seconds=self.policy.offline_after_s)
        offset = state.clock_offset_s
        oldest = state.oldest_pending
        lagging = (oldest is not None and last is not None
                   and last - oldest > timedelta(seconds=self.policy.lagging_after_s))
        return NodeRecord(node.key_id, state.name, state.cameras, state.version, state.pack,
                          state.location, node.first_contact, last,
                          "offline" if offline else "online", lagging, state.backlog,
                          state.backlog_bytes,
                          state.oldest_pending, offset,
                          offset is None or abs(offset) <= self.policy.clock_skew_s,
                          state.dropped_crops, state.dropped_reports, node.reports)


def _printable(field: str, text: str | None) -> None:
    """Refuse control and format characters (escape sequences, NUL, bidi overrides,
    zero-width marks) in what a node says of itself: operators read it in the console
    and in terminals, where such characters rewrite or disguise what is shown."""
    bad = [c for c in text or "" if unicodedata.category(c) in ("Cc", "Cf")]
    if bad:
        raise InvalidInputError(f"the node's {field} holds a control or format character "
                                f"({bad[0]!r}); use printable text")


def _delta(total: int, before: int) -> int:
    """New drops since the last heartbeat; a node whose outbox was wiped starts over."""
    return total - before if total >= before else total
