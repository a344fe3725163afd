"""Who is calling: ``Authorization: Bearer KEY`` -> a principal with one role.

Routes declare the roles they allow with ``Allow(...)``; ``admin`` is allowed
everywhere (it runs the installation; separation of duties comes from handing people
keys of the narrower roles). No key, an unknown key or a revoked key is 401; a valid
key of a role the route does not allow is 403. Searches also carry a case reference
and a purpose (fields or the ``X-Case-Reference`` / ``X-Purpose`` headers), which the
audited services require and record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from frvs.api.deps import AppDep
from frvs.core.caller import record_refusal
from frvs.core.errors import AuthenticationError, PermissionDeniedError
from frvs.oversight.models import ApiKey, AuditContext, Role


class CookieSessions(Protocol):
    """The web console's sessions (``frvs.web.sessions``), put on ``app.state`` when the
    console is mounted, so the API accepts its cookie without importing the console."""

    def token_for(self, connection: Request) -> str | None: ...


def _console_token(request: Request) -> str | None:
    """The key behind a console session cookie; None without the console or a session."""
    sessions: CookieSessions | None = getattr(request.app.state, "console_sessions", None)
    return None if sessions is None else sessions.token_for(request)


_bearer = HTTPBearer(auto_error=False, description="An FRVS API key: 'frvs init' makes the "
                     "first (admin), 'frvs key create' or POST /v1/keys the others.")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and the audit context their calls are recorded under: the
    one way a route knows who acts, passed explicitly to every use case it calls."""

    key: ApiKey
    context: AuditContext

    @property
    def role(self) -> Role:
        return self.key.role

    def with_case(self, case_reference: str | None, purpose: str | None) -> Principal:
        """The same caller with a declared case reference and purpose (fields win over
        headers when both are given)."""
        return replace(self, context=replace(
            self.context, case_reference=case_reference or self.context.case_reference,
            purpose=purpose or self.context.purpose))


async def authenticate(
    app: AppDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_case_reference: Annotated[str | None, Header(
        description="Case reference of a search (recorded in the audit trail).",
        max_length=200)] = None,
    x_purpose: Annotated[str | None, Header(
        description="Purpose of a search (recorded in the audit trail).", max_length=500)
    ] = None,
) -> Principal:
    """The caller's key; 401 without a valid, unrevoked one. The web console's session
    cookie stands for the key it was opened with (bearer first when both are sent)."""
    token = credentials.credentials if credentials is not None else _console_token(request)
    if token is None:
        raise AuthenticationError("send an API key as 'Authorization: Bearer KEY'")
    key = await run_in_threadpool(app.oversight.keys.authenticate, token)
    return Principal(key, AuditContext(key.actor(), x_case_reference or None,
                                       x_purpose or None))


class Allow:
    """A dependency admitting the given roles (and admin); 403 for any other role."""

    def __init__(self, *roles: Role, admin: bool = True) -> None:
        self.roles = frozenset(roles) | ({Role.ADMIN} if admin else frozenset())

    async def __call__(self, app: AppDep, request: Request,
                       principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            error = PermissionDeniedError(
                f"keys of role {principal.role.value} may not do this (allowed: {allowed})")
            # A key trying what its role may not is worth an auditor's eye.
            await run_in_threadpool(record_refusal, app.oversight.trail, principal.context,
                                    "access",
                                    {"method": request.method, "route": request.url.path},
                                    error)
            raise error
        return principal


ALL_PEOPLE = (Role.OPERATOR, Role.INVESTIGATOR, Role.REVIEWER, Role.AUDITOR)

AnyRole = Annotated[Principal, Depends(Allow(*ALL_PEOPLE, Role.DEVICE, Role.VERIFIER))]
Operator = Annotated[Principal, Depends(Allow(Role.OPERATOR))]
GalleryReader = Annotated[Principal, Depends(Allow(Role.OPERATOR, Role.INVESTIGATOR,
                                                    Role.REVIEWER))]
FaceUser = Annotated[Principal, Depends(Allow(Role.OPERATOR, Role.INVESTIGATOR,
                                               Role.REVIEWER))]
Investigator = Annotated[Principal, Depends(Allow(Role.INVESTIGATOR))]
Reviewer = Annotated[Principal, Depends(Allow(Role.REVIEWER))]
ReviewerOnly = Annotated[Principal, Depends(Allow(Role.REVIEWER, admin=False))]
"""Reviews: the admin who issues keys does not review with them (separation of duties)."""
Auditor = Annotated[Principal, Depends(Allow(Role.AUDITOR))]
Admin = Annotated[Principal, Depends(Allow())]
Device = Annotated[Principal, Depends(Allow(Role.DEVICE))]
Watcher = Annotated[Principal, Depends(Allow(Role.OPERATOR, Role.REVIEWER))]
Verifier = Annotated[Principal, Depends(Allow(Role.VERIFIER))]
"""Identity checks at a counter, and nothing else."""
