"""Hardening (rate limits with Retry-After, body size, content sniffing, timeouts, no
stack traces) and the oversight statistics, through the real API in-process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from stored_alerts import stored_alert

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec
from frvs.oversight.models import Role


def _app(tmp_path: Path, **api: Any) -> tuple[Application, dict[str, str]]:
    app = build_application(load_settings(data_dir=tmp_path / "data", api=api))
    app.store.open()
    tokens = {r.value: key_caller(app, r, r.value)[0] for r in Role}
    return app, tokens


def _h(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture
def face(data_dir: Path) -> bytes:
    return (data_dir / "identities" / "train" / "obama" / "obama.jpg").read_bytes()


def test_search_rate_limit_answers_429_with_retry_after(tmp_path: Path, face: bytes) -> None:
    app, tokens = _app(tmp_path, search_rate_per_minute=1, search_burst=2)
    app.galleries.create(LOCAL, GallerySpec("staff"))
    case = {"X-Case-Reference": "C-1", "X-Purpose": "rate test"}
    with TestClient(create_api(app)) as client:
        codes = [client.post("/v1/galleries/staff/identify", headers=_h(tokens["investigator"],
                                                                         **case),
                             files=[("image", ("p.jpg", face, "image/jpeg"))])
                 for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        limited = codes[-1]
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # The bucket is per key: another investigator is not limited by the first.
        other, _ = key_caller(app, Role.INVESTIGATOR, "other")
        r = client.post("/v1/galleries/staff/identify", headers=_h(other, **case),
                        files=[("image", ("p.jpg", face, "image/jpeg"))])
        assert r.status_code == 200


def test_body_size_sniffing_and_no_tracebacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    app, tokens = _app(tmp_path, max_request_bytes=1024 * 1024)
    op = _h(tokens["operator"])
    with TestClient(create_api(app), raise_server_exceptions=False) as client:
        big = b"\xff\xd8\xff" + b"\0" * (2 * 1024 * 1024)
        r = client.post("/v1/detect", headers=op, files=[("image", ("big.jpg", big, "image/jpeg"))])
        assert r.status_code == 413 and r.json()["code"] == "request_too_large"
        # Judged by content, not by the name or the declared type.
        r = client.post("/v1/detect", headers=op,
                        files=[("image", ("photo.jpg", b"<svg onload=alert(1)>", "image/jpeg"))])
        assert r.status_code == 415 and r.json()["code"] == "not_an_image"
        assert r.headers["x-content-type-options"] == "nosniff"

        def explode() -> None:
            raise RuntimeError("secret internal detail /etc/frvs")

        monkeypatch.setattr(app.galleries, "all", explode)
        r = client.get("/v1/galleries", headers=op)
        assert r.status_code == 500 and r.json()["code"] == "internal_error"
        assert "secret" not in r.text and "Traceback" not in r.text


def test_slow_request_times_out_with_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """A request still running after ``request_timeout_s`` (1 s, the least allowed) is
    answered 503 while its work goes on. The work is held on an event, released once the
    answer is in, rather than by a sleep long enough to outlast the timeout."""
    app, tokens = _app(tmp_path, request_timeout_s=1)
    original = app.galleries.all
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    def held() -> Any:
        entered.set()
        release.wait(30)  # bounded, so a broken timeout fails the test instead of hanging it
        try:
            return original()
        finally:
            finished.set()

    with TestClient(create_api(app)) as client:
        # The first request pays one-off start-up work; the timed one must reach the route.
        client.get("/v1/galleries", headers=_h(tokens["operator"]))
        monkeypatch.setattr(app.galleries, "all", held)
        started = time.monotonic()
        r = client.get("/v1/galleries", headers=_h(tokens["operator"]))
        waited = time.monotonic() - started
        answered_while_held = entered.is_set() and not finished.is_set()
        release.set()
        assert finished.wait(10)
    assert r.status_code == 503 and r.json()["code"] == "request_timeout"
    assert answered_while_held
    assert 0.9 <= waited < 10, waited


def _alert(app: Application) -> int:
    return stored_alert(app.store, "staff", score=0.8, two_person=False)


@pytest.fixture
def stats_world(tmp_path: Path, face: bytes) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app, tokens = _app(tmp_path)
    app.galleries.create(LOCAL, GallerySpec("staff"))
    app.galleries.enrol(LOCAL, "staff", [EnrolItem("a", face, name="a.jpg")])
    app.galleries.enrol(LOCAL, "staff", [EnrolItem("b", face, name="b.jpg")])
    app.galleries.delete_subject(LOCAL, "staff", "b")
    alerts = [_alert(app) for _ in range(4)]
    with TestClient(create_api(app)) as client:
        for purpose in ("missing person", "missing person", "fraud"):
            client.post("/v1/galleries/staff/identify",
                        headers=_h(tokens["investigator"], **{"X-Case-Reference": "C",
                                                              "X-Purpose": purpose}),
                        files=[("image", ("p.jpg", face, "image/jpeg"))])
        for alert_id, verdict in zip(alerts, ["dismiss", "dismiss", "dismiss", "confirm"],
                                     strict=True):
            r = client.post(f"/v1/alerts/{alert_id}/review", headers=_h(tokens["reviewer"]),
                            json={"verdict": verdict, "note": "checked"})
            assert r.status_code == 200, r.text
        yield client, tokens


def test_statistics_count_searches_by_purpose_and_the_dismissed_share(
    stats_world: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = stats_world
    r = client.get("/v1/stats", params={"period": "month"}, headers=_h(tokens["auditor"]))
    assert r.status_code == 200, r.text
    bucket = r.json()["buckets"][-1]
    assert bucket["searches_by_purpose"] == {"fraud": 1, "missing person": 2}
    assert bucket["enrolments"] == 2 and bucket["deletions"] == 1
    assert (bucket["alerts_confirmed"], bucket["alerts_dismissed"]) == (1, 3)
    assert bucket["dismissed_share"] == 0.75
    reviews = client.get("/v1/audit", params={"action": "alert.review"},
                         headers=_h(tokens["auditor"])).json()["items"]
    assert len(reviews) == 4 and all(e["actor"]["role"] == "reviewer" for e in reviews)


def test_alert_pages_follow_the_cursor(stats_world: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = stats_world
    first = client.get("/v1/alerts", params={"limit": 3}, headers=_h(tokens["reviewer"])).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = client.get("/v1/alerts", params={"limit": 3, "cursor": first["next_cursor"]},
                        headers=_h(tokens["reviewer"])).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    ids = [a["id"] for a in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    bad = client.get("/v1/alerts", params={"cursor": "not-a-cursor"},
                     headers=_h(tokens["reviewer"]))
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"


def test_searches_need_a_case_and_a_purpose_which_are_audited(
    stats_world: tuple[TestClient, dict[str, str]], face: bytes
) -> None:
    client, tokens = stats_world
    inv = _h(tokens["investigator"])
    probe = [("image", ("p.jpg", face, "image/jpeg"))]
    r = client.post("/v1/galleries/staff/identify", headers=inv, files=probe)
    assert r.status_code == 400 and "case reference" in r.json()["detail"]
    r = client.post("/v1/crossmatch", headers=inv, json={"gallery_a": "staff"})
    assert r.status_code == 400
    r = client.get("/v1/sightings", headers=inv)
    assert r.status_code == 400
    # Given as form fields instead of headers, they land in the entry with the key's role.
    r = client.post("/v1/galleries/staff/identify", headers=inv, files=probe,
                    data={"case_reference": "CASE-9", "purpose": "lost child"})
    assert r.status_code == 200
    entry = client.get("/v1/audit", params={"action": "identify", "limit": 1},
                       headers=_h(tokens["auditor"])).json()["items"][0]
    assert (entry["case_reference"], entry["purpose"]) == ("CASE-9", "lost child")
    assert entry["actor"]["role"] == "investigator" and entry["inputs"]["probe_sha256"]
    assert entry["subjects"] == ["staff/a"] and entry["result"]["matches"] == ["a"]


def test_patch_bodies_that_change_nothing_or_hold_non_numbers_are_refused(
        tmp_path: Path) -> None:
    app, tokens = _app(tmp_path)
    app.galleries.create(LOCAL, GallerySpec("staff"))
    op = _h(tokens["operator"])
    with TestClient(create_api(app)) as client:
        assert client.post("/v1/cameras", headers=op, json={
            "name": "door", "source_url": "/dev/video9"}).status_code == 201
        empty = client.patch("/v1/galleries/staff", headers=op, json={})
        assert empty.status_code == 400 and "nothing to change" in empty.text
        # Python's JSON reader takes Infinity and NaN, so they are sent as raw text.
        for roi, status in (("0, 0, Infinity, 10", 422), ("0, 0, NaN, 10", 422),
                            ("-5, 0, 10, 10", 400)):
            body = '{"roi": [' + roi + "]}"
            bad = client.patch("/v1/cameras/door", headers={**op, "Content-Type":
                                                             "application/json"},
                               content=body.encode())
            assert bad.status_code == status, (roi, bad.text)
        assert client.get("/v1/cameras/door", headers=op).json()["roi"] is None
        ok = client.patch("/v1/cameras/door", headers=op, json={"roi": [0, 0, 320, 240]})
        assert ok.status_code == 200 and ok.json()["roi"] == [0, 0, 320, 240]
