"""Export then erase a subject through the API: the ZIP holds what FRVS kept about them;
afterwards nothing of them is left anywhere (rows, index, crop files) but audit entries."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from callers import LOCAL
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.oversight.models import Role

SUBJECT = "subject-7f3a"
AUDIT_TABLES = {"audit_entries", "audit_subjects"}


@pytest.fixture
def served_app(tmp_path: Path) -> Iterator[tuple[Application, TestClient, dict[str, str]]]:
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    app.store.open()
    token = app.oversight.keys.create_first_admin(LOCAL).token
    with TestClient(create_api(app), headers={"Authorization": f"Bearer {token}"}) as client:
        yield app, client, {"X-Case-Reference": "DSR-1", "X-Purpose": "subject request test"}


def _rows_naming(app: Application, needle: str) -> dict[str, int]:
    """Per table, how many rows mention ``needle`` in any text or JSON column."""
    found: dict[str, int] = {}
    engine = app.store.database.engine
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            hits = sum(1 for row in rows if any(needle in str(v) for v in row))
            if hits:
                found[table] = hits
    return found


def test_export_then_erase_leaves_only_audit_entries(
    served_app: tuple[Application, TestClient, dict[str, str]], data_dir: Path
) -> None:
    app, client, case = served_app
    assert client.post("/v1/galleries", json={"name": "staff", "keep_crops": True}
                       ).status_code == 201
    photos = sorted((data_dir / "identities" / "train" / "obama").iterdir())
    files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    r = client.post(f"/v1/galleries/staff/subjects/{SUBJECT}/templates", files=files,
                    data={"display_name": "Barack", "metadata": json.dumps({"badge": "77"})})
    assert r.status_code == 200 and r.json()["enrolled"] == len(photos), r.text
    probe = [("image", ("probe.jpg", photos[0].read_bytes(), "image/jpeg"))]
    r = client.post("/v1/galleries/staff/identify", files=probe, headers=case)
    assert r.json()["faces"][0]["match"] == SUBJECT

    r = client.get(f"/v1/galleries/staff/subjects/{SUBJECT}/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    assert {"subject.json", "templates.json", "audit.json"} <= names
    subject = json.loads(archive.read("subject.json"))["subject"]
    assert subject["subject"] == SUBJECT and subject["metadata"] == {"badge": "77"}
    templates = json.loads(archive.read("templates.json"))
    assert len(templates) == len(photos) and all(t["crop"] in names for t in templates)
    assert all("vector" not in t for t in templates)
    audit = json.loads(archive.read("audit.json"))
    assert {"enrol", "identify"} <= {e["action"] for e in audit}
    crops = [app.store.media.root / p for p in app.store.media.root.rglob("*.jpg")]
    assert len(crops) == len(photos)

    r = client.post(f"/v1/galleries/staff/subjects/{SUBJECT}/erase")
    assert r.status_code == 200, r.text
    assert r.json()["templates"] == len(photos) and r.json()["crops"] == len(photos)

    # Nothing left but audit entries: no row elsewhere names them, no crop file, no match.
    assert set(_rows_naming(app, SUBJECT)) == AUDIT_TABLES
    assert set(_rows_naming(app, "Barack")) <= AUDIT_TABLES
    assert not any(p.exists() for p in crops)
    r = client.post("/v1/galleries/staff/identify", files=probe, headers=case)
    assert all(c["subject"] != SUBJECT for f in r.json()["faces"] for c in f["candidates"])
    assert client.get(f"/v1/galleries/staff/subjects/{SUBJECT}").status_code == 404
    assert client.get(f"/v1/galleries/staff/subjects/{SUBJECT}/export").status_code == 404

    # The erasure itself is on the trail, which still verifies.
    entries = client.get("/v1/audit", params={"subject": f"staff/{SUBJECT}"}).json()["items"]
    actions = [(e["action"], e["outcome"]) for e in entries][::-1]
    # One enrolment entry per photograph, each written with its template.
    assert actions == [*[("enrol", "ok")] * len(photos), ("identify", "ok"),
                       ("subject.export", "ok"),
                       # One entry: the erasure and everything it removed commit together.
                       ("subject.erase", "ok"),
                       ("subject.export", "refused")]
    assert client.get("/v1/audit/verify").json()["ok"] is True


def test_erasing_an_unknown_subject_is_404_and_audited(
    served_app: tuple[Application, TestClient, dict[str, str]]
) -> None:
    app, client, _ = served_app
    client.post("/v1/galleries", json={"name": "staff"})
    r = client.post("/v1/galleries/staff/subjects/nobody/erase")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    last = client.get("/v1/audit", params={"limit": 1}).json()["items"][0]
    assert last["action"] == "subject.erase" and last["outcome"] == "refused"
    assert app.oversight.keys.all()[0].role is Role.ADMIN
