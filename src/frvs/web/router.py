"""The console's routes: sign-in and sign-out, one page per concept, static assets.

The routes are left out of the OpenAPI document (they serve HTML to people, not an API
to integrators), so the API's schema, its authorisation matrix and its fuzzing cover
exactly the ``/v1`` routes the pages call.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from frvs.app import Application
from frvs.core.errors import AuthenticationError
from frvs.web.pages import BY_SLUG, CONSOLE_ROLES, Page, home_for, pages_for
from frvs.web.sessions import COOKIE, ConsoleSession, ConsoleSessions, same_origin

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# Only FRVS's own files: no inline script, no third-party origin, no framing.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")


def _sessions(request: Request) -> ConsoleSessions:
    sessions = request.app.state.console_sessions
    assert isinstance(sessions, ConsoleSessions)
    return sessions


def _application(request: Request) -> Application:
    app = request.app.state.frvs
    assert isinstance(app, Application)
    return app


def _html(request: Request, name: str, context: dict[str, object],
          status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    return response


def _safe_next(target: str | None) -> str | None:
    """Only a console path of this server: never an open redirect."""
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return None


router = APIRouter(include_in_schema=False)


def _sign_in_page(request: Request, error: str | None = None, status_code: int = 200,
                  target: str | None = None) -> HTMLResponse:
    return _html(request, "signin.html", {"error": error, "next": _safe_next(target),
                                          "session": None, "pages": []}, status_code)


async def _live_session(request: Request) -> ConsoleSession | None:
    """The request's session while its key is still valid. A session whose key was
    revoked is closed here, so the page that follows is the sign-in page and not a
    redirect back to a console page whose API calls fail (a loop)."""
    sessions = _sessions(request)
    session = sessions.of(request)
    if session is None:
        return None
    try:
        await run_in_threadpool(_application(request).oversight.keys.authenticate,
                                session.token)
    except AuthenticationError:
        sessions.close(request.cookies.get(COOKIE))
        logger.info("console: key %s is no longer valid; its session is closed",
                    session.key_id)
        return None
    return session


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, next: str | None = None) -> Response:
    """The sign-in page, or the person's first page when already signed in."""
    session = await _live_session(request)
    if session is not None:
        return RedirectResponse(_safe_next(next) or home_for(session.role), status_code=303)
    if COOKIE not in request.cookies:
        return _sign_in_page(request, target=next)
    response = _sign_in_page(request, "Your session has ended (the key was revoked, or the "
                             "session expired or the server restarted). Sign in again.",
                             target=next)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, key: Annotated[str, Form(max_length=500)],
                  next: Annotated[str | None, Form(max_length=500)] = None,
                  ) -> Response:
    """Check the key like any API call would, then open a session for it."""
    if not same_origin(request):
        return _sign_in_page(request, "Sign-in must come from this console.", 403)
    app = _application(request)
    try:
        api_key = await run_in_threadpool(app.oversight.keys.authenticate, key.strip())
    except AuthenticationError:
        return _sign_in_page(request, "That key is not valid (unknown or revoked).", 200, next)
    if api_key.role not in CONSOLE_ROLES:
        return _sign_in_page(request, f"Keys of role {api_key.role.value} cannot use the "
                             "console.", 200, next)
    sid = _sessions(request).open(ConsoleSession(key.strip(), api_key.key_id, api_key.name,
                                                 api_key.role))
    logger.info("console: key %s (%s) signed in", api_key.key_id, api_key.role.value)
    response = RedirectResponse(_safe_next(next) or home_for(api_key.role), status_code=303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the key itself stays valid)."""
    if same_origin(request):
        _sessions(request).close(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def _page_response(request: Request, page: Page | None, slug: str) -> Response:
    session = await _live_session(request)
    if session is None:
        return RedirectResponse(f"/?next={quote(f'/console/{slug}')}", status_code=303)
    context: dict[str, object] = {"session": session, "pages": pages_for(session.role),
                                  "page": page, "home": home_for(session.role)}
    if page is None:
        return _html(request, "refused.html", context | {
            "status": 404, "reason": f"There is no console page called {slug!r}."}, 404)
    if not page.allows(session.role):
        return _html(request, "refused.html", context | {
            "status": 403, "reason": f"Keys of role {session.role.value} may not open "
            f"{page.title}."}, 403)
    return _html(request, f"{page.slug}.html", context)


@router.get("/console/{slug}", response_class=HTMLResponse)
async def console_page(request: Request, slug: str) -> Response:
    """One page, if the signed-in key's role may open it."""
    return await _page_response(request, BY_SLUG.get(slug), slug)


def mount_console(api: FastAPI) -> None:
    """Serve the console from ``api``: its pages, its assets and its session cookie."""
    api.state.console_sessions = ConsoleSessions()
    api.include_router(router)
    api.mount("/console/static", StaticFiles(directory=HERE / "static"),
              name="console-static")
