"""Camera nodes feeding a centre, as real processes on loopback: one 'frvs serve' over
TLS (a certificate made here with openssl) and 'frvs edge run' nodes reading the
hamilton clip from a file and from the loopback RTSP server.

Scenarios: the link cut (the node pointed at a port that refuses), the centre stopped
for 20 s mid-stream and restarted on the same port, a node killed with SIGKILL
mid-delivery and restarted, an outbox that overflows. In each, the centre ends with
exactly the sightings and alerts the node recorded as delivered (its outbox is its own
record), none twice, and the centre's audit trail verifies; drops reach its audit.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from callers import LOCAL
from frvs_process import free_port
from rtsp_helper import RtspServer
from video_app import make_app, watch_hamilton

from frvs.core.caller import Role

FRVS = str(Path(sys.executable).parent / "frvs")
OPENSSL = shutil.which("openssl")

pytestmark = [pytest.mark.skipif(OPENSSL is None, reason="needs openssl to make the "
                                 "centre's TLS certificate"),
              pytest.mark.slow]  # a real centre over TLS and real nodes: minutes


@dataclass
class Centre:
    data: Path
    tls: Path
    port: int
    tokens: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.tls / "ca.pem"

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def start(self) -> None:
        log = (self.data / "serve.log").open("a")
        self.proc = subprocess.Popen(
            [FRVS, "serve", "--port", str(self.port), "--tls-cert", str(self.tls / "cert.pem"),
             "--tls-key", str(self.tls / "key.pem")], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "FRVS_DATA_DIR": str(self.data)})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", verify=self.trust(),
                             timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, (self.data / "serve.log").read_text()[-2000:]
            time.sleep(0.1)
        raise RuntimeError("the centre did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "frvs.db")

    def sightings(self, camera: str) -> set[tuple[int, datetime]]:
        with self.db() as d:
            rows = d.execute("select track_id, first_seen from sightings where camera = ?",
                             (camera,)).fetchall()
        found = {(t, _utc(f)) for t, f in rows}
        assert len(found) == len(rows), f"a sighting of {camera} stored twice: {rows}"
        return found

    def alerts(self, camera: str) -> int:
        with self.db() as d:
            return int(d.execute("select count(*) from alerts where camera = ?",
                                 (camera,)).fetchone()[0])

    def audit_results(self, action: str, outcome: str = "ok") -> list[dict[str, object]]:
        with self.db() as d:
            return [json.loads(r[0]) for r in d.execute(
                "select result from audit_entries where action = ? and outcome = ?",
                (action, outcome))]

    @property
    def space(self) -> str:
        with self.db() as d:
            return str(d.execute("select space_key from sightings where space_key is not null "
                                 "limit 1").fetchone()[0])


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _make_tls(folder: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it."""
    folder.mkdir()
    assert OPENSSL is not None

    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=FRVS test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.csr",
        "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "san.ext")
    return folder


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Centre]:
    root = tmp_path_factory.mktemp("edge")
    data = root / "centre"
    app = make_app(data)
    cameras = ("stage", "door", "hall", "tiny")
    watch_hamilton(app, data_dir, edge_cameras=cameras)
    tokens = {}
    for camera in cameras:
        tokens[camera] = app.oversight.keys.create(LOCAL, Role.DEVICE, f"node-{camera}",
                                                   cameras=[camera]).token
    app.stop()
    c = Centre(data, _make_tls(root / "tls"), free_port(), tokens)
    c.start()
    yield c
    c.stop()


def _node(centre: Centre, camera: str, home: Path, source: str | None, *,
          url: str | None = None, once: bool = True, extra: tuple[str, ...] = ()
          ) -> subprocess.Popen[bytes]:
    args = [FRVS, "edge", "run", "--centre", url or centre.url, "--ca-file", str(centre.ca),
            "--retry-max-s", "2", "--heartbeat-s", "2", "--json", *extra]
    if once:
        args.append("--once")
    if source is not None:
        args += ["--camera", f"{camera}={source}"]
    log = (home / "node.log").open("a")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={
        **os.environ, "FRVS_DATA_DIR": str(home), "FRVS_DEVICE_KEY": centre.tokens[camera]})


def _outbox(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "edge" / "outbox.db")


