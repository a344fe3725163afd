"""Callers of use cases in tests: a local person at the command line, and people holding
API keys (what the two-person rule counts)."""

from __future__ import annotations

from frvs.app import Application
from frvs.core.caller import Actor, AuditContext, Role

LOCAL = AuditContext(Actor("cli", "test"))
"""A person at the command line without a key: enough for every use case except
reviews, which count key holders."""


def local(case_reference: str | None = None, purpose: str | None = None) -> AuditContext:
    """The local test caller, with a case reference and purpose when a search records them."""
    return AuditContext(LOCAL.actor, case_reference, purpose)


def key_caller(app: Application, role: Role, name: str, holder: str | None = None, *,
               case_reference: str | None = None,
               purpose: str | None = None) -> tuple[str, AuditContext]:
    """A new key of ``role`` called ``name`` for the person ``holder`` (the name when not
    given), created by the local caller: its token, and the caller its requests act as."""
    issued = app.oversight.keys.create(LOCAL, role, name, holder)
    return issued.token, AuditContext(issued.key.actor(), case_reference, purpose)
