"""What the benchmarks share: starting ``frvs serve`` for those that measure it as a
separate process, a free port, a process's CPU time and the progress log (``make bench``
skips this module: it measures nothing)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FRVS = str(Path(sys.executable).parent / "frvs")
SHARED = Path(os.environ.get("FRVS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
"""The shared test data's root (``FRVS_SHARED``; by default beside the checkout)."""


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the benchmark's JSON)."""
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc), threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(data_dir: Path, port: int, env: dict[str, str] | None = None,
          timeout: float = 120.0, args: list[str] | None = None, *,
          executable: str = FRVS) -> subprocess.Popen[bytes]:
    """``frvs serve`` on ``port`` over ``data_dir`` (plus ``env`` and ``args``), once it
    answers ``/healthz``; killed and an error raised if it does not within ``timeout``
    seconds. ``executable``: another checkout's ``frvs``, to measure it side by side."""
    proc = subprocess.Popen([executable, "serve", "--port", str(port), *(args or [])],
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
