"""16 clients enrol and identify at once against ONE real ``frvs serve`` process, on
SQLite and on PostgreSQL: no lost writes, no 5xx, and the audit trail (appended by
all of them concurrently) still verifies with one entry per operation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from postgres import fresh_database
from service_helpers import Served, served

from frvs.oversight.models import Role

CLIENTS = 16
IDENTIFY_PER_CLIENT = 2
CASE = {"X-Case-Reference": "LOAD-1", "X-Purpose": "concurrency test"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (SQLite in the data dir) or a fresh PostgreSQL database, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_database("frvs_service") as url:
        yield url


def _client_work(service: Served, token: str, index: int, photos: list[Path]) -> list[int]:
    """One client: enrol its own subject, then identify; returns every status seen."""
    statuses = []
    photo = photos[index % len(photos)]
    with service.client(token) as client:
        r = client.post(f"/v1/galleries/crowd/subjects/client-{index:02d}/templates",
                        files=[("images", (photo.name, photo.read_bytes(), "image/jpeg"))])
        statuses.append(r.status_code)
        if r.status_code == 200:
            assert r.json()["enrolled"] == 1, r.text
        probe = photos[(index + 1) % len(photos)]
        for _ in range(IDENTIFY_PER_CLIENT):
            r = client.post("/v1/galleries/crowd/identify", headers=CASE,
                            files=[("image", (probe.name, probe.read_bytes(), "image/jpeg"))])
            statuses.append(r.status_code)
    return statuses


@pytest.mark.slow
def test_sixteen_clients_at_once(tmp_path: Path, data_dir: Path,
                                 database_url: str | None) -> None:
    env = {"FRVS_DATA_DIR": str(tmp_path / "data"),
           "FRVS_API__SEARCH_RATE_PER_MINUTE": "100000", "FRVS_API__SEARCH_BURST": "1000"}
    if database_url:
        env["FRVS_DATABASE_URL"] = database_url
    photos = sorted((data_dir / "identities" / "train").glob("*/*.*"))
    with served(env, tmp_path / "serve.log") as service, service.client() as admin:
        assert admin.post("/v1/galleries", json={"name": "crowd"}).status_code == 201
        tokens = []
        for i in range(CLIENTS):  # each client its own key: operator+investigator work
            role = Role.ADMIN.value
            r = admin.post("/v1/keys", json={"name": f"client-{i}", "role": role})
            tokens.append(r.json()["token"])
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(lambda i: _client_work(service, tokens[i], i, photos),
                                    range(CLIENTS)))
        statuses = Counter(s for r in results for s in r)
        assert statuses == {200: CLIENTS * (1 + IDENTIFY_PER_CLIENT)}, statuses

        # No lost writes: every subject and template is there, and found by search.
        gallery = admin.get("/v1/galleries/crowd").json()
        assert gallery["subjects"] == CLIENTS and gallery["templates"] == CLIENTS
        subjects = admin.get("/v1/galleries/crowd/subjects").json()["items"]
        assert [s["subject"] for s in subjects] == [f"client-{i:02d}" for i in range(CLIENTS)]
        probe = photos[0]
        r = admin.post("/v1/galleries/crowd/identify", headers=CASE,
                       files=[("image", (probe.name, probe.read_bytes(), "image/jpeg"))])
        assert r.json()["faces"][0]["match"] is not None

        # The trail took every concurrent append, in one unbroken chain.
        check = admin.get("/v1/audit/verify").json()
        assert check["ok"] is True, check["problems"]
        actions = Counter()
        cursor = None
        while True:
            page = admin.get("/v1/audit", params={"limit": 500, "cursor": cursor} if cursor
                             else {"limit": 500}).json()
            actions.update(e["action"] for e in page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert actions["enrol"] == CLIENTS
        assert actions["identify"] == CLIENTS * IDENTIFY_PER_CLIENT + 1
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
