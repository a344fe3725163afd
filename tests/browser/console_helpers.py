"""Helpers of the console's browser tests: a real ``frvs serve`` process with keys of
every role, and Chromium pages signed in with them that fail on any console error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

FRVS = str(Path(sys.executable).parent / "frvs")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
ROLES = ("operator", "reviewer", "investigator", "auditor")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    env = {"FRVS_DATA_DIR": str(data_dir)}
    tokens = {"admin": str(frvs(["init"], env)["admin_key"])}
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([FRVS, "serve", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"frvs serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        # Keys through the API (one process already running): the CLI would cost a start each.
        people = [(r, r) for r in ROLES] + [("reviewer2", "reviewer"), ("device", "device")]
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {tokens['admin']}"}) as admin:
            for person, role in people:
                made = admin.post("/v1/keys", json={"name": person, "role": role})
                assert made.status_code == 201, made.text
                tokens[person] = str(made.json()["token"])
        yield Console(base, tokens, log, data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
