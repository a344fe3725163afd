"""An attacker's (and a bad disk's) view of the node's outbox on a real SQLite file: a
long outage keeps the byte bound exactly and counts every drop, enforcing the bound
costs little memory however large the backlog, and a damaged file is refused at start
with a message saying what to do (never a traceback). And the link's plain-http rule
against names that only look local."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from frvs.core.errors import FileReadError, InvalidInputError
from frvs.edge.outbox import Outbox, OutboxLimits, Report
from frvs.edge.sender import Link

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _report(track: int, crop: int = 0) -> Report:
    return Report("stage", track, T0 + timedelta(seconds=track),
                  T0 + timedelta(seconds=track + 2), 5, "sface@1/128/cosine", b"\x01" * 512,
                  {"overall": 0.5}, b"\xff" * crop if crop else None)


def test_a_long_outage_keeps_the_bound_and_counts_every_drop(tmp_path: Path) -> None:
    limits = OutboxLimits(max_bytes=60 * 1024, max_age_s=3600.0, keep_delivered_s=3600.0)
    box = Outbox(tmp_path / "o.db", limits)
    made = 0
    # Ten simulated hours, a report (some with crops) every 24 s: centre down throughout.
    for step in range(1500):
        box.add(_report(step, crop=900 if step % 3 == 0 else 0), now=24.0 * step)
        made += 1
        if step % 97 == 0:
            assert box.status().backlog_bytes <= limits.max_bytes
    status, counters = box.status(), box.counters()
    assert status.backlog_bytes <= limits.max_bytes
    assert counters["made"] == made
    assert status.backlog + counters["dropped_reports"] == made  # every report accounted
    assert counters["dropped_crops"] > 0
    box.close()


def test_enforcing_the_bound_holds_no_backlog_in_memory(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", OutboxLimits(max_bytes=30_000 * 768))
    box.add_all([(_report(i), float(i)) for i in range(30_000)])  # exactly full
    tracemalloc.start()
    try:
        box.add(_report(30_000, crop=2000), now=30_000.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert box.counters()["dropped_reports"] >= 1
    assert peak < 256 * 1024, f"one add over the bound peaked at {peak} bytes"
    box.close()


def test_a_file_that_is_not_an_outbox_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not an SQLite database, just junk bytes" * 100)
    with pytest.raises(FileReadError, match=r"damaged.*Move it aside"):
        Outbox(path)


def test_a_torn_outbox_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.add_all([(_report(i, crop=600), float(i)) for i in range(400)])
    box.close()
    data = bytearray(path.read_bytes())
    # A disk fault: a run of pages in the middle overwritten with garbage.
    middle = len(data) // 2
    data[middle:middle + 16_384] = b"\xa5" * 16_384
    path.write_bytes(bytes(data))
    with pytest.raises(FileReadError, match="damaged"):
        Outbox(path)


@pytest.mark.parametrize("centre", [
    "http://localhost.evil.com", "http://127.0.0.1.nip.io", "http://localhost.",
    "http://127.0.0.1@evil.com", "http://evil.com#@127.0.0.1", "http://0.0.0.0",
    "http://[::ffff:10.0.0.1]", "http://10.0.0.1"])
def test_plain_http_to_what_only_looks_local_is_refused(centre: str) -> None:
    with pytest.raises(InvalidInputError, match="plain http"):
        Link(centre, "token")


@pytest.mark.parametrize("centre", ["http://127.0.0.1:8080", "http://[::1]:8080",
                                    "http://localhost:8080", "http://127.3.4.5"])
def test_plain_http_to_this_machine_is_allowed(centre: str) -> None:
    Link(centre, "token")


def test_insecure_never_turns_verification_off() -> None:
    assert Link("https://centre.example", "t", insecure=True).verify() is not False


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@contextmanager
def _tls_server(cert: Path, key: Path) -> Iterator[int]:
    """A real HTTPS server on 127.0.0.1 (a port of 19150-19169) answering 200."""
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            del args

    server = None
    for port in range(19150, 19170):
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Ok)
            break
        except OSError:
            continue
    if server is None:
        pytest.skip("no free port in 19150-19169")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for certificates")
def test_the_link_refuses_a_centre_it_cannot_trust(tmp_path: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=edgeadv test CA", cwd=tmp_path)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
             "other.csr", "-subj", "/CN=other.example", cwd=tmp_path)
    (tmp_path / "san.txt").write_text("subjectAltName=DNS:other.example\n")
    _openssl("x509", "-req", "-in", "other.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "other.pem", "-days", "2", "-extfile", "san.txt",
             cwd=tmp_path)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key", "-out",
             "self.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
             "subjectAltName=IP:127.0.0.1", cwd=tmp_path)

    def get(port: int, **link: Any) -> int:
        with Link(f"https://127.0.0.1:{port}", "t", **link).client() as client:
            return client.get("/").status_code

    # A certificate from the trusted CA, but for another name: refused.
    with (_tls_server(tmp_path / "other.pem", tmp_path / "other.key") as port,
          pytest.raises(httpx.ConnectError)):
        get(port, ca_file=tmp_path / "ca.pem")
    with _tls_server(tmp_path / "self.pem", tmp_path / "self.key") as port:
        # Self-signed without --ca-file, with or without --insecure: refused.
        for insecure in (False, True):
            with pytest.raises(httpx.ConnectError):
                get(port, insecure=insecure)
        # A CA file that is not the one that signed it: refused.
        with pytest.raises(httpx.ConnectError):
            get(port, ca_file=tmp_path / "ca.pem")
        # The control: trusted explicitly, it connects (so the refusals above are TLS's).
        assert get(port, ca_file=tmp_path / "self.pem") == 200
