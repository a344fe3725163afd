"""A real ``frvs serve`` on a free loopback port, for the tests that need the service as
its users run it. The service tests and the console's browser tests share this launcher
(``tests/support`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

FRVS = str(Path(sys.executable).parent / "frvs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_healthy(proc: subprocess.Popen[bytes], base: str, log: Path,
                       timeout: float = 120.0) -> None:
    """Return once ``base`` answers ``/healthz``; raise with the log's tail if ``proc``
    exits or ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"frvs serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


@contextmanager
def serve_process(env: dict[str, str], log: Path, start_timeout: float = 120.0
                  ) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``frvs serve`` with ``env`` until it answers ``/healthz``: its process and base URL.
    Stopped (terminated, then killed) afterwards; its output goes to ``log``."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([FRVS, "serve", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, base, log, start_timeout)
        yield proc, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def frvs_serve(env: dict[str, str], log: Path, start_timeout: float = 120.0) -> Iterator[str]:
    """``frvs serve`` with ``env`` until it answers ``/healthz``: its base URL (see
    ``serve_process``)."""
    with serve_process(env, log, start_timeout) as (_, base):
        yield base
