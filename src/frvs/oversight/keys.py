"""API keys: one role each, stored only as the SHA-256 of the token.

Why SHA-256 and not bcrypt/argon2: those are slow on purpose to protect *low-entropy*
secrets (passwords) against guessing. A key here is 256 random bits from ``secrets``;
guessing it is infeasible whatever the hash costs, so a fast hash loses nothing, lets
the store look a key up by its hash with a unique index (no scan, no per-key salt), and
costs microseconds per request instead of ~100 ms of deliberately slow hashing.

The token is shown once, when it is made. Every key change is audited, in the same
transaction as the change.

A key belongs to a person, its holder, named when the key is made (the key's name by
default) and never changed afterwards: renaming a key changes its label only. The
two-person rule counts holders, so an admin who mints two reviewer keys for one person
gives that person two keys, not two votes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from frvs.core.caller import AuditDraft, normalise_holder, record_refusal
from frvs.core.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from frvs.galleries.ports import Clock
from frvs.oversight.models import ApiKey, AuditContext, IssuedKey, Role
from frvs.oversight.tables import ApiKeyRow
from frvs.storage.store import Store

TOKEN_PREFIX = "frvs_"
_TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.key_id, row.name, Role(row.role), row.created_at, row.created_by,
                  row.revoked_at, row.holder or normalise_holder(row.name))


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
               holder: str | None = None) -> IssuedKey:
        """A new key with ``role`` for the person ``holder`` (the name when not given);
        the returned token is never stored nor shown again."""
        inputs = {"role": role.value, "name": name.strip(), "holder": holder}
        try:
            name = name.strip()
            if not name or len(name) > 200:
                raise InvalidInputError("a key needs a name of 1-200 characters (who uses it)")
            person = normalise_holder(holder if holder is not None else name)
            inputs["holder"] = person
            token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
            key_id = "k_" + secrets.token_hex(6)
            with self._store.unit(write=True) as uow:
                row = ApiKeyRow(key_id=key_id, name=name, role=role.value, holder=person,
                                token_sha256=token_hash(token), created_at=self._clock(),
                                created_by=context.actor.label)
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
        inputs = {"key_id": key_id, "name": name.strip()}
        try:
            name = name.strip()
            if not name or len(name) > 200:
                raise InvalidInputError("a key needs a name of 1-200 characters (who uses it)")
            with self._store.unit(write=True) as uow:
                row = uow.session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
                if row is None:
                    raise NotFoundError(f"no API key {key_id!r}")
                before = row.name
                row.name = name
                uow.audit(context, AuditDraft("key.update", inputs,
                                              {"before": before, "holder": row.holder}))
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



