"""API keys: one role each, stored only as the SHA-256 of the token.

Why SHA-256 and not bcrypt/argon2: those are slow on purpose to protect *low-entropy*
secrets (passwords) against guessing. A key here is 256 random bits from ``secrets``;
guessing it is infeasible whatever the hash costs, so a fast hash loses nothing, lets
the store look a key up by its hash with a unique index (no scan, no per-key salt), and
costs microseconds per request instead of ~100 ms of deliberately slow hashing.

The token is shown once, when it is made. Every key change is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from frvs.core.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from frvs.galleries.ports import Clock
from frvs.oversight.audit import AuditTrail
from frvs.oversight.models import ApiKey, AuditContext, IssuedKey, Role
from frvs.oversight.tables import ApiKeyRow
from frvs.storage.store import Store

TOKEN_PREFIX = "frvs_"
_TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.key_id, row.name, Role(row.role), row.created_at, row.created_by,
                  row.revoked_at)


class KeyService:
    """Create, list, revoke and authenticate API keys."""

    def __init__(self, store: Store, trail: AuditTrail, clock: Clock) -> None:
        self._store = store
        self._trail = trail
        self._clock = clock

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        self._store.open()
        with self._store.database.session(write=write) as session:
            yield session

    def create(self, context: AuditContext, role: Role, name: str) -> IssuedKey:
        """A new key with ``role``; the returned token is never stored nor shown again."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInputError("a key needs a name of 1-200 characters (who uses it)")
        inputs = {"role": role.value, "name": name}
        with self._trail.operation(context, "key.create", inputs) as rec:
            issued = self._insert(role, name, context)
            rec.result = {"key_id": issued.key.key_id}
        return issued

    def _insert(self, role: Role, name: str, context: AuditContext) -> IssuedKey:
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        key_id = "k_" + secrets.token_hex(6)
        with self._session(write=True) as session:
            row = ApiKeyRow(key_id=key_id, name=name, role=role.value,
                            token_sha256=token_hash(token), created_at=self._clock(),
                            created_by=context.actor.label)
            session.add(row)
            session.flush()
            return IssuedKey(_key(row), token)

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
        """Change who or what a key is said to belong to (audited; role and token stay)."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInputError("a key needs a name of 1-200 characters (who uses it)")
        inputs = {"key_id": key_id, "name": name}
        with (self._trail.operation(context, "key.update", inputs),
              self._session(write=True) as session):
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
            if row is None:
                raise NotFoundError(f"no API key {key_id!r}")
            row.name = name
            return _key(row)

    def revoke(self, context: AuditContext, key_id: str) -> ApiKey:
        """Revoke a key at once; it answers 401 from the next request on."""
        with self._trail.operation(context, "key.revoke", {"key_id": key_id}) as rec:
            with self._session(write=True) as session:
                row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
                if row is None:
                    raise NotFoundError(f"no API key {key_id!r}")
                if row.revoked_at is not None:
                    raise ConflictError(f"key {key_id} was already revoked")
                row.revoked_at = self._clock()
                key = _key(row)
            rec.result = {"role": key.role.value}
        return key

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



