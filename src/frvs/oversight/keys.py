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
from collections.abc import Sequence

from frvs.core.caller import AuditDraft, normalise_holder, record_refusal
from frvs.core.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from frvs.core.times import Clock
from frvs.oversight.models import ApiKey, AuditContext, IssuedKey, Role
from frvs.oversight.repository import KeyRepository, StoredKey
from frvs.storage.store import Store, UnitOfWork
from frvs.video.repository import CameraRepository

TOKEN_PREFIX = "frvs_"
_TOKEN_BYTES = 32
MAX_CAMERAS = 100
"""The most cameras one device key may be bound to."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInputError("a key needs a name of 1-200 characters (who uses it)")
    return name


def _bound_cameras(uow: UnitOfWork, role: Role, cameras: Sequence[str]) -> list[str]:
    """The cameras a key of ``role`` is bound to: only device keys are bound, and only to
    registered cameras (sorted, each once)."""
    wanted = sorted({c.strip() for c in cameras})
    if not wanted:
        return []
    if role is not Role.DEVICE:
        raise InvalidInputError(f"only device keys are bound to cameras, not {role.value} keys")
    if len(wanted) > MAX_CAMERAS:
        raise InvalidInputError(f"a device key may be bound to at most {MAX_CAMERAS} cameras")
    known = uow.repo(CameraRepository).names_in(set(wanted))
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
                stored = uow.repo(KeyRepository).add(StoredKey(
                    key_id, name, role, token_hash(token), self._clock(), context.actor.label,
                    None, person, tuple(_bound_cameras(uow, role, cameras))))
                uow.audit(context, AuditDraft("key.create", inputs, {"key_id": key_id}))
                return IssuedKey(stored.key(), token)
        except Exception as exc:
            record_refusal(self._store, context, "key.create", inputs, exc)
            raise

    def create_first_admin(self, context: AuditContext, name: str = "first admin") -> IssuedKey:
        """The admin key of ``frvs init``; refused when an active admin key exists, so a
        second run never mints another admin key unnoticed."""
        with self._store.unit(write=True) as uow:
            if uow.repo(KeyRepository).has_active_admin():
                raise ConflictError(
                    "an active admin key already exists; 'frvs init' creates only the first. "
                    "Create another with 'frvs key create --role admin NAME' (audited), or "
                    "revoke the lost one with 'frvs key revoke KEY_ID' first")
        return self.create(context, Role.ADMIN, name)

    def has_active_admin(self) -> bool:
        with self._store.unit() as uow:
            return uow.repo(KeyRepository).has_active_admin()

    def all(self) -> list[ApiKey]:
        with self._store.unit() as uow:
            return [k.key() for k in uow.repo(KeyRepository).all()]

    def get(self, key_id: str) -> ApiKey:
        with self._store.unit() as uow:
            stored = uow.repo(KeyRepository).get(key_id)
        if stored is None:
            raise NotFoundError(f"no API key {key_id!r}")
        return stored.key()

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
                keys = uow.repo(KeyRepository)
                found = keys.get(key_id)
                if found is None:
                    raise NotFoundError(f"no API key {key_id!r}")
                stored = keys.update(
                    key_id, name=None if name is None else _checked_name(name),
                    cameras=None if cameras is None else _bound_cameras(uow, found.role,
                                                                        cameras))
                assert stored is not None  # read above, in this transaction
                uow.audit(context, AuditDraft("key.update", inputs, {
                    "before": {"name": found.name, "cameras": list(found.cameras)},
                    "after": {"name": stored.name, "cameras": list(stored.cameras)},
                    "role": stored.role.value, "holder": stored.holder}))
                return stored.key()
        except Exception as exc:
            record_refusal(self._store, context, "key.update", inputs, exc)
            raise

    def revoke(self, context: AuditContext, key_id: str) -> ApiKey:
        """Revoke a key at once; it answers 401 from the next request on."""
        inputs = {"key_id": key_id}
        try:
            with self._store.unit(write=True) as uow:
                keys = uow.repo(KeyRepository)
                found = keys.get(key_id)
                if found is None:
                    raise NotFoundError(f"no API key {key_id!r}")
                if found.revoked_at is not None:
                    raise ConflictError(f"key {key_id} was already revoked")
                revoked = keys.update(key_id, revoked_at=self._clock())
                assert revoked is not None  # read above, in this transaction
                key = revoked.key()
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
        with self._store.unit() as uow:
            stored = uow.repo(KeyRepository).by_token(digest)
        # The lookup is by a hash of a random token, so timing reveals nothing useful;
        # compare anyway, constant-time, in case a backend matched loosely.
        if stored is None or not hmac.compare_digest(stored.token_sha256, digest):
            raise AuthenticationError("unknown API key")
        if stored.revoked_at is not None:
            raise AuthenticationError(f"API key {stored.key_id} was revoked")
        return stored.key()



