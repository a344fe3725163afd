"""The API documentation pages work without internet access: /docs (Swagger UI) and
/redoc render every operation in Chromium while every request to a host other than
loopback is aborted."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from console_helpers import DESKTOP, Console

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # frvs serve and Chromium

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _offline_page(browser: Any, console: Console) -> tuple[Any, Any, list[str]]:
    """A page whose requests to any non-loopback host are aborted (and listed)."""
    context = browser.new_context(viewport=DESKTOP, base_url=console.base)
    context.set_default_timeout(30_000)
    blocked: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOOPBACK:
            blocked.append(url)
            r.abort("internetdisconnected")
        else:
            r.continue_()

    context.route("**/*", route)
    return context, context.new_page(), blocked


def test_swagger_ui_and_redoc_render_their_operations_offline(
        browser: Any, console: Console, shots: Path) -> None:
    operations = len([op for ops in httpx.get(f"{console.base}/openapi.json").json()[
        "paths"].values() for op in ops])
    assert operations > 20
    context, page, blocked = _offline_page(browser, console)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    refused: list[str] = []  # what the pages' Content-Security-Policy kept from loading
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        page.goto("/docs")
        page.locator(".opblock").first.wait_for()
        shown = page.locator(".opblock").count()
        page.screenshot(path=str(shots / "docs-offline.png"))
        assert shown >= operations, (shown, operations)  # an operation of two tags shows twice
        assert page.locator(".opblock-summary-path").filter(has_text="/identify").count() > 0

        page.goto("/redoc")
        # ReDoc renders one menu entry and one section per operation.
        page.locator("[data-section-id^='operation/']").first.wait_for()
        sections = page.locator("[data-section-id^='operation/']").count()
        page.screenshot(path=str(shots / "redoc-offline.png"))
        assert sections >= operations, (sections, operations)
    finally:
        context.close()
    assert not errors, errors
    # Nothing reached for another host: the pages' policy keeps them to this one (ReDoc's
    # bundle would load its vendor's logo from a CDN; it is refused before any request).
    assert not blocked, blocked
    assert all("cdn.redoc.ly" in m for m in refused), refused


def test_docs_pages_name_only_local_assets(console: Console) -> None:
    for path in ("/docs", "/redoc"):
        html = httpx.get(f"{console.base}{path}").text
        assert "cdn." not in html and "https://" not in html, html
        assert "/docs-assets/" in html
    js = httpx.get(f"{console.base}/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 500_000
