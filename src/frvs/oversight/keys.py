"""API keys: one role each, stored only as the SHA-256 of the token.

Why SHA-256 and not bcrypt/argon2: those are slow on purpose to protect *low-entropy*
secrets (passwords) against guessing. A key here is 256 random bits from ``secrets``;
guessing it is infeasible whatever the hash costs, so a fast hash loses nothing, lets
the store look a key up by its hash with a unique index (no scan, no per-key salt), and
costs microseconds per request instead of ~100 ms of deliberately slow hashing.

The token is shown once, when it is made. Every key change is audited, in the same
transaction as the change.

A device key (an edge node's) is bound to the cameras it may report sightings for, named
when it is made and changed only by an admin (``update``, audited with the binding before
and after); a device key bound to no camera reports for none.

A key belongs to a person, its holder, named when the key is made (the key's name by
default) and never changed afterwards: renaming a key changes its label only. The
two-person rule counts holders, so an admin who mints two reviewer keys for one person
gives that person two keys, not two votes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from frvs.core.caller import AuditDraft, normalise_holder, record_refusal
from frvs.core.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from frvs.core.times import Clock
from frvs.oversight.models import ApiKey, AuditContext, IssuedKey, Role
from frvs.oversight.tables import ApiKeyRow
from frvs.storage.store import Store
from frvs.video.tables import CameraRow

TOKEN_PREFIX = "frvs_"
_TOKEN_BYTES = 32
MAX_CAMERAS = 100
"""The most cameras one device key may be bound to."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.key_id, row.name, Role(row.role), row.created_at, row.created_by,
                  row.revoked_at, _holder(row), tuple(row.cameras or ()))


def _holder(row: ApiKeyRow) -> str:
    # Compared under today's rule, so a key made before the rule learnt another invisible
    # character counts as the person it names. A holder that is nothing but such
    # characters stays as it was stored: it was always someone else.
    try:
        return normalise_holder(row.holder or row.name)
    except InvalidInputError:
        return row.holder or row.name


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInputError("a key needs a name of 1-200 characters (who uses it)")
    return name


def _bound_cameras(session: Session, role: Role, cameras: Sequence[str]) -> list[str]:
    """The cameras a key of ``role`` is bound to: only device keys are bound, and only to
    registered cameras (sorted, each once)."""
    wanted = sorted({c.strip() for c in cameras})
    if not wanted:
        return []
    if role is not Role.DEVICE:
        raise InvalidInputError(f"only device keys are bound to cameras, not {role.value} keys")
    if len(wanted) > MAX_CAMERAS:
        raise InvalidInputError(f"a device key may be bound to at most {MAX_CAMERAS} cameras")
    known = set(session.scalars(select(CameraRow.name).where(CameraRow.name.in_(wanted))))
    missing = [c for c in wanted if c not in known]
    if missing:
        raise NotFoundError(f"no camera {', '.join(repr(c) for c in missing)}; register it "
                            "first ('frvs camera add NAME SOURCE', 'edge' for an edge node)")
    return wanted


