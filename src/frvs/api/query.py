"""Unknown query parameters are refused (400), not ignored.

A misspelt filter (``?camra=door``, ``?date=`` where the route takes ``day``) silently
ignored returns everything unfiltered, which a caller may take for the filtered answer.
Every /v1 route therefore refuses a query parameter it does not declare, naming the ones
it takes.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from frvs.core.errors import InvalidInputError


def _declared(request: Request, route: APIRoute) -> frozenset[str] | None:
    """The query parameters the route's OpenAPI operation names (the document is built
    once and cached by FastAPI); None for a route not in the document."""
    document: dict[str, Any] = request.app.openapi()
    operation = document.get("paths", {}).get(route.path, {}).get(request.method.lower())
    if operation is None:
        return None
    return frozenset(p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")


async def refuse_unknown_query(request: Request) -> None:
    """A dependency of every route: 400 ``invalid_input`` for a query parameter the
    /v1 route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.url.path.startswith("/v1/"):
        return
    declared = _declared(request, route)
    if declared is None:
        return
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        takes = ", ".join(sorted(declared)) or "none"
        raise InvalidInputError(f"unknown query parameter(s) {', '.join(unknown)}; "
                                f"{route.path} takes: {takes}")
