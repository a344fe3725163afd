"""Who acts, and what they leave on the audit trail.

Every use case that touches biometric data or oversight takes the caller as an
argument: no ambient "current user", no per-request clone of a service. The API makes
the caller from the request's key (one FastAPI dependency), the CLI from the OS user
(and the key in ``FRVS_API_KEY`` where it reviews or searches), and FRVS's own work
(camera runs, retention) acts as a named system principal.

A key belongs to a person, its *holder*: an id fixed when the key is created. Renaming
a key changes its label, never its holder, and the two-person rule counts holders, so
one person holding two keys is still one person.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from frvs.core.errors import FrvsError, InvalidInputError, InvalidRecordError

logger = logging.getLogger(__name__)


class Role(StrEnum):
    """One role per API key."""

    ADMIN = "admin"
    OPERATOR = "operator"
    INVESTIGATOR = "investigator"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    DEVICE = "device"
    VERIFIER = "verifier"
    """Identity checks at a counter (1:1 against an ID document) and nothing else."""


def normalise_holder(holder: str) -> str:
    """How holders compare: compatibility forms folded (NFKC: full-width letters are
    letters), what renders as nothing (zero-width spaces and joiners, variation
    selectors, Hangul fillers, the blank Braille pattern) removed,
    whitespace collapsed and case folded, so "Ａlice\u200b  B" == "alice b". Look-alike
    letters of other scripts (a Cyrillic "а") stay distinct: they are other names."""
    if any(unicodedata.category(c) == "Cc" for c in holder):
        raise InvalidInputError("a key holder cannot contain control characters")
    # Invisible characters go before NFKC too: a joiner between two letters would
    # otherwise stop them composing, leaving a spelling that differs only invisibly.
    seen = "".join(c for c in holder if not _renders_as_nothing(c))
    folded = unicodedata.normalize("NFKC", seen)
    seen = "".join(c for c in folded if not _renders_as_nothing(c))
    value = " ".join(seen.split()).casefold()
    if not value or len(value) > 200:
        raise InvalidInputError("a key holder is a person's id of 1-200 characters")
    return value


_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Characters Unicode files as letters or symbols that render as nothing (Hangul fillers,
the blank Braille pattern)."""

_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
"""Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): what a
renderer shows as nothing. ``unicodedata`` does not expose the property, and the
category alone misses some (the combining grapheme joiner and the variation selectors
are marks, not format characters)."""


def _renders_as_nothing(c: str) -> bool:
    code = ord(c)
    return (unicodedata.category(c) == "Cf" or c in _BLANK_LETTERS
            or any(low <= code <= high for low, high in _DEFAULT_IGNORABLE))


def visible(text: str | None) -> bool:
    """Whether ``text`` has a character a reader can see: a letter, digit, punctuation
    mark or symbol, not only spaces, zero-width or control characters ("\\u200b")."""
    return any(unicodedata.category(c)[0] in "LNPS" and not _renders_as_nothing(c)
               for c in text or "")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an API key (its id, role and holder), a person at the command line (OS
    user, with the key they presented, if any) or FRVS itself (``system``)."""

    kind: str
    name: str
    key_id: str | None = None
    role: Role | None = None
    holder: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("key", "cli", "system"):
            raise InvalidRecordError(f"actor kind must be key, cli or system, got {self.kind!r}")
        if self.kind == "key" and self.key_id is None:
            raise InvalidRecordError("a key actor needs a key id")
        if self.kind == "system" and self.key_id is not None:
            raise InvalidRecordError("the system acts without a key")

    @property
    def label(self) -> str:
        """``key:<id>``, ``cli:<user>`` or ``system:<name>``: how lists show the actor."""
        return f"key:{self.key_id}" if self.kind == "key" else f"{self.kind}:{self.name}"

    @property
    def person(self) -> str | None:
        """The person behind the actor, as the two-person rule counts people: the key's
        holder; None when no key vouches for a person (an OS user, the system)."""
        return self.holder if self.key_id is not None else None


@dataclass(frozen=True, slots=True)
class AuditContext:
    """The caller of a use case: the actor and, for searches, the case reference and
    purpose they declared."""

    actor: Actor
    case_reference: str | None = None
    purpose: str | None = None

    def require_case(self, action: str) -> None:
        """Searches need both a case reference and a purpose, each with at least one
        visible character (whitespace or zero-width characters alone are refused)."""
        if not visible(self.case_reference) or not visible(self.purpose):
            raise InvalidInputError(
                f"{action} needs a case reference and a purpose; they are written to the "
                "audit trail (API: case_reference and purpose fields or the X-Case-Reference "
                "and X-Purpose headers; CLI: the FRVS_CASE_REFERENCE and FRVS_PURPOSE variables)"
            )


def system_caller(name: str) -> AuditContext:
    """FRVS acting on its own, under a name that says which part of it acts."""
    return AuditContext(Actor("system", name))


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """An entry about to be appended: what was done, to whom, with what inputs and result."""

    action: str
    inputs: Mapping[str, Any]
    result: Mapping[str, Any]
    subjects: Sequence[str] = ()
    outcome: str = "ok"


class AuditLog(Protocol):
    """Appends an entry in a transaction of its own: for operations that write nothing
    else (searches, comparisons, downloads) and for refusals, whose own transaction
    never commits. ``frvs.storage.store.Store`` is one."""

    def audit(self, caller: AuditContext, draft: AuditDraft) -> None: ...


def record_refusal(log: AuditLog, caller: AuditContext, action: str,
                   inputs: Mapping[str, Any], error: BaseException, *,
                   subjects: Sequence[str] = ()) -> None:
    """Audit a refused (an FRVS error: bad image, no case reference, conflict) or failed
    operation with its reason. If even that append fails, it is logged and the caller
    still gets the original error, never a different one."""
    result: dict[str, Any]
    if isinstance(error, FrvsError):
        outcome, result = "refused", {"error": error.code, "message": error.message[:500]}
    else:
        outcome, result = "failed", {"error": type(error).__name__}
    try:
        log.audit(caller, AuditDraft(action, inputs, result, tuple(subjects), outcome))
    except Exception as exc:  # logged, not raised: the caller gets the original error
        logger.error("could not audit the refusal of %s: %s", action,
                     type(exc).__name__)


def subject_ref(gallery: str, external_id: str) -> str:
    """How entries name a subject: ``gallery/external id``."""
    return f"{gallery}/{external_id}"