class KeyService:
    """Create, list, revoke and authenticate API keys."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        self._store.open()
        with self._store.database.session(write=write) as session:
            yield session

    def create(self, context: AuditContext, role: Role, name: str,
               holder: str | None = None, cameras: Sequence[str] = ()) -> IssuedKey:
        """A new key with ``role`` for the person ``holder`` (the name when not given),
        a device key bound to ``cameras``; the returned token is never stored nor shown
        again."""
        inputs: dict[str, object] = {"role": role.value, "name": name.strip(),
                                     "holder": holder}
        if cameras:
            inputs["cameras"] = sorted(set(cameras))
        try:
            name = _checked_name(name)
            person = normalise_holder(holder if holder is not None else name)
            inputs["holder"] = person
            token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
            key_id = "k_" + secrets.token_hex(6)
            with self._store.unit(write=True) as uow:
                row = ApiKeyRow(key_id=key_id, name=name, role=role.value, holder=person,
                                token_sha256=token_hash(token), created_at=self._clock(),
                                created_by=context.actor.label,
                                cameras=_bound_cameras(uow.session, role, cameras) or None)
                uow.session.add(row)
                uow.session.flush()
                uow.audit(context, AuditDraft("key.create", inputs, {"key_id": key_id}))
                return IssuedKey(_key(row), token)
        except Exception as exc:
            record_refusal(self._store, context, "key.create", inputs, exc)
            raise

    def create_first_admin(self, context: AuditContext, name: str = "first admin") -> IssuedKey:
        """The admin key of ``frvs init``; refused when an active admin key exists, so a
        second run never mints another admin key unnoticed."""
        with self._session(write=True) as session:
            if self._active_admins(session):
                raise ConflictError(
                    "an active admin key already exists; 'frvs init' creates only the first. "
                    "Create another with 'frvs key create --role admin NAME' (audited), or "
                    "revoke the lost one with 'frvs key revoke KEY_ID' first")
        return self.create(context, Role.ADMIN, name)

    @staticmethod
    def _active_admins(session: Session) -> list[ApiKeyRow]:
        return list(session.scalars(select(ApiKeyRow).where(
            ApiKeyRow.role == Role.ADMIN.value, ApiKeyRow.revoked_at.is_(None))))

    def has_active_admin(self) -> bool:
        with self._session() as session:
            return bool(self._active_admins(session))

    def all(self) -> list[ApiKey]:
        with self._session() as session:
            return [_key(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def get(self, key_id: str) -> ApiKey:
        with self._session() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
            if row is None:
                raise NotFoundError(f"no API key {key_id!r}")
            return _key(row)

    def rename(self, context: AuditContext, key_id: str, name: str) -> ApiKey:
        """Change a key's label (audited). Its role, token and holder stay: renaming a
        key never makes it somebody else."""
        return self.update(context, key_id, name=name)

    def update(self, context: AuditContext, key_id: str, *, name: str | None = None,
               cameras: Sequence[str] | None = None) -> ApiKey:
        """Change a key's label and, for a device key, the cameras it may report for
        (``[]``: none), in one transaction with its ``key.update`` entry (the name and
        binding before and after). Role, token and holder never change."""
        inputs: dict[str, object] = {"key_id": key_id}
        if name is not None:
            inputs["name"] = name.strip()
        if cameras is not None:
            inputs["cameras"] = sorted(set(cameras))
        try:
            if name is None and cameras is None:
                raise InvalidInputError("nothing to change: give a name or the cameras")
            with self._store.unit(write=True) as uow:
                row = uow.session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
                if row is None:
                    raise NotFoundError(f"no API key {key_id!r}")
                before = {"name": row.name, "cameras": list(row.cameras or [])}
                if name is not None:
                    row.name = _checked_name(name)
                if cameras is not None:
                    row.cameras = _bound_cameras(uow.session, Role(row.role), cameras) or None
                after = {"name": row.name, "cameras": list(row.cameras or [])}
                uow.audit(context, AuditDraft("key.update", inputs, {
                    "before": before, "after": after, "role": row.role,
                    "holder": row.holder}))
                return _key(row)
        except Exception as exc:
            record_refusal(self._store, context, "key.update", inputs, exc)
            raise

    def revoke(self, context: AuditContext, key_id: str) -> ApiKey:
        """Revoke a key at once; it answers 401 from the next request on."""
        inputs = {"key_id": key_id}
        try:
            with self._store.unit(write=True) as uow:
                row = uow.session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
                if row is None:
                    raise NotFoundError(f"no API key {key_id!r}")
                if row.revoked_at is not None:
                    raise ConflictError(f"key {key_id} was already revoked")
                row.revoked_at = self._clock()
                key = _key(row)
                uow.audit(context, AuditDraft("key.revoke", inputs, {
                    "role": key.role.value, "holder": key.holder}))
                return key
        except Exception as exc:
            record_refusal(self._store, context, "key.revoke", inputs, exc)
            raise

    def authenticate(self, token: str) -> ApiKey:
        """The active key whose token this is; ``AuthenticationError`` otherwise."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise AuthenticationError("unknown API key")
        digest = token_hash(token)
        with self._session() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.token_sha256 == digest))
        # The lookup is by a hash of a random token, so timing reveals nothing useful;
        # compare anyway, constant-time, in case a backend matched loosely.
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            raise AuthenticationError("unknown API key")
        if row.revoked_at is not None:
            raise AuthenticationError(f"API key {row.key_id} was revoked")
        return _key(row)