def _counter(home: Path, name: str) -> int:
    try:
        with _outbox(home) as d:
            row = d.execute("select value from counters where name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0]) if row else 0


def _wait(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _node_record(home: Path) -> tuple[set[tuple[int, datetime]], int, int]:
    """What the node says it delivered (track, first_seen), its alerts, and what it
    still holds undelivered."""
    with _outbox(home) as d:
        rows = d.execute("select track_id, first_seen, alert from reports "
                         "where state = 'delivered'").fetchall()
        pending = d.execute("select count(*) from reports where state != 'delivered'"
                            ).fetchone()[0]
    return {(t, _utc(f)) for t, f, _ in rows}, sum(1 for *_, a in rows if a), int(pending)


def _verify(centre: Centre) -> None:
    done = subprocess.run([FRVS, "audit", "verify"], check=False, capture_output=True, text=True,
                          env={**os.environ, "FRVS_DATA_DIR": str(centre.data)})
    assert done.returncode == 0, done.stdout + done.stderr


def _finish(proc: subprocess.Popen[bytes], home: Path, timeout: float = 120) -> None:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert rc == 0, (home / "node.log").read_text()[-2000:]


def test_a_report_sent_again_is_stored_once(centre: Centre, data_dir: Path) -> None:
    """The same report twice in a row and four times at once: one sighting, one
    ``sighting.record`` entry; every answer names the same sighting."""
    crop = (data_dir / "video" / "lin-manuel-miranda.png").read_bytes()
    headers = {"Authorization": f"Bearer {centre.tokens['hall']}"}
    now = datetime.now(UTC).isoformat()
    form = {"camera": "hall", "track_id": "7", "first_seen": now, "last_seen": now}
    before = len(centre.audit_results("sighting.record"))
    with httpx.Client(base_url=centre.url, verify=centre.trust(), headers=headers) as client:
        first = client.post("/v1/sightings", data=form,
                            files={"image": ("c.png", crop, "image/png")})
        again = client.post("/v1/sightings", data=form,
                            files={"image": ("c.png", crop, "image/png")})
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["sighting"] == first.json()["sighting"]
    assert first.json()["subject"] == "lin-manuel-miranda"

    form2 = form | {"track_id": "8"}
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=centre.url, verify=centre.trust(),
                          headers=headers) as client:
            answers.append(client.post("/v1/sightings", data=form2,
                                       files={"image": ("c.png", crop, "image/png")}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()["sighting"] for a in answers}) == 1
    assert len(centre.sightings("hall")) == 2
    assert centre.alerts("hall") == 1  # the repeat window holds the second track's
    assert len(centre.audit_results("sighting.record")) == before + 2


def test_a_batch_is_judged_per_report_and_stored_once(centre: Centre, data_dir: Path
                                                      ) -> None:
    """A batch with a report stored before, the same new report twice, a report for a
    camera the key is not bound to and one with impossible times: each answered on its
    own, the new one stored once, every refusal audited."""
    headers = {"Authorization": f"Bearer {centre.tokens['hall']}"}
    with httpx.Client(base_url=centre.url, verify=centre.trust(), headers=headers) as client:
        stored = client.post("/v1/sightings", data={
            "camera": "hall", "track_id": "7",
            "first_seen": datetime.now(UTC).isoformat(),
            "last_seen": datetime.now(UTC).isoformat()}, files={"image": (
                "c.png", (data_dir / "video" / "alex-lacamoire.png").read_bytes(),
                "image/png")})
        assert stored.status_code == 201, stored.text
        now = datetime.now(UTC)
        vector = base64.b64encode(b"\x00\x00\x80\x3f" + b"\x00" * 508).decode()  # 1,0,0...
        space = centre.space

        def report(track: int, camera: str = "hall", **extra: object) -> dict[str, object]:
            return {"camera": camera, "track_id": track, "first_seen": now.isoformat(),
                    "last_seen": now.isoformat(), "space": space, "template": vector,
                    "frames": 3, "quality": {"overall": 0.4}} | extra
        refused_before = len(centre.audit_results("sighting.submit", "refused"))
        answer = client.post("/v1/sightings/batch", json={"reports": [
            report(50), report(50), report(51, camera="stage"),
            report(52, last_seen=(now - timedelta(hours=1)).isoformat())]})
    assert answer.status_code == 200, answer.text
    statuses = [item["status"] for item in answer.json()]
    assert statuses == [201, 200, 403, 400]
    first, again = answer.json()[0]["result"], answer.json()[1]["result"]
    assert first["sighting"] == again["sighting"] and again["replayed"]
    assert sum(1 for t, _ in centre.sightings("hall") if t == 50) == 1
    assert len(centre.audit_results("sighting.submit", "refused")) == refused_before + 2


def test_plain_http_to_another_host_is_refused(tmp_path: Path, centre: Centre) -> None:
    done = subprocess.run(
        [FRVS, "edge", "run", "--centre", "http://192.0.2.10:8000", "--once"],
        check=False, capture_output=True, text=True,
        env={**os.environ, "FRVS_DATA_DIR": str(tmp_path), "FRVS_DEVICE_KEY": "x"})
    assert done.returncode != 0
    assert "refusing plain http" in done.stderr + done.stdout


@pytest.mark.slow
def test_link_cut_centre_outage_and_sigkill_lose_nothing_and_duplicate_nothing(
        tmp_path: Path, centre: Centre, data_dir: Path) -> None:
    clip = str(data_dir / "video" / "short_hamilton_clip.mp4")
    home = tmp_path / "node"
    home.mkdir()

    # 1. The link is cut: the node reaches only a port that refuses. It makes its
    #    reports all the same and keeps them.
    refusing = f"https://127.0.0.1:{free_port()}"
    node = _node(centre, "stage", home, clip, url=refusing)
    _wait(lambda: _counter(home, "made") >= 3, 60, "reports made while the link is cut")
    # 2. Killed with SIGKILL while it retries; restarted on the real centre with the
    #    same clip: the first run's reports and the second run's all arrive, once.
    node.kill()
    node.wait()
    made_before = _counter(home, "made")
    node = _node(centre, "stage", home, clip)
    _wait(lambda: _counter(home, "deliveries") >= 1, 60, "a first delivery")
    node.send_signal(signal.SIGKILL)  # mid-delivery: reports were still coming
    node.wait()
    # 3. Run again (same clip), and stop the centre for 20 s mid-stream.
    delivered_before = _counter(home, "deliveries")
    node = _node(centre, "stage", home, clip)
    _wait(lambda: _counter(home, "deliveries") > delivered_before, 60,
          "deliveries after the restart")
    centre.stop()
    time.sleep(20)
    centre.start()
    _finish(node, home)
    # 4. Anything the killed runs left is drained by a run without cameras.
    _finish(_node(centre, "stage", home, None), home)

    delivered, alerts, pending = _node_record(home)
    assert pending == 0
    assert _counter(home, "made") > made_before > 0
    assert delivered == centre.sightings("stage")  # exactly the node's, none twice
    assert centre.alerts("stage") == alerts >= 1
    assert _counter(home, "retries") > 0
    _verify(centre)
    operator = {"Authorization": f"Bearer {_operator(centre)}"}
    nodes = httpx.get(f"{centre.url}/v1/edge/nodes", verify=centre.trust(),
                      headers=operator).json()
    stage = next(n for n in nodes if n["cameras"] == ["stage"])
    assert stage["status"] == "online" and stage["backlog"] == 0 and not stage["lagging"]
    assert stage["reports"] == len(delivered) and stage["clock_ok"]
    events = httpx.get(f"{centre.url}/v1/events", params={"max_seconds": 1},
                       verify=centre.trust(), headers=operator, timeout=30).text
    assert "event: edge.nodes" in events and '"status": "online"' in events


def test_rtsp_node_delivers_what_it_made(tmp_path: Path, centre: Centre,
                                         rtsp: RtspServer) -> None:
    home = tmp_path / "rtsp-node"
    home.mkdir()
    node = _node(centre, "door", home, rtsp.url, once=False)
    _wait(lambda: _counter(home, "deliveries") >= 3, 90, "reports from the RTSP camera")
    node.send_signal(signal.SIGTERM)  # a live source never ends: stop it as a service
    assert node.wait(30) == 0, (home / "node.log").read_text()[-2000:]
    # Tracks open at the stop were closed into the outbox; a run without cameras sends them.
    _finish(_node(centre, "door", home, None), home)
    delivered, alerts, pending = _node_record(home)
    assert pending == 0 and len(delivered) >= 3
    assert delivered == centre.sightings("door")
    assert centre.alerts("door") == alerts
    _verify(centre)


def test_a_full_outbox_drops_crops_then_reports_and_the_centre_audits_it(
        tmp_path: Path, centre: Centre, data_dir: Path) -> None:
    home = tmp_path / "tiny-node"
    home.mkdir()
    clip = str(data_dir / "video" / "short_hamilton_clip.mp4")
    # 5 KiB: room for a few reports' templates (about 0.8 KiB each), not for crops.
    tiny = ("--max-outbox-mb", "0.005")
    refusing = f"https://127.0.0.1:{free_port()}"
    node = _node(centre, "tiny", home, clip, url=refusing, extra=tiny)
    _wait(lambda: _counter(home, "made") >= 8, 90, "reports made offline")
    node.kill()
    node.wait()
    crops, reports = _counter(home, "dropped_crops"), _counter(home, "dropped_reports")
    assert crops >= 1 and reports >= 1
    _finish(_node(centre, "tiny", home, None, extra=tiny), home)
    delivered, _, pending = _node_record(home)
    assert pending == 0
    assert delivered == centre.sightings("tiny")
    audited = centre.audit_results("edge.drops")
    assert any(r["total_crops"] == crops and r["total_reports"] == reports
               for r in audited), audited
    _verify(centre)


def _operator(centre: Centre) -> str:
    done = subprocess.run([FRVS, "key", "create", "ops", "--role", "operator", "--json"],
                          check=False, capture_output=True, text=True,
                          env={**os.environ, "FRVS_DATA_DIR": str(centre.data)})
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["token"])
