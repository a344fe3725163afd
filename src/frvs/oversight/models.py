"""Records of oversight: roles, API keys, actors, audit entries and their verification.

Every record is frozen and validated where it is made; the audit trail's hash covers
exactly ``AuditEntry.hashed_content()`` plus the previous entry's hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from frvs.core.caller import Actor, AuditContext, Role

__all__ = [
    "Actor",
    "ApiKey",
    "AuditContext",
    "AuditEntry",
    "AuditProblem",
    "AuditVerification",
    "Erased",
    "IssuedKey",
    "ProblemKind",
    "Role",
    "canonical_json",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry ever appended."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: never the token, only its SHA-256."""

    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    holder: str = ""
    """The person the key belongs to, fixed at creation (``normalise_holder``)."""
    cameras: tuple[str, ...] = ()
    """The cameras a device key may report sightings for (none: it reports for none)."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def actor(self) -> Actor:
        """The actor this key's calls are recorded under."""
        return Actor("key", self.name, self.key_id, self.role, self.holder)

    def as_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id, "name": self.name, "role": self.role.value,
            "holder": self.holder,
            "created_at": self.created_at.isoformat(), "created_by": self.created_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "cameras": list(self.cameras),
        }


@dataclass(frozen=True, slots=True)
class Erased:
    """What erasing a subject removed from one concept's records: how many records, and
    the files to delete once the erasure has committed."""

    count: int
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created, with its token: the only moment the token exists in clear."""

    key: ApiKey
    token: str


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8: the same bytes on every backend and Python."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit trail. ``inputs`` and ``result`` are summaries: hashes,
    ids and counts, never images or templates."""

    seq: int
    at: datetime
    actor: Actor
    action: str
    case_reference: str | None
    purpose: str | None
    subjects: tuple[str, ...]
    inputs: Mapping[str, Any]
    result: Mapping[str, Any]
    outcome: str
    prev_hash: str
    hash: str = ""

    def hashed_content(self) -> dict[str, Any]:
        """What the hash covers. ``seq`` is left out on purpose: the order is protected
        by the chain itself, so a swap shows as *reordered* rather than as two edits."""
        actor: dict[str, Any] = {"kind": self.actor.kind, "name": self.actor.name,
                                 "key_id": self.actor.key_id,
                                 "role": self.actor.role.value if self.actor.role else None}
        if self.actor.holder is not None:  # entries from before holders hash as they did
            actor["holder"] = self.actor.holder
        return {
            "at": self.at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": self.action, "case_reference": self.case_reference,
            "purpose": self.purpose, "subjects": list(self.subjects),
            "inputs": dict(self.inputs), "result": dict(self.result), "outcome": self.outcome,
        }

    def compute_hash(self) -> str:
        payload = canonical_json(self.hashed_content()) + self.prev_hash
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, **self.hashed_content(), "actor_label": self.actor.label,
                "prev_hash": self.prev_hash, "hash": self.hash}


class ProblemKind(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    REORDERED = "reordered"
    INDEX = "index"
    """The subject index (``audit_subjects``, not hashed) disagrees with an entry."""


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One place where the stored trail disagrees with its own chain, its base, its subject
    index or an anchor kept outside the database."""

    kind: ProblemKind
    seq: int
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "seq": self.seq, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The outcome of walking the chain: entries checked, problems found, the head."""

    entries: int
    first_seq: int
    head_seq: int
    head_hash: str
    problems: tuple[AuditProblem, ...]
    anchors: int = 0
    """Anchors kept outside the database that were checked."""
    problems_omitted: int = 0
    """Problems found beyond the first ``MAX_PROBLEMS``, counted but not listed."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.problems_omitted

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "entries": self.entries, "first_seq": self.first_seq,
                "head_seq": self.head_seq, "head_hash": self.head_hash,
                "anchors": self.anchors, "problems": [p.as_dict() for p in self.problems],
                "problems_omitted": self.problems_omitted}
