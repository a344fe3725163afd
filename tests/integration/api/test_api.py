"""The HTTP service's first endpoints, in-process and served by a real uvicorn."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from callers import key_caller
from fastapi.testclient import TestClient
from frvs_process import free_port

from frvs.api.app import create_api
from frvs.app import Application
from frvs.oversight.models import Role


@pytest.fixture(scope="module")
def operator_headers(session_app: Application) -> dict[str, str]:
    """Every /v1 route needs a key (issue 5); an operator key may detect and verify."""
    session_app.store.open()
    token, _ = key_caller(session_app, Role.OPERATOR, "test_api")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def client(session_app: Application, operator_headers: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_api(session_app), headers=operator_headers) as c:
        yield c


def upload(path: Path, field: str = "image") -> tuple[str, tuple[str, bytes, str]]:
    return field, (path.name, path.read_bytes(), "image/jpeg")


def test_health(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_detect(client: TestClient, data_dir: Path) -> None:
    r = client.post("/v1/detect", files=[upload(data_dir / "pairs/images/couple.jpg")])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == "couple.jpg" and len(body["faces"]) == 2


def test_verify_same_json_as_cli(client: TestClient, data_dir: Path) -> None:
    images = data_dir / "pairs/images"
    r = client.post("/v1/verify", files=[upload(images / "img1.jpg", "image_a"),
                                          upload(images / "img2.jpg", "image_b")])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["same"] is True and body["pack"] == "yunet_sface" and len(body["faces"]) == 2


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"", 415, "empty_image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01garbage" * 3, 415, "corrupt_image"),
        (b"just some text", 415, "not_an_image"),
    ],
)
def test_bad_uploads_are_problem_json(
    client: TestClient, content: bytes, status: int, code: str
) -> None:
    r = client.post("/v1/detect", files=[("image", ("x.jpg", content, "image/jpeg"))])
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


def test_no_face_is_422(client: TestClient, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (320, 240), (90, 90, 90)).save(tmp_path / "wall.png")
    r = client.post("/v1/verify", files=[upload(tmp_path / "wall.png", "image_a"),
                                          upload(tmp_path / "wall.png", "image_b")])
    assert r.status_code == 422 and r.json()["code"] == "no_face"


def test_oversized_upload_is_413(session_app: Application, data_dir: Path,
                                 operator_headers: dict[str, str]) -> None:
    limits = session_app.image_limits
    big = b"\xff\xd8" + b"\0" * (limits.max_bytes + 10)
    with TestClient(create_api(session_app), headers=operator_headers) as c:
        r = c.post("/v1/detect", files=[("image", ("big.jpg", big, "image/jpeg"))])
    assert r.status_code == 413 and r.json()["code"] == "image_too_large"


def test_malformed_requests(client: TestClient) -> None:
    r = client.post("/v1/verify", files=[("image_a", ("a.jpg", b"x", "image/jpeg"))])
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert client.post("/v1/detect", content=b"{}").status_code == 422
    assert client.get("/v1/nothing-here").status_code == 404


@pytest.mark.slow
def test_frvs_serve_answers_healthz_and_docs(data_path: Path, data_dir: Path) -> None:
    port = free_port()
    frvs = Path(sys.executable).parent / "frvs"
    init = subprocess.run([str(frvs), "init", "--json"], capture_output=True, text=True,
                          check=True)
    auth = {"Authorization": f"Bearer {json.loads(init.stdout)['admin_key']}"}
    proc = subprocess.Popen([str(frvs), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail("frvs serve did not answer /healthz")
        assert httpx.get(f"{base}/docs").status_code == 200
        spec = httpx.get(f"{base}/openapi.json").json()
        assert {"/healthz", "/v1/detect", "/v1/verify"} <= set(spec["paths"])
        images = data_dir / "pairs/images"
        r = httpx.post(f"{base}/v1/verify", timeout=60, headers=auth, files=[
            upload(images / "img1.jpg", "image_a"), upload(images / "img3.jpg", "image_b")])
        assert r.status_code == 200 and r.json()["same"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=20)
