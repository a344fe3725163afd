"""Helpers of the service tests: a real ``frvs serve`` process, keys, requests."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from frvs_process import FRVS, free_port, frvs_serve

__all__ = ["FRVS", "Served", "bearer", "free_port", "frvs", "init_admin", "served"]


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
    with frvs_serve(env, log, start_timeout=90) as base:
        yield Served(base, admin, env, log)
