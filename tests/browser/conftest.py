"""Fixtures of the console's browser tests: one real ``frvs serve`` on a fresh data
directory, Debian's Chromium driven by Playwright (never a downloaded browser), and a
screenshot folder whose path is printed in the test report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import DESKTOP, REPO, Console, Person, PersonFactory, served

SHOTS = REPO / "artifacts" / "screenshots" / time.strftime("console-%Y%m%d-%H%M%S")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SHOTS.is_dir() and any(SHOTS.iterdir()):
        terminalreporter.write_line(f"console screenshots: {SHOTS}")


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {SHOTS}")  # the CI log names the folder
    return SHOTS


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    with served(root / "data", root / "serve.log") as served_console:
        yield served_console




@pytest.fixture
def person(browser: Any, console: Console, shots: Path) -> Iterator[PersonFactory]:
    """``person("reviewer")``: a fresh browser context signed in with that key."""
    opened: list[Person] = []

    def open_person(name: str, viewport: dict[str, int] = DESKTOP, sign_in: bool = True
                    ) -> Person:
        context = browser.new_context(viewport=viewport, base_url=console.base)
        context.set_default_timeout(30_000)
        page = context.new_page()
        who = Person(name, context, page, shots)
        page.on("console", lambda m: who.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: who.errors.append(f"uncaught: {e}"))
        opened.append(who)
        if sign_in:
            page.goto("/")
            page.get_by_label("API key").fill(console.tokens[name])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/console/**")
        return who

    yield open_person
    for who in opened:
        # The last state of every page, to read a failure from the CI log's folder.
        who.shot(f"last-{who.name}")
        if who.errors:
            print(f"console errors of {who.name}: {who.errors}")  # the CI log shows them
        who.context.close()
