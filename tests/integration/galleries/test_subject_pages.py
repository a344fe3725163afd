"""GET /v1/galleries/{name}/subjects pages in the query (keyset on the subject id), on
SQLite and PostgreSQL: walking the pages yields every subject once, in the code point
order the list has always had (whatever the database's collation), with its template
count; a malformed cursor is a 400, but an unknown gallery is a 404 first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from postgres import fresh_database

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.caller import Role
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec, SubjectSpec

# Upper before lower case, digits as text, accented letters after 'z': code point order.
IDS = ["zoe", "Bob", "alice", "10", "9", "Ärger", "émile", "a-1", "a_1", "Zed", "ß"]
ENROLLED = "lin-manuel-miranda"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path, data_dir: Path
        ) -> Iterator[Application]:
    # SQLite: no URL, the file in the data directory.
    database = fresh_database("frvs_pages") if request.param == "postgres" else nullcontext()
    with database as url:
        application = build_application(load_settings(data_dir=tmp_path / "data",
                                                      database_url=url))
        application.store.open()
        application.galleries.create(LOCAL, GallerySpec("g"))
        application.galleries.enrol(LOCAL, "g", [
            EnrolItem(ENROLLED, data_dir / "video" / f"{ENROLLED}.png")])
        now = datetime.now(UTC)
        with application.store.unit(write=True) as uow:
            gallery = uow.galleries.get("g")
            for external_id in IDS:
                uow.subjects.get_or_add(gallery, SubjectSpec(external_id), now)
        yield application
        application.stop()


def _walk(client: TestClient, headers: dict[str, str], limit: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = client.get("/v1/galleries/g/subjects", headers=headers, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_pages_walk_every_subject_once_in_code_point_order(app: Application) -> None:
    token, _ = key_caller(app, Role.OPERATOR, "olga")
    headers = {"Authorization": f"Bearer {token}"}
    expected = sorted([*IDS, ENROLLED])
    with TestClient(create_api(app)) as client:
        for limit in (1, 2, 5, len(expected), 500):
            items = _walk(client, headers, limit)
            assert [i["subject"] for i in items] == expected, limit
            counts = {i["subject"]: i["templates"] for i in items}
            assert counts == {s: int(s == ENROLLED) for s in expected}
        # The last page of an exact fit says so: no cursor to an empty page.
        r = client.get("/v1/galleries/g/subjects", headers=headers,
                       params={"limit": len(expected)})
        assert r.json()["next_cursor"] is None
        one = client.get(f"/v1/galleries/g/subjects/{ENROLLED}", headers=headers)
        assert (one.status_code, one.json()["templates"]) == (200, 1), one.text
        missing = client.get("/v1/galleries/g/subjects/nobody", headers=headers)
        assert (missing.status_code, missing.json()["detail"]) == (
            404, "no subject 'nobody' in gallery 'g'"), missing.text


def test_an_unknown_gallery_is_404_before_a_malformed_cursor_is_400(app: Application) -> None:
    token, _ = key_caller(app, Role.OPERATOR, "olga")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_api(app)) as client:
        r = client.get("/v1/galleries/nowhere/subjects", headers=headers,
                       params={"cursor": "%%%"})
        assert r.status_code == 404, r.text
        r = client.get("/v1/galleries/g/subjects", headers=headers, params={"cursor": "%%%"})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_input"), r.text
