"""Helpers of the console's browser tests: a real ``frvs serve`` process with keys of
every role, and Chromium pages signed in with them that fail on any console error."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from frvs_process import FRVS, frvs_serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
ROLES = ("operator", "reviewer", "investigator", "auditor")


def frvs(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run the real CLI with ``--json``; its document."""
    done = subprocess.run([FRVS, *args, "--json"], capture_output=True, text=True, check=False,
                          env={**os.environ, **env}, timeout=300)
    assert done.returncode == 0, f"frvs {' '.join(args)}: {done.stdout}{done.stderr}"
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@dataclass
class Console:
    """A served FRVS: its base URL and a token per person (two reviewers)."""

    base: str
    tokens: dict[str, str]
    log: Path
    data_dir: Path

    def api(self, person: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=120,
                            headers={"Authorization": f"Bearer {self.tokens[person]}"})


@contextmanager
def served(data_dir: Path, log: Path) -> Iterator[Console]:
    """``frvs init``, keys of each role, then ``frvs serve`` on a free loopback port."""
    # The operator adds a camera on the shared clip: the shared data is the media root
    # the deployment lets API callers name files under (video.media_roots).
    shared = Path(os.environ.get("FRVS_SHARED", REPO.parent / "shared")).resolve()
    env = {"FRVS_DATA_DIR": str(data_dir),
           "FRVS_VIDEO__MEDIA_ROOTS": json.dumps([str(shared / "data")])}
    tokens = {"admin": str(frvs(["init"], env)["admin_key"])}
    with frvs_serve(env, log) as base:
        # Keys through the API (one process already running): the CLI would cost a start each.
        people = [(r, r) for r in ROLES] + [("reviewer2", "reviewer"), ("device", "device")]
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {tokens['admin']}"}) as admin:
            for person, role in people:
                made = admin.post("/v1/keys", json={"name": person, "role": role})
                assert made.status_code == 201, made.text
                tokens[person] = str(made.json()["token"])
        yield Console(base, tokens, log, data_dir)


@dataclass
class Person:
    """One person's browser context (own cookie jar) and page; console errors and
    uncaught exceptions are collected, and the test fails on any it did not expect."""

    name: str
    context: Any
    page: Any
    shots: Path
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_errors(self) -> None:
        assert not self.errors, f"console errors on {self.name}'s pages: {self.errors}"


REPO = Path(__file__).resolve().parents[2]

PersonFactory = Callable[..., Person]
