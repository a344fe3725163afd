"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine
without internet access, where FRVS is often run. The same pages here load the scripts
and styles shipped by the ``fastapi-offline`` package (Swagger UI and ReDoc's release
bundles), served by FRVS itself under ``/docs-assets``.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI's and ReDoc's bundles as the package ships them."""
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'")
"""The pages' one inline script (their configuration) runs; nothing they load may come
from another host (ReDoc's bundle would fetch its vendor's logo from a CDN)."""


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def mount_offline_docs(api: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve /docs and /redoc from local assets. ``api`` must be made with
    ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off)."""
    api.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = api.openapi_url or "/openapi.json"
    oauth2_url = api.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @api.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _offline(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{api.title} - API",
            oauth2_redirect_url=oauth2_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=api.swagger_ui_parameters))

    @api.get(oauth2_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @api.get(redoc_url, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _offline(get_redoc_html(
            openapi_url=openapi_url, title=f"{api.title} - API reference",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False))
