"""Issue 12, finding 3, as an attacker tries it: uploads small in bytes and huge in
pixels, and many of them.

Each test failed on the code before the fix (but the pixel comparison, which keeps the
leaner decoder honest): 8 concurrent 16383 x 2441 WebP uploads (40 Mpx, 85 kB each) took
a served process from 0.3 to 7.5 GB and left it at 3.1 GB; decoding one such image
peaked at 1 GB; a 1 x 39,000,000 PNG was decoded (3.5 s of CPU) and answered 200;
nothing bounded the pixels in flight (no 503) and detect, verify and enrolment had no
per-key rate limit.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from callers import LOCAL, key_caller
from factories import encode
from fastapi.testclient import TestClient
from frvs_process import FRVS, serve_process
from PIL import Image, ImageOps

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.errors import BusyError, ImageAspectRatioError
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec
from frvs.imaging.budget import PixelBudget
from frvs.imaging.decode import decode_image, inspect_image
from frvs.oversight.audit import AuditQuery
from frvs.oversight.models import Role
from frvs.video.service import CameraSpec

PROBLEM = "application/problem+json"
CASE = {"X-Case-Reference": "CASE-12", "X-Purpose": "bounded work regression test"}
WIDE = (16383, 2441)
"""The issue's upload: 40 Mpx, just under the default pixel limit."""


@pytest.fixture(scope="module")
def wide_webp() -> bytes:
    return encode(Image.new("RGB", WIDE, (128, 128, 128)), "WEBP", quality=10)


@pytest.fixture(scope="module")
def line_png() -> bytes:
    return encode(Image.new("L", (1, 39_000_000)), "PNG", optimize=True)


# -- Decoding: refused from the header, few full-size buffers, the same pixels ---------


def test_a_line_of_39_million_pixels_is_refused_from_its_header(line_png: bytes) -> None:
    assert len(line_png) < 100_000
    for refuse in (inspect_image, decode_image):
        began = time.perf_counter()
        with pytest.raises(ImageAspectRatioError, match="1x39000000") as refused:
            refuse(line_png, None, "line.png")
        assert time.perf_counter() - began < 0.5  # decoding it took 3.5 s
        assert refused.value.code == "image_aspect_ratio"


_PEAK_SCRIPT = """
import resource, sys
from frvs.imaging.decode import decode_image
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = decode_image(data)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(image.nbytes, (after - before) * 1024)
"""


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_decoding_40_mpx_holds_few_full_size_buffers(fmt: str, tmp_path: Path) -> None:
    """A fresh process's peak memory while decoding: the BGR result (120 MB) and at
    most about two more of its size (before: 1 GB for WebP, 690 MB for PNG)."""
    path = tmp_path / f"wide.{fmt.lower()}"
    path.write_bytes(encode(Image.new("RGB", WIDE, (90, 120, 150)), fmt,
                            **({"quality": 10} if fmt == "WEBP" else {})))
    run = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path)], check=True,
                         capture_output=True, text=True, timeout=120)
    result_bytes, peak = map(int, run.stdout.split())
    assert result_bytes == WIDE[0] * WIDE[1] * 3
    assert peak < 3.5 * result_bytes, f"decoding peaked at {peak / 2**20:.0f} MiB"


