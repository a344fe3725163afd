"""Oversight's repositories: the only code that turns API key, edge node and edge report
rows into records and back (reached as ``uow.repo(KeyRepository)`` and so on, inside the
caller's transaction). The audit trail's own rows are written by ``oversight/audit.py``,
which owns the chain and its lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from frvs.core.caller import normalise_holder
from frvs.core.errors import InvalidInputError
from frvs.oversight.edge_tables import EdgeNodeRow, EdgeReportRow
from frvs.oversight.models import ApiKey, Role
from frvs.oversight.tables import ApiKeyRow
from frvs.video.tables import SightingRow


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An API key row as stored: ``holder`` is None for keys made before holders."""

    key_id: str
    name: str
    role: Role
    token_sha256: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    holder: str | None
    cameras: tuple[str, ...]

    def key(self) -> ApiKey:
        return ApiKey(self.key_id, self.name, self.role, self.created_at, self.created_by,
                      self.revoked_at, self._person(), self.cameras)

    def _person(self) -> str:
        # Compared under today's rule, so a key made before the rule learnt another
        # invisible character counts as the person it names. A holder that is nothing but
        # such characters stays as it was stored: it was always someone else.
        try:
            return normalise_holder(self.holder or self.name)
        except InvalidInputError:
            return self.holder or self.name


def _stored_key(row: ApiKeyRow) -> StoredKey:
    return StoredKey(row.key_id, row.name, Role(row.role), row.token_sha256, row.created_at,
                     row.created_by, row.revoked_at, row.holder, tuple(row.cameras or ()))


class KeyRepository:
    """API keys, by key id or token digest."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, key: StoredKey) -> StoredKey:
        self._s.add(ApiKeyRow(key_id=key.key_id, name=key.name, role=key.role.value,
                              holder=key.holder, token_sha256=key.token_sha256,
                              created_at=key.created_at, created_by=key.created_by,
                              revoked_at=key.revoked_at, cameras=list(key.cameras) or None))
        self._s.flush()
        return key

    def has_active_admin(self) -> bool:
        return self._s.scalar(select(ApiKeyRow.id).where(
            ApiKeyRow.role == Role.ADMIN.value, ApiKeyRow.revoked_at.is_(None)
        ).limit(1)) is not None

    def all(self) -> list[StoredKey]:
        return [_stored_key(r) for r in self._s.scalars(select(ApiKeyRow)
                                                         .order_by(ApiKeyRow.id))]

    def get(self, key_id: str) -> StoredKey | None:
        row = self._s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
        return None if row is None else _stored_key(row)

    def by_token(self, digest: str) -> StoredKey | None:
        """The key whose token has the SHA-256 ``digest``."""
        row = self._s.scalar(select(ApiKeyRow).where(ApiKeyRow.token_sha256 == digest))
        return None if row is None else _stored_key(row)

    def update(self, key_id: str, *, name: str | None = None,
               cameras: Sequence[str] | None = None,
               revoked_at: datetime | None = None) -> StoredKey | None:
        """Change a key's label, camera binding (``[]``: none) or revocation time: the
        key as changed (None: no such key)."""
        row = self._s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
        if row is None:
            return None
        if name is not None:
            row.name = name
        if cameras is not None:
            row.cameras = list(cameras) or None
        if revoked_at is not None:
            row.revoked_at = revoked_at
        return _stored_key(row)


@dataclass(frozen=True, slots=True)
class NodeState:
    """What the centre keeps of a node's last heartbeat."""

    name: str
    cameras: tuple[str, ...]
    version: str | None
    pack: str | None
    location: str | None
    last_heartbeat: datetime | None
    backlog: int
    backlog_bytes: int
    oldest_pending: datetime | None
    clock_offset_s: float | None
    dropped_crops: int
    dropped_reports: int


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A node as stored: its device key, first contact, last state and reports accepted."""

    key_id: str
    first_contact: datetime
    state: NodeState
    reports: int


def _state(row: EdgeNodeRow) -> NodeState:
    return NodeState(row.name, tuple(row.cameras), row.version, row.pack, row.location,
                     row.last_heartbeat, row.backlog, row.backlog_bytes, row.oldest_pending,
                     row.clock_offset_s, row.dropped_crops, row.dropped_reports)


class NodeRepository:
    """The edge node registry and the reports the centre accepted from nodes."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def state(self, key_id: str) -> NodeState | None:
        """The node's last state (None: it never called in)."""
        row = self._s.get(EdgeNodeRow, key_id)
        return None if row is None else _state(row)

    def save(self, key_id: str, state: NodeState, now: datetime) -> None:
        """Store the node's state, registering it (first contact ``now``) if new."""
        row = self._s.get(EdgeNodeRow, key_id)
        if row is None:
            row = EdgeNodeRow(key_id=key_id, first_contact=now, reports=0)
        row.name, row.cameras = state.name, list(state.cameras)
        row.version, row.pack, row.location = state.version, state.pack, state.location
        row.last_heartbeat, row.backlog = state.last_heartbeat, state.backlog
        row.backlog_bytes, row.oldest_pending = state.backlog_bytes, state.oldest_pending
        row.clock_offset_s = state.clock_offset_s
        row.dropped_crops, row.dropped_reports = state.dropped_crops, state.dropped_reports
        self._s.add(row)

    def all(self) -> list[StoredNode]:
        """Every node, by name, with how many of its reports are kept."""
        counts = dict(self._s.execute(select(
            EdgeReportRow.node, func.count()).group_by(EdgeReportRow.node)).all())
        return [StoredNode(r.key_id, r.first_contact, _state(r), int(counts.get(r.key_id, 0)))
                for r in self._s.scalars(select(EdgeNodeRow).order_by(EdgeNodeRow.name))]


