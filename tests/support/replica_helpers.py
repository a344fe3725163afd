"""Real ``frvs serve`` replicas for the replica tests: start, kill, talk to them."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from frvs_process import FRVS, free_port, wait_until_healthy


@dataclass
class Replica:
    """One running ``frvs serve --replica NAME``."""

    name: str
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no clean stop, no lease released."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=60,
                            headers={"Authorization": f"Bearer {token}"})


@dataclass
class Cluster:
    """Replicas sharing one store and one data directory (shared media storage)."""

    env: dict[str, str]
    folder: Path
    replicas: list[Replica] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        done = subprocess.run([FRVS, *args], env={**os.environ, **self.env},
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"frvs {' '.join(args)}: {done.stderr[-2000:]}"
        return done.stdout

    def start(self, name: str, *extra: str) -> Replica:
        port = free_port()
        log = self.folder / f"{name}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([FRVS, "serve", "--port", str(port), "--replica", name,
                                     *extra], stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, **self.env})
        replica = Replica(name, proc, f"http://127.0.0.1:{port}", log)
        self.replicas.append(replica)
        wait_until_healthy(proc, replica.base, log, 180)
        return replica

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.proc.poll() is None:
                replica.proc.terminate()
        for replica in self.replicas:
            try:
                replica.proc.wait(30)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
                replica.proc.wait()


@dataclass
class Delivery:
    """One POST the receiver took: its headers (names in lower case) and JSON body."""

    headers: dict[str, str]
    body: dict[str, object]


class HookReceiver:
    """A loopback webhook receiver: answers each POST with ``statuses`` in turn (then
    204), remembering every request."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.deliveries: list[Delivery] = []
        answers = list(statuses or [])
        lock = threading.Lock()
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                with lock:
                    received.append(Delivery({k.lower(): v for k, v in self.headers.items()},
                                              body))
                    status = answers.pop(0) if answers else 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