def _reference(data: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """What Pillow alone makes of an image: upright, transparency on white, BGR."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(image.convert("RGB"))[:, :, ::-1]


def _cases() -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(12)
    photo = Image.fromarray(rng.integers(0, 256, (61, 87, 3), dtype=np.uint8))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        for fmt in ("JPEG", "PNG", "WEBP"):
            yield f"{fmt}-orientation-{orientation}", encode(photo, fmt, exif=exif)
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (61, 87), dtype=np.uint8)))
    yield "PNG-RGBA", encode(rgba, "PNG")
    yield "WEBP-RGBA", encode(rgba, "WEBP", lossless=True)
    yield "WEBP-RGBA-lossy", encode(rgba, "WEBP", quality=70)
    yield "PNG-LA", encode(rgba.convert("LA"), "PNG")
    yield "PNG-P-transparent", encode(photo.convert("P"), "PNG", transparency=3)
    yield "JPEG-CMYK", encode(photo.convert("CMYK"), "JPEG")
    yield "GIF", encode(photo, "GIF")
    yield "TIFF-RGBA", encode(rgba, "TIFF")


@pytest.mark.parametrize(("name", "data"), list(_cases()), ids=[n for n, _ in _cases()])
def test_decoded_pixels_are_pillows(name: str, data: bytes) -> None:
    """Decoding with fewer copies changes no pixel (templates stay comparable)."""
    decoded = decode_image(data, name=name)
    expected = _reference(data)
    assert decoded.shape == expected.shape and decoded.flags.c_contiguous
    assert np.array_equal(decoded, expected)


# -- The pixel budget -------------------------------------------------------------------


def _until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_the_budget_serves_in_order_then_answers_busy() -> None:
    budget = PixelBudget(100, wait_s=0.2)
    first = budget.reserve(60)
    began = time.perf_counter()
    with pytest.raises(BusyError) as busy:
        budget.reserve(50, "second.png")
    assert 0.15 < time.perf_counter() - began < 2
    assert busy.value.retry_after >= 1 and "second.png" in busy.value.message
    order: list[str] = []

    def later(name: str, pixels: int) -> None:
        with budget.hold(pixels):
            order.append(name)

    big = threading.Thread(target=later, args=("big", 80))
    big.start()
    _until(lambda: budget.waiting == 1)
    small = threading.Thread(target=later, args=("small", 10))  # would fit, but is second
    small.start()
    _until(lambda: budget.waiting == 2)
    assert order == []
    first.release()
    first.release()  # idempotent
    big.join()
    small.join()
    assert order == ["big", "small"] and budget.in_use == 0


def test_an_image_larger_than_the_budget_waits_for_all_of_it() -> None:
    budget = PixelBudget(100, wait_s=0.1)
    with budget.hold(10), pytest.raises(BusyError):
        budget.reserve(1_000)
    with budget.hold(1_000):
        assert budget.in_use == 100
    assert budget.in_use == 0


# -- Every upload path, in process: 503 busy, 429 per key, both audited ------------------


@dataclass
class Service:
    app: Application
    client: TestClient
    tokens: dict[str, str]
    face: bytes

    def entries(self, action: str) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.app.oversight.trail.page(
            AuditQuery(limit=20, action=action))]


def _service(tmp: Path, face: bytes, **settings: Any) -> Iterator[Service]:
    app = build_application(load_settings(data_dir=tmp / "data", **settings))
    app.store.open()
    app.galleries.create(LOCAL, GallerySpec("staff"))
    app.galleries.enrol(LOCAL, "staff", [EnrolItem("obama", face, name="obama.jpg")])
    # An edge node's camera: FRVS never opens its source (the node reports sightings).
    app.video.cameras.add(LOCAL, CameraSpec("gate", "/nonexistent/edge-gate", ("staff",)))
    tokens = {"admin": key_caller(app, Role.ADMIN, "admin")[0],
              "device": app.oversight.keys.create(LOCAL, Role.DEVICE, "node",
                                                  cameras=["gate"]).token}
    with TestClient(create_api(app), raise_server_exceptions=False) as client:
        yield Service(app, client, tokens, face)


@pytest.fixture(scope="module")
def face(data_dir: Path) -> bytes:
    return (data_dir / "identities" / "train" / "obama" / "obama.jpg").read_bytes()


@pytest.fixture(scope="module")
def busy_service(tmp_path_factory: pytest.TempPathFactory, face: bytes) -> Iterator[Service]:
    """Rates high enough never to answer 429; a budget that waits 0.3 s."""
    many = {f"{kind}_{what}": 10_000 for kind in ("search", "detect", "verify", "enrol")
            for what in ("rate_per_minute", "burst")}
    yield from _service(tmp_path_factory.mktemp("busy"), face, api=many,
                        limits={"pixel_wait_s": 0.3})


@pytest.fixture(scope="module")
def limited_service(tmp_path_factory: pytest.TempPathFactory, face: bytes
                    ) -> Iterator[Service]:
    """One request of each kind per key, then one a minute."""
    once = {f"{kind}_{what}": 1 for kind in ("detect", "verify", "enrol")
            for what in ("rate_per_minute", "burst")}
    yield from _service(tmp_path_factory.mktemp("limited"), face, api=once,
                        devices={"submit_rate_per_minute": 1, "submit_burst": 1})


Call = Callable[[Service], httpx.Response]


def _photo(s: Service, field: str = "image") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, ("obama.jpg", s.face, "image/jpeg"))]


def _admin(s: Service, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {s.tokens['admin']}", **extra}


def _submit(s: Service) -> httpx.Response:
    now = datetime.now(UTC)
    report = {"camera": "gate", "track_id": "1", "first_seen": now.isoformat(),
              "last_seen": (now + timedelta(seconds=1)).isoformat()}
    return s.client.post("/v1/sightings", files=_photo(s), data=report,
                         headers={"Authorization": f"Bearer {s.tokens['device']}"})


UPLOADS: dict[str, tuple[str | None, Call]] = {
    # path: (audit action of a refusal, or None when the path is not audited; the call)
    "detect": (None, lambda s: s.client.post("/v1/detect", headers=_admin(s),
                                             files=_photo(s))),
    "verify": ("verify", lambda s: s.client.post(
        "/v1/verify", headers=_admin(s), files=_photo(s, "image_a") + _photo(s, "image_b"))),
    "enrol": ("enrol", lambda s: s.client.post(
        "/v1/galleries/staff/subjects/s-1/templates", headers=_admin(s),
        files=_photo(s, "images"))),
    "identify": ("identify", lambda s: s.client.post(
        "/v1/galleries/staff/identify", headers=_admin(s, **CASE), files=_photo(s))),
    "sighting search": ("sightings.search", lambda s: s.client.post(
        "/v1/sightings/search", headers=_admin(s, **CASE), files=_photo(s))),
    "device submission": ("sighting.submit", _submit),
}


@pytest.mark.parametrize("path", list(UPLOADS))
def test_a_full_pixel_budget_answers_503_busy_with_retry_after(busy_service: Service,
                                                               path: str) -> None:
    action, call = UPLOADS[path]
    budget = busy_service.app.pixel_budget
    held = budget.reserve(budget.capacity)  # someone else's 80 Mpx are being analysed
    try:
        r = call(busy_service)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "busy" and int(r.headers["retry-after"]) >= 1
        assert busy_service.client.get("/healthz").status_code == 200
    finally:
        held.release()
    if action is not None:  # the refusal is on the trail, with its reason
        refused = busy_service.entries(action)[0]
        assert (refused["outcome"], refused["result"]["error"]) == ("refused", "busy")
    assert call(busy_service).status_code in (200, 201)
    assert budget.in_use == 0


RATED = {"detect": "detect", "verify": "verify", "enrol": "enrol",
         "device submission": "sighting.submit"}


@pytest.mark.parametrize("path", list(RATED))
def test_per_key_rate_limits_answer_429_and_are_audited(limited_service: Service,
                                                        path: str) -> None:
    _, call = UPLOADS[path]
    assert call(limited_service).status_code in (200, 201)
    r = call(limited_service)
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    refused = limited_service.entries(RATED[path])[0]
    assert (refused["outcome"], refused["result"]["error"]) == ("refused", "rate_limited")


# -- The attack on a real ``frvs serve`` -----------------------------------------


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """``frvs serve`` with the default configuration: its process, base URL, admin key."""
    env = {**os.environ, "FRVS_DATA_DIR": str(tmp_path / "data")}
    admin = json.loads(subprocess.run([FRVS, "init", "--json"], env=env, check=True,
                                      capture_output=True, text=True).stdout)["admin_key"]
    with serve_process(env, tmp_path / "serve.log") as (proc, base):
        yield proc, base, admin


@pytest.mark.slow
def test_eight_concurrent_40_mpx_uploads_keep_the_service_bounded_and_answering(
        served: tuple[subprocess.Popen[bytes], str, str], wide_webp: bytes, face: bytes,
        line_png: bytes) -> None:
    proc, base, admin = served
    auth = {"Authorization": f"Bearer {admin}"}
    warm = httpx.post(f"{base}/v1/detect", headers=auth, timeout=120,
                      files={"image": ("obama.jpg", face, "image/jpeg")})
    assert warm.status_code == 200  # the models are loaded: this is the idle figure
    time.sleep(1)
    idle = _rss_mb(proc.pid)
    peak, health_ms, statuses = idle, [], []
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        with httpx.Client(base_url=base, timeout=10) as client:
            while not done.is_set():
                peak = max(peak, _rss_mb(proc.pid))
                began = time.perf_counter()
                health = client.get("/healthz").status_code
                health_ms.append(1000 * (time.perf_counter() - began) if health == 200
                                 else float("inf"))
                time.sleep(0.02)

    def upload() -> None:
        r = httpx.post(f"{base}/v1/detect", headers=auth, timeout=120,
                       files={"image": ("wide.webp", wide_webp, "image/webp")})
        statuses.append(r.status_code)

    watcher = threading.Thread(target=watch)
    watcher.start()
    senders = [threading.Thread(target=upload) for _ in range(8)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    watcher.join()
    assert peak < 1536, f"peak RSS {peak:.0f} MB (idle {idle:.0f} MB)"
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    # Goal 100 ms (benchmarks/hostile.py); a shared CI machine is allowed twice that.
    assert statistics.quantiles(health_ms, n=20)[18] < 200, sorted(health_ms)[-5:]
    settled = []
    for _ in range(20):  # back within 200 MB of idle within 10 s
        settled.append(_rss_mb(proc.pid))
        if settled[-1] < idle + 200:
            break
        time.sleep(0.5)
    assert settled[-1] < idle + 200, f"idle {idle:.0f} MB, then {settled}"
    began = time.perf_counter()
    r = httpx.post(f"{base}/v1/detect", headers=auth, timeout=30,
                   files={"image": ("line.png", line_png, "image/png")})
    assert r.status_code == 413 and r.json()["code"] == "image_aspect_ratio"
    assert time.perf_counter() - began < 2
    # 2,000 empty scans over a 2400x2400 progressive frame: 54 kB, 1.5 s of CPU to decode.
    flat = io.BytesIO()
    Image.new("RGB", (2400, 2400), (120, 120, 120)).save(flat, "JPEG", progressive=True)
    scans = flat.getvalue()[:-2] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x10" * 2000 + b"\xff\xd9"
    r = httpx.post(f"{base}/v1/detect", headers=auth, timeout=30,
                   files={"image": ("scans.jpg", scans, "image/jpeg")})
    assert r.status_code == 413 and r.json()["code"] == "image_too_large", r.text
    assert "scan markers" in r.json()["detail"]
