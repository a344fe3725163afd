"""Sign-in, role-based pages and refusals, and the cookie's CSRF guard, in Chromium
against a real ``frvs serve``."""

from __future__ import annotations

import re

import pytest
from console_helpers import TABLET, Console, PersonFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # frvs serve and Chromium

HOME = {"operator": "cameras", "reviewer": "alerts", "investigator": "search",
        "auditor": "audit"}
ALLOWED = {"operator": {"cameras", "galleries", "attendance"}, "reviewer": {"alerts"},
           "investigator": {"search"}, "auditor": {"audit"}}
ALL_PAGES = {"alerts", "cameras", "galleries", "attendance", "search", "audit"}


def test_sign_in_page_and_bad_keys(person: PersonFactory, console: Console) -> None:
    guest = person("operator", sign_in=False)
    page = guest.page
    response = page.goto("/")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("API key").fill("frvs_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.get_by_role("alert").inner_text()
    guest.shot("sign-in-refused")
    page.get_by_label("API key").fill(console.tokens["device"])
    page.get_by_role("button", name="Sign in").click()
    assert "cannot use the console" in page.get_by_role("alert").inner_text()
    # A page asked for before signing in leads to sign-in, then back to it.
    page.goto("/console/galleries")
    assert page.url.endswith("/?next=/console/galleries")
    page.get_by_label("API key").fill(console.tokens["operator"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/galleries")
    # The key never reaches the page's scripts: the cookie is HTTP-only and holds no key.
    visible = page.evaluate("document.cookie + document.body.innerHTML")
    assert console.tokens["operator"] not in visible
    cookie = next(c for c in guest.context.cookies() if c["name"] == "frvs_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] != console.tokens["operator"]
    guest.assert_no_errors()


@pytest.mark.parametrize("role", sorted(HOME))
def test_each_role_sees_its_pages_and_is_refused_the_others(person: PersonFactory,
                                                            role: str) -> None:
    who = person(role)
    page = who.page
    assert page.url.endswith(f"/console/{HOME[role]}")
    nav = page.get_by_role("navigation", name="Console pages")
    links = {a.rsplit("/", 1)[-1] for a in nav.get_by_role("link").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))")}
    assert links == ALLOWED[role]
    for slug in sorted(ALL_PAGES - ALLOWED[role]):
        response = page.goto(f"/console/{slug}")
        assert response is not None and response.status == 403, slug
        assert page.get_by_role("heading", name="Not allowed").is_visible()
    who.shot(f"refused-{role}")
    # Refusals are page loads the test asked for, not script errors.
    who.errors[:] = [e for e in who.errors if "403" not in e]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    response = page.goto(f"/console/{HOME[role]}")
    assert page.get_by_label("API key").is_visible()
    who.assert_no_errors()


def test_cookie_requests_that_change_data_need_the_console_header(
        person: PersonFactory, console: Console) -> None:
    who = person("operator")
    request = who.context.request
    body = {"name": "csrf-probe", "kind": "general"}
    forged = request.post(f"{console.base}/v1/galleries", data=body)
    assert forged.status == 403
    other_origin = request.post(f"{console.base}/v1/galleries", data=body, headers={
        "X-FRVS-Console": "1", "Origin": "http://evil.example"})
    assert other_origin.status == 403
    made = request.post(f"{console.base}/v1/galleries", data=body,
                        headers={"X-FRVS-Console": "1", "Origin": console.base})
    assert made.status == 201, made.text()
    assert request.get(f"{console.base}/v1/galleries/csrf-probe").status == 200
    with console.api() as admin:
        assert admin.delete("/v1/galleries/csrf-probe").status_code == 200


def test_tablet_width_has_no_horizontal_scroll(person: PersonFactory) -> None:
    for role in sorted(HOME):
        who = person(role, viewport=TABLET)
        width = who.page.evaluate("document.documentElement.scrollWidth")
        assert width <= TABLET["width"], (role, width)
        who.shot(f"tablet-{HOME[role]}")
        who.assert_no_errors()
