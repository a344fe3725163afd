"""Issue 12, findings 6-8, as an attacker tries them: roles that saw more than the README
says, a special-category filter passed by spelling, invisible case data, and the edge
cases that answered 500, 400 or a traceback, or looped.

Each test failed on the code before the fix: investigators and reviewers listed every
gallery's subjects and downloaded enrolment photos; ``religión``, ``r_a_c_e``, ``Rasse``
and full-width ``ｅｔｈｎｉｃｉｔｙ`` were accepted, and so was ``"\\u200b"`` as a case
reference and purpose; year 9999 answered 500; a 150 MiB chunked body 400; ``frvs audit
verify`` printed a traceback; a revoked key's console session was sent back to its page.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from frvs_process import FRVS
from stored_alerts import stored_alert

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.caller import AuditContext
from frvs.core.errors import InvalidInputError, ProhibitedAttributeError
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec, SubjectSpec, check_metadata
from frvs.oversight.audit import AuditQuery
from frvs.oversight.models import Role
from frvs.video.service import CameraSpec

PROBLEM = "application/problem+json"


@dataclass
class Served:
    app: Application
    client: TestClient
    tokens: dict[str, str]

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}

    def entries(self, action: str) -> list[dict[str, object]]:
        return [e.as_dict() for e in self.app.oversight.trail.page(
            AuditQuery(limit=50, action=action))]

    def alert(self, gallery: str, subject: str) -> int:
        return stored_alert(self.app.store, gallery, subject)


@pytest.fixture
def served(tmp_path: Path, data_dir: Path) -> Iterator[Served]:
    """An application with a gallery that keeps enrolment crops (so photos exist), one
    subject in it, an edge camera, and a key of every role."""
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    app.store.open()
    tokens = {r.value: key_caller(app, r, r.value)[0] for r in Role}
    face = (data_dir / "identities" / "train" / "obama" / "obama.jpg").read_bytes()
    app.galleries.create(LOCAL, GallerySpec("staff", keep_crops=True))
    app.galleries.enrol(LOCAL, "staff", [EnrolItem("anchor", face, name="anchor.jpg")])
    # An edge node's camera: FRVS never opens its source (the node reports sightings).
    app.video.cameras.add(LOCAL, CameraSpec("edge", "/nonexistent/edge-node-gate", ("staff",)))
    with TestClient(create_api(app), raise_server_exceptions=False) as client:
        yield Served(app, client, tokens)


# -- 6. Roles as documented ------------------------------------------------------------

SUBJECT_ROUTES = ("/v1/galleries/staff/subjects", "/v1/galleries/staff/subjects/anchor",
                  "/v1/galleries/staff/subjects/anchor/photo")


@pytest.mark.parametrize("role", ["investigator", "reviewer", "auditor", "device"])
def test_only_operators_list_subjects_and_download_enrolment_photos(served: Served,
                                                                    role: str) -> None:
    for path in SUBJECT_ROUTES:
        r = served.client.get(path, headers=served.headers(role))
        assert r.status_code == 403, (role, path, r.status_code)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert served.entries("subject.photo") == []
    for role_allowed in ("operator", "admin"):
        for path in SUBJECT_ROUTES:
            r = served.client.get(path, headers=served.headers(role_allowed))
            assert r.status_code == 200, (role_allowed, path, r.text)
    photo = served.client.get(SUBJECT_ROUTES[2], headers=served.headers("operator"))
    assert photo.headers["content-type"] == "image/jpeg"
    downloads = served.entries("subject.photo")  # newest first, each one audited
    assert [e["actor"]["role"] for e in downloads] == ["operator", "admin", "operator"]


def test_a_reviewer_sees_the_enrolled_photo_only_through_the_alert(served: Served) -> None:
    alert = served.alert("staff", "anchor")
    reviewer = served.headers("reviewer")
    r = served.client.get(f"/v1/alerts/{alert}/subject-photo", headers=reviewer)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    operator_copy = served.client.get(SUBJECT_ROUTES[2], headers=served.headers("operator"))
    assert r.content == operator_copy.content
    newest_first = served.entries("subject.photo")
    seen = next(e for e in newest_first if e["actor"]["role"] == "reviewer")
    assert seen["inputs"] == {"alert_id": alert, "gallery": "staff", "subject": "anchor"}
    assert seen["subjects"] == ["staff/anchor"] and seen["outcome"] == "ok"
    # No alert, no photo; the attempt is on the trail too.
    r = served.client.get("/v1/alerts/999999/subject-photo", headers=reviewer)
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
    refused = served.entries("subject.photo")[0]
    assert refused["outcome"] == "refused" and refused["inputs"] == {"alert_id": 999999}
    # Other roles do not get it this way either.
    for role in ("investigator", "auditor", "operator"):
        r = served.client.get(f"/v1/alerts/{alert}/subject-photo", headers=served.headers(role))
        assert r.status_code == 403, role


# -- 7. Special-category metadata, spelled other ways; invisible case data -------------

SPELLINGS = [
    # the finding
    "r_a_c_e", "Rasse", "religión", "ｅｔｈｎｉｃｉｔｙ",
    # separators, case, accents, lookalike letters, invisible characters
    "R-A-C-E", "r.a.c.e", "s k i n", "Skin_Colour", "eth\u200bnicity", "r\u0430ce",
    "ＲＥＬＩＧＩＯＮ", "Éthnie",
    # French
    "origine ethnique", "couleur de peau", "opinion politique", "santé", "orientation sexuelle",
    "émotion", "humeur",
    # German
    "Hautfarbe", "Religionszugehörigkeit", "politische_Meinung", "Gesundheitszustand",
    "sexuelle Orientierung", "Gefühl", "Stimmung",
    # Spanish
    "raza", "etnia", "color de piel", "opinión política", "salud", "orientación sexual",
    "emoción", "estado de ánimo",
    # Portuguese
    "raça", "cor da pele", "religião", "saúde", "orientação sexual", "emoção",
    # Chinese (simplified and traditional)
    "种族", "民族", "肤色", "膚色", "宗教", "政治观点", "健康状况", "性取向", "情绪", "情緒",
]
ALLOWED_KEYS = ["badge", "trace_id", "grace_period", "skinner_box", "department", "Abteilung",
                "departamento", "部门", "employee number", "racetrack_lane", "embrace",
                "demotion_date", "promotion"]


@pytest.mark.parametrize("key", SPELLINGS)
def test_special_category_keys_are_refused_however_spelled(key: str) -> None:
    with pytest.raises(ProhibitedAttributeError, match="special category"):
        check_metadata({key: "x"})
    with pytest.raises(ProhibitedAttributeError):
        SubjectSpec("s", metadata={"badge": "7", key: "x"})


@pytest.mark.parametrize("key", ALLOWED_KEYS)
def test_ordinary_keys_stay_allowed(key: str) -> None:
    assert check_metadata({key: "x"}) == {key: "x"}


def test_the_api_refuses_a_spelled_key_and_enrols_nothing(served: Served, data_dir: Path
                                                          ) -> None:
    face = (data_dir / "identities" / "train" / "biden" / "biden.jpg").read_bytes()
    r = served.client.post("/v1/galleries/staff/subjects/new/templates",
                           headers=served.headers("operator"),
                           data={"metadata": json.dumps({"religión": "x"})},
                           files=[("images", ("b.jpg", face, "image/jpeg"))])
    assert r.status_code == 400 and r.json()["code"] == "prohibited_attribute"
    assert "new" not in [s.external_id for s in served.app.galleries.show("staff")[1]]


@pytest.mark.slow
def test_the_cli_refuses_the_spellings_of_the_check(tmp_path: Path, data_dir: Path) -> None:
    """``../shared/checks/hardening`` part 4, as the check runs it."""
    env = {**os.environ, "FRVS_DATA_DIR": str(tmp_path / "data")}

    def frvs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FRVS, *args], capture_output=True, text=True, env=env,
                              timeout=300, check=False)

    assert frvs("gallery", "create", "g").returncode == 0
    for i, key in enumerate(["r_a_c_e", "Rasse", "religión", "ｅｔｈｎｉｃｉｔｙ"], start=1):
        done = frvs("enroll", "g", "--subject", f"s{i}", "--meta", f"{key}=x",
                    str(data_dir / "pairs" / "images" / f"img{i}.jpg"))
        assert done.returncode == 22, (key, done.stdout, done.stderr)
        assert "prohibited_attribute" in done.stderr and "Traceback" not in done.stderr
    shown = json.loads(frvs("gallery", "show", "g", "--json").stdout)
    assert shown["subject_list"] == [], shown


INVISIBLE = ["\u200b", " \u200b\t", "\u200d\u2060", "\u3164", "\u2800", "\ufeff", "\u00a0"]


@pytest.mark.parametrize("blank", INVISIBLE)
def test_case_reference_and_purpose_need_visible_characters(blank: str) -> None:
    for case, purpose in ((blank, "fraud inquiry"), ("CASE-1", blank), (blank, blank)):
        with pytest.raises(InvalidInputError, match="case reference and a purpose"):
            AuditContext(LOCAL.actor, case, purpose).require_case("identify")
    AuditContext(LOCAL.actor, "案件-1", "調査").require_case("identify")


def test_an_invisible_case_is_refused_over_the_api_and_audited(served: Served) -> None:
    r = served.client.post("/v1/crossmatch", headers=served.headers("investigator"), json={
        "gallery_a": "staff", "case_reference": "\u200b", "purpose": "\u200b"})
    assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
    refused = served.entries("crossmatch")[0]
    assert refused["outcome"] == "refused"


# -- 8. Edge cases -----------------------------------------------------------------------

@pytest.mark.parametrize(("role", "path"), [
    ("auditor", "/v1/stats?until=9999-12-31T23:59:59Z"),
    ("auditor", "/v1/stats?since=0001-01-01T00:00:00%2B01:00"),
    ("operator", "/v1/attendance?day=9999-12-31"),
    ("reviewer", "/v1/alerts?since=9999-12-31T23:59:59-01:00"),
])
def test_times_at_the_end_of_the_calendar_answer_400(served: Served, role: str,
                                                     path: str) -> None:
    r = served.client.get(path, headers=served.headers(role))
    assert r.status_code == 400, (path, r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "out of range" in r.json()["detail"]


def test_a_sighting_in_year_9999_is_refused(served: Served, data_dir: Path) -> None:
    crop = (data_dir / "identities" / "train" / "obama" / "obama.jpg").read_bytes()
    r = served.client.post("/v1/sightings", headers=served.headers("device"),
                           files=[("image", ("c.jpg", crop, "image/jpeg"))],
                           data={"camera": "edge", "track_id": "1",
                                 "first_seen": "9999-12-31T23:59:58Z",
                                 "last_seen": "9999-12-31T23:59:59Z"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)


def test_an_oversized_chunked_body_answers_413(served: Served) -> None:
    """150 MiB without a Content-Length (chunked): the multipart parser turned the
    overflow into a 400; it is a 413 like a declared oversized body."""
    chunk = b"\0" * (1024 * 1024)

    def body() -> Iterator[bytes]:
        yield b"--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n"
        for _ in range(150):
            yield chunk

    r = served.client.post("/v1/detect", content=body(), headers=served.headers(
        "operator", **{"Content-Type": "multipart/form-data; boundary=x"}))
    assert r.status_code == 413, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "request_too_large"


@pytest.mark.slow
def test_audit_verify_on_an_unreadable_row_reports_it_without_a_traceback(
        tmp_path: Path) -> None:
    env = {**os.environ, "FRVS_DATA_DIR": str(tmp_path / "data")}

    def frvs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FRVS, *args], capture_output=True, text=True, env=env,
                              timeout=300, check=False)

    for name in ("a", "b", "c"):
        assert frvs("gallery", "create", name).returncode == 0
    with sqlite3.connect(tmp_path / "data" / "frvs.db") as db:
        db.execute("UPDATE audit_entries SET inputs = '{not json' WHERE seq = 2")
    done = frvs("audit", "verify", "--json")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 30
    report = json.loads(done.stdout)
    assert [(p["kind"], p["seq"]) for p in report["problems"]] == [("changed", 2)]
    assert "not valid JSON" in report["problems"][0]["detail"]
    assert report["entries"] == 3  # the entries after it were still walked
    plain = frvs("audit", "verify")
    assert plain.returncode == 30 and "Traceback" not in plain.stderr
    assert "entry 2" in plain.stdout and "TAMPERED" in plain.stdout
    listed = frvs("audit", "list")
    assert listed.returncode == 30 and "Traceback" not in listed.stderr
    assert "cannot be read" in listed.stderr


def test_a_revoked_keys_console_session_lands_on_sign_in(served: Served) -> None:
    """The page's scripts go to ``/?next=PAGE`` on a 401; that one request must show the
    sign-in page, not send the browser back to the page whose calls fail (the loop)."""
    client = served.client
    issued = served.app.oversight.keys.create(LOCAL, Role.REVIEWER, "leaver")
    signed = client.post("/sign-in", data={"key": issued.token}, follow_redirects=False)
    assert signed.status_code == 303 and "frvs_console" in signed.cookies
    assert client.get("/console/alerts").status_code == 200
    served.app.oversight.keys.revoke(LOCAL, issued.key.key_id)
    assert client.get("/v1/alerts").status_code == 401
    landing = client.get("/?next=/console/alerts", follow_redirects=False)
    assert landing.status_code == 200, landing.headers.get("location")
    assert 'action="/sign-in"' in landing.text and "session has ended" in landing.text
    assert "frvs_console" not in client.cookies  # the stale cookie is cleared
    # A console page opened directly leads to sign-in too, not to the page.
    again = client.get("/console/alerts", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/?next=")
