"""Schemathesis against the served OpenAPI document of a real ``frvs serve``: every
operation, with a valid admin key, finds no 5xx response.

Bounded for ``make test``: at most 10 examples per operation and phase (about 2,000
requests, ~1.5 min on two shared cores). The SSE stream is left out (a fuzzer cannot
consume a stream); ``test_events_stream`` covers it. Rate limits are raised so the
search endpoints are exercised rather than answered 429.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from callers import LOCAL
from fastapi.testclient import TestClient
from service_helpers import served

from frvs.api.app import create_api
from frvs.app import build_application
from frvs.config.settings import load_settings

ST = str(Path(sys.executable).parent / "st")


@pytest.mark.slow
def test_no_server_errors_under_fuzzing(tmp_path: Path, data_dir: Path) -> None:
    env = {"FRVS_DATA_DIR": str(tmp_path / "data"),
           "FRVS_API__SEARCH_RATE_PER_MINUTE": "1000000", "FRVS_API__SEARCH_BURST": "100000"}
    with served(env, tmp_path / "serve.log") as service, service.client() as client:
        # The schema's examples name gallery "staff" and subject "emp-0042": make them exist.
        assert client.post("/v1/galleries", json={"name": "staff"}).status_code == 201
        photo = data_dir / "identities" / "train" / "obama" / "obama.jpg"
        r = client.post("/v1/galleries/staff/subjects/emp-0042/templates",
                        files=[("images", (photo.name, photo.read_bytes(), "image/jpeg"))])
        assert r.status_code == 200
        run = subprocess.run(
            [ST, "run", f"{service.base}/openapi.json", "-H",
             f"Authorization: Bearer {service.admin}", "--checks", "not_a_server_error",
             "--max-examples", "10", "--exclude-operation-id", "stream_events",
             "--generation-database", "none", "--workers", "2", "--request-timeout", "60",
             "--seed", "5"],
            capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"},
            cwd=tmp_path, check=False)  # its crash cache goes to tmp, not the checkout
    log = (tmp_path / "serve.log").read_text()
    assert run.returncode == 0, run.stdout[-6000:]
    assert "Traceback" not in log, log[-4000:]
    # Warnings (an operation the admin key may not call, such as reviewing) are not
    # failures; a server error or a failed check would be.
    summary = [line for line in run.stdout.split("SUMMARY")[-1].splitlines()
               if not line.strip().startswith("⚠")]
    assert "passed" in run.stdout and not any("failed" in line for line in summary), summary


def test_events_stream(tmp_path: Path) -> None:
    """The SSE endpoint answers text/event-stream, sends camera status, then ends
    (in-process: a served process costs ~20 s to start on a busy machine)."""
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    app.store.open()
    token = app.oversight.keys.create_first_admin(LOCAL).token
    with TestClient(create_api(app), headers={"Authorization": f"Bearer {token}"}) as client:
        with client.stream("GET", "/v1/events", params={"max_seconds": 2}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            body = "".join(response.iter_text())
        # The greeting and the reconnection delay (EventSource reads it) come first.
        head = body.split("\n\n", 1)[0].splitlines()
        assert ": connected" in head and any(line.startswith("retry: ") for line in head)
        assert "event: camera.status" in body
        assert client.get("/v1/events", headers={"Authorization": "Bearer nope"}
                          ).status_code == 401
