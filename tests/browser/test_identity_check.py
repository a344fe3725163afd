"""The identity check page in Chromium with a fake camera fed from a file made by FFmpeg
from the real clip (``--use-file-for-fake-video-capture``): a verifier signs in, gives a
document made from a photo of the same person, follows the page's random challenge and
is verified; a still frame as the camera fails liveness; another person's document
does not match. Then the printable receipt says what was kept.

The server issues the challenges (and accepts no other) and draws them from left and
right only (``FRVS_CHECKS__MOVES``): the
footage turns the head both ways but does not nod. The Y4M file is the turn played
twice, and Chromium loops it, so whichever of "left,right" and "right,left" the page
draws, and wherever in the loop the capture starts, both turns are in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import check_media as cm
import httpx
import pytest
from console_helpers import CHROMIUM, CHROMIUM_ARGS, DESKTOP, Person, frvs
from frvs_process import frvs_serve

from frvs.app import build_application
from frvs.config.settings import load_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # frvs serve and Chromium


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("check-console")
    env = {"FRVS_DATA_DIR": str(root / "data"), "FRVS_CHECKS__MOVES": json.dumps(["left", "right"]),
           "FRVS_CHECKS__REQUIRE_ISSUED_CHALLENGE": "true"}
    admin = str(frvs(["init"], env)["admin_key"])
    with frvs_serve(env, root / "serve.log") as base:
        made = httpx.post(f"{base}/v1/keys", json={"name": "counter 1", "role": "verifier"},
                          headers={"Authorization": f"Bearer {admin}"}, timeout=60)
        assert made.status_code == 201, made.text
        yield base, str(made.json()["token"])


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("check-media")
    app = build_application(load_settings(data_dir=root / "scratch"))
    paths = {"turn": cm.fake_camera(data_dir, root / "turn.y4m"),
             "still": cm.fake_camera(data_dir, root / "still.y4m", still=True)}
    for name, photo in (("lin", "lin-manuel-miranda.png"), ("alex", "alex-lacamoire.png")):
        paths[name] = root / f"{name}-card.jpg"
        paths[name].write_bytes(cm.id_card(cm.portrait(app, data_dir / "video" / photo)))
    return paths


def camera_browser(browser: Any, y4m: Path) -> Any:
    """A second Chromium from the session's Playwright, its camera fed from ``y4m``."""
    return browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream",
              "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={y4m}"])


def verifier(chromium: Any, base: str, token: str, shots: Path, name: str) -> Person:
    context = chromium.new_context(viewport=DESKTOP, base_url=base, permissions=["camera"])
    context.set_default_timeout(60_000)
    page = context.new_page()
    who = Person(name, context, page, shots)
    page.on("console", lambda m: who.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: who.errors.append(f"uncaught: {e}"))
    page.goto("/")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/check")
    return who


def run_check(who: Person, document: Path) -> dict[str, str]:
    page = who.page
    page.get_by_label("Identity document").set_input_files(str(document))
    page.get_by_label("Purpose", exact=True).fill("SIM card registration")
    page.get_by_role("button", name="Start check").click()
    page.wait_for_selector("#decision", timeout=90_000)
    decision = page.locator("#decision")
    return {k: str(decision.get_attribute(f"data-{k}")) for k in ("decision", "match", "live")}


def test_the_same_person_turning_is_verified_and_gets_a_receipt(
        browser: Any, served: tuple[str, str], media: dict[str, Path], shots: Path) -> None:
    base, token = served
    chromium = camera_browser(browser, media["turn"])
    try:
        who = verifier(chromium, base, token, shots, "verifier-turn")
        page = who.page
        nav = page.get_by_role("navigation", name="Console pages")
        assert nav.get_by_role("link").all_inner_texts() == ["Identity check"]
        for slug in ("search", "galleries", "alerts", "audit"):  # nothing else
            response = page.goto(f"/console/{slug}")
            assert response is not None and response.status == 403, slug
        # Refusals are page loads the test asked for, not script errors.
        who.errors[:] = [e for e in who.errors if "403" not in e]
        page.goto("/console/check")
        got = run_check(who, media["lin"])
        who.shot("check-verified")
        assert got == {"decision": "verified", "match": "true", "live": "true"}, (
            page.locator("#result").inner_text())
        # Another person's document, the same live person: liveness passes, match fails.
        got = run_check(who, media["alex"])
        who.shot("check-other-person")
        assert got == {"decision": "not verified", "match": "false", "live": "true"}
        # The receipt of that last check: printable, saying what was kept.
        page.locator("#receipt-link").click()
        page.wait_for_url("**/console/receipt?id=*")
        page.wait_for_selector("#receipt-decision")
        text = page.locator("#receipt").inner_text()
        assert "not verified" in page.locator("#receipt-decision").inner_text()
        assert "No image or face template was kept" in text and "SIM card registration" in text
        who.shot("check-receipt")
        who.assert_no_errors()
    finally:
        chromium.close()


def test_a_still_frame_as_the_camera_fails_liveness(
        browser: Any, served: tuple[str, str], media: dict[str, Path], shots: Path) -> None:
    base, token = served
    chromium = camera_browser(browser, media["still"])
    try:
        who = verifier(chromium, base, token, shots, "verifier-still")
        got = run_check(who, media["lin"])
        who.shot("check-still")
        assert got == {"decision": "not verified", "match": "true", "live": "false"}
        reasons = who.page.locator("#reasons").inner_text()
        assert "challenge not followed" in reasons
        who.assert_no_errors()
    finally:
        chromium.close()
