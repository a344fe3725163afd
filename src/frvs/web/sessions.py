"""Console sessions: an HTTP-only, SameSite=Strict cookie that the server maps to the
API key a person signed in with.

The key itself never reaches the page's JavaScript (the cookie is HTTP-only and holds a
random session id, not the key), so a script injected into a page cannot read it. The
API's auth dependency asks :class:`ConsoleSessions` for the key behind the cookie and
then authenticates that key exactly as a bearer token, so revoking a key ends its
console sessions on the next request.

CSRF: the cookie is ``SameSite=Strict`` (another site's page cannot make the browser send
it), and on top of that every state-changing request authenticated by the cookie must
carry the ``X-FRVS-Console`` header (which a cross-site form cannot set, and a
cross-site ``fetch`` cannot send without a CORS preflight FRVS never grants) and, when
the browser sends one, an ``Origin`` equal to the server's own.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from frvs.core.errors import PermissionDeniedError
from frvs.oversight.models import Role

COOKIE = "frvs_console"
CSRF_HEADER = "X-FRVS-Console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_IDLE_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """Who signed in: the key's token (kept server-side only), id, name and role."""

    token: str
    key_id: str
    name: str
    role: Role


def same_origin(connection: HTTPConnection) -> bool:
    """Whether a request comes from the console's own pages.

    Browsers say so in ``Sec-Fetch-Site``, which pages cannot forge; FRVS's
    ``Referrer-Policy: no-referrer`` makes their ``Origin`` the opaque ``null``, so the
    origin is compared only for clients that send no fetch metadata.
    """
    site = connection.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


class ConsoleSessions:
    """Session ids -> signed-in keys, in this process's memory, expiring when idle.

    In memory on purpose: a session is a convenience over a key the person still holds;
    a restart signs everyone out, and no session secret is ever written to disk.
    """

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._idle = idle_seconds
        self._clock = clock
        self._sessions: dict[str, tuple[ConsoleSession, float]] = {}
        self._lock = threading.Lock()

    def open(self, session: ConsoleSession) -> str:
        """A new session id for ``session``."""
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= MAX_SESSIONS:  # oldest first: dicts keep order
                del self._sessions[next(iter(self._sessions))]
            self._sessions[sid] = (session, now)
        return sid

    def get(self, sid: str | None) -> ConsoleSession | None:
        """The live session with id ``sid`` (its idle timer restarts), else None."""
        if not sid:
            return None
        now = self._clock()
        with self._lock:
            found = self._sessions.get(sid)
            if found is None or now - found[1] > self._idle:
                self._sessions.pop(sid, None)
                return None
            self._sessions[sid] = (found[0], now)
            return found[0]

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def _expire(self, now: float) -> None:
        stale = [sid for sid, (_, seen) in self._sessions.items() if now - seen > self._idle]
        for sid in stale:
            del self._sessions[sid]

    def of(self, connection: HTTPConnection) -> ConsoleSession | None:
        """The session the request's cookie names, if any."""
        return self.get(connection.cookies.get(COOKIE))

    def token_for(self, connection: HTTPConnection) -> str | None:
        """The API key behind the request's console cookie, for the API's auth; None
        without a live session. A state-changing request without the console header or
        from another origin is refused (403), whatever its cookie."""
        session = self.of(connection)
        if session is None:
            return None
        method = connection.scope.get("method", "GET")
        if method not in SAFE_METHODS and (
                connection.headers.get(CSRF_HEADER) != "1" or not same_origin(connection)):
            raise PermissionDeniedError(
                f"a console request that changes data must carry the {CSRF_HEADER} header "
                "and come from the console's own origin")
        return session.token
