"""Starting ``frvs serve`` for the benchmarks that measure it as a separate process
(``make bench`` skips this module: it measures nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

FRVS = str(Path(sys.executable).parent / "frvs")


def start(data_dir: Path, port: int, env: dict[str, str] | None = None,
          timeout: float = 120.0, args: list[str] | None = None) -> subprocess.Popen[bytes]:
    """``frvs serve`` on ``port`` over ``data_dir`` (plus ``env`` and ``args``), once it
    answers ``/healthz``; killed and an error raised if it does not within ``timeout``
    seconds."""
    proc = subprocess.Popen([FRVS, "serve", "--port", str(port), *(args or [])],
                            env={**os.environ, "FRVS_DATA_DIR": str(data_dir), **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("frvs serve did not start")
