"""Helpers of the service tests: a real ``frvs serve`` process, keys, requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

FRVS = str(Path(sys.executable).parent / "frvs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def frvs(args: list[str], env: dict[str, str], check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    """Run the real CLI with ``env`` on top of this process's environment."""
    return subprocess.run([FRVS, *args], capture_output=True, text=True, check=check,
                          env={**os.environ, **env}, timeout=300)


def init_admin(env: dict[str, str]) -> str:
    """``frvs init --json`` in the data dir of ``env``; the admin token."""
    return str(json.loads(frvs(["init", "--json"], env).stdout)["admin_key"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Served:
    base: str
    admin: str
    env: dict[str, str]
    log: Path

    def client(self, token: str | None = None, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=timeout,
                            headers=bearer(token or self.admin))


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[Served]:
    """``frvs init`` then ``frvs serve`` on a free loopback port, stopped afterwards."""
    admin = init_admin(env)
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([FRVS, "serve", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"frvs serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Served(base, admin, env, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
