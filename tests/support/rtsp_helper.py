"""Starts and stops the loopback RTSP server (``rtsp_server.py``) for the tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from frvs_process import free_port

HERE = Path(__file__).parent
SYSTEM_PYTHON = Path("/usr/bin/python3")


class RtspServer:
    """GStreamer's RTSP server in a Debian python3 process, restartable on one port."""

    def __init__(self, ts: Path) -> None:
        self.ts = ts
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/clip"
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [str(SYSTEM_PYTHON), str(HERE / "rtsp_server.py"), str(self.port), str(self.ts)],
            stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("RTSP server did not listen")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None


