"""Domain errors and request errors as RFC 9457 problem+json responses."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from frvs.core import errors
from frvs.storage.database import StoreError

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_FOR: list[tuple[type[errors.FrvsError], int]] = [
    (errors.AuthenticationError, 401),
    (errors.RateLimitedError, 429),
    (errors.BusyError, 503),
    (StoreError, 503),
    (errors.MultipleFacesError, 422),
    (errors.ImageTooLargeError, 413),
    (errors.ImageError, 415),
    (errors.NoFaceError, 422),
    (errors.LowQualityFaceError, 422),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.PermissionDeniedError, 403),
    (errors.ModelSpaceMismatchError, 409),
    (errors.InvalidInputError, 400),
    (errors.ConfigurationError, 400),
    (errors.ModelError, 503),
    (errors.FrvsError, 500),
]


def problem(status: int, title: str, detail: str, code: str,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem+json response; ``code`` is FRVS's stable error code."""
    return JSONResponse(
        {"type": f"urn:frvs:error:{code}", "title": title, "status": status, "detail": detail,
         "code": code},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _headers(exc: errors.FrvsError) -> dict[str, str] | None:
    """401 names the scheme to use; 429 and a busy 503 say when to come back (whole
    seconds, >= 1)."""
    if isinstance(exc, errors.AuthenticationError):
        return {"WWW-Authenticate": 'Bearer realm="frvs"'}
    if isinstance(exc, errors.RetryLaterError):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return None


def install_problem_handlers(api: FastAPI) -> None:
    """Map every error a route can raise to problem+json; never leak a traceback."""

    @api.exception_handler(errors.FrvsError)
    async def _domain(_: Request, exc: errors.FrvsError) -> JSONResponse:
        status = next(s for cls, s in STATUS_FOR if isinstance(exc, cls))
        if isinstance(exc, errors.BusyError):  # expected under load: one line, no alarm
            logger.warning("refused while busy: %s", exc.message)
        elif status >= 500:
            logger.error("request failed: %s", exc.message)
        return problem(status, type(exc).__name__, exc.message, exc.code, _headers(exc))

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return problem(422, "Invalid request", details or "invalid request", "invalid_request")

    @api.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "HTTP error", str(exc.detail), f"http_{exc.status_code}",
                       dict(exc.headers) if exc.headers else None)

    @api.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return problem(500, "Internal error", "an internal error occurred; see the server log",
                       "internal_error")