@dataclass(frozen=True, slots=True)
class EdgeReportKey:
    """A report's idempotency key: the node's device key, camera, track and start."""

    node: str
    camera: str
    track_id: int
    first_seen: datetime


@dataclass(frozen=True, slots=True)
class AcceptedReport:
    """What the centre stored for a report: its sighting and alert (ids only)."""

    key: EdgeReportKey
    sighting_id: int | None
    alert_id: int | None


class EdgeReportRepository:
    """Reports the centre accepted, by idempotency key."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, report: AcceptedReport, received_at: datetime) -> None:
        """Store the key (a unique constraint refuses a second one at commit)."""
        key = report.key
        self._s.add(EdgeReportRow(node=key.node, camera=key.camera, track_id=key.track_id,
                                  first_seen=key.first_seen, sighting_id=report.sighting_id,
                                  alert_id=report.alert_id, received_at=received_at))

    def flush(self) -> None:
        """Send the pending inserts now, so a duplicate key fails here."""
        self._s.flush()

    def of(self, node: str, keys: set[EdgeReportKey]) -> list[AcceptedReport]:
        """The accepted reports of ``node`` among ``keys`` (a superset may be read: the
        caller keeps exact matches)."""
        if not keys:
            return []
        rows = self._s.scalars(select(EdgeReportRow).where(
            EdgeReportRow.node == node,
            EdgeReportRow.camera.in_({k.camera for k in keys}),
            EdgeReportRow.track_id.in_({k.track_id for k in keys}),
            EdgeReportRow.first_seen.in_({k.first_seen for k in keys})))
        return [AcceptedReport(EdgeReportKey(r.node, r.camera, r.track_id, r.first_seen),
                               r.sighting_id, r.alert_id) for r in rows]

    def forget_expired(self) -> None:
        """Delete the keys of reports whose sighting is gone (expired or erased): a
        replay of one is refused as older than the camera's retention anyway."""
        self._s.execute(delete(EdgeReportRow).where(
            EdgeReportRow.sighting_id.not_in(select(SightingRow.id))))
