"""`frvs doctor` finds every disagreement between the store and its trail, and what used
to leave no trace now does: camera changes, sightings listings (CLI and API), downloads
of enrolment photos and alert evidence, and refusals, each with its caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import factories
import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.cli.main import app as cli
from frvs.config.settings import load_settings
from frvs.core.caller import Role
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.oversight.audit import AuditQuery
from frvs.oversight.doctor import examine
from frvs.pipeline.camera import CAMERA_RUNNER
from frvs.video.models import TrackDecision


@pytest.fixture
def app(data_path: Path, data_dir: Path) -> Iterator[Application]:
    # The shared clip's folder is a media root: an API camera may name the clip.
    application = build_application(load_settings(
        data_dir=data_path, video={"media_roots": [str(data_dir / "video")]}))
    application.start()
    yield application
    application.stop()


def _enrolled(app: Application, data_dir: Path) -> None:
    app.galleries.create(LOCAL, GallerySpec("staff", keep_crops=True))
    ids = data_dir / "identities" / "train"
    report = app.galleries.enrol(LOCAL, "staff", [
        EnrolItem("obama", ids / "obama" / "obama.jpg"),
        EnrolItem("biden", ids / "biden" / "biden.jpg")])
    assert report.as_dict()["enrolled"] == 2


def test_doctor_agrees_then_reports_each_kind_of_disagreement(app: Application,
                                                              data_dir: Path) -> None:
    _enrolled(app, data_dir)
    clean = examine(app.store)
    assert clean.ok and clean.templates == 2 and clean.enrolment_entries == 2

    # A deletion through the service is accounted for by its own entry.
    app.galleries.delete_subject(LOCAL, "staff", "biden")
    assert examine(app.store).ok

    # A crop file nothing refers to is listed, not a disagreement, and can be swept.
    gallery_id = app.galleries.get("staff").id
    stray = app.store.media.root / str(gallery_id) / "stray.jpg"
    stray.write_bytes(b"\xff\xd8\xff")
    listed = examine(app.store)
    assert listed.ok and listed.orphan_crops.count == 1
    assert app.galleries.sweep_orphan_crops(grace_seconds=0) == 1

    # A template deleted behind the trail's back: its entry has no template.
    with app.store.database.session(write=True) as session:
        session.execute(text("DELETE FROM templates"))
    gone = examine(app.store)
    assert [f.kind for f in gone.findings] == ["entry_without_template"]
    assert "staff/obama" in gone.findings[0].examples[0]


def test_doctor_reports_a_template_without_its_entry(app: Application, data_dir: Path,
                                                     tmp_path: Path) -> None:
    _enrolled(app, data_dir)
    with app.store.database.session(write=True) as session:
        session.execute(text("DELETE FROM audit_subjects WHERE seq IN "
                             "(SELECT seq FROM audit_entries WHERE action = 'enrol')"))
        session.execute(text("DELETE FROM audit_entries WHERE action = 'enrol'"))
    result = CliRunner().invoke(cli, ["--data-dir", str(app.settings.data_dir), "doctor",
                                      "--json"])
    assert result.exit_code == 30, result.output
    report = json.loads(result.stdout)
    assert report["findings"][0]["kind"] == "template_without_entry"
    assert report["findings"][0]["count"] == 2


def _decision(gallery: str, subject: str) -> TrackDecision:
    return factories.decision("gate", subject, gallery=gallery)


def _entries(app: Application, action: str) -> list[dict[str, object]]:
    return [e.as_dict() for e in app.oversight.trail.page(AuditQuery(action=action))]


def test_camera_changes_sightings_and_downloads_are_audited_with_their_caller(
        app: Application, data_dir: Path) -> None:
    _enrolled(app, data_dir)
    app.galleries.create(LOCAL, GallerySpec("watch", GalleryKind.WATCH_LIST, purpose="test",
                                            legal_basis="test", keep_crops=True))
    operator, op = key_caller(app, Role.OPERATOR, "olga")
    investigator, inv = key_caller(app, Role.INVESTIGATOR, "ivan")
    client = TestClient(create_api(app))
    as_operator = {"Authorization": f"Bearer {operator}"}

    created = client.post("/v1/cameras", headers=as_operator, json={
        "name": "gate", "source_url": str(data_dir / "video" / "short_hamilton_clip.mp4"),
        "galleries": ["watch"]})
    assert created.status_code == 201, created.text
    assert client.patch("/v1/cameras/gate", headers=as_operator,
                        json={"galleries": ["staff"]}).status_code == 200
    assert client.delete("/v1/cameras/gate", headers=as_operator).status_code == 200
    for action in ("camera.create", "camera.update", "camera.delete"):
        (entry,) = _entries(app, action)
        assert entry["actor"]["key_id"] == op.actor.key_id, action
    (update,) = _entries(app, "camera.update")
    assert update["result"]["before"]["galleries"] == ["watch"]  # type: ignore[index]
    assert update["result"]["after"]["galleries"] == ["staff"]  # type: ignore[index]

    # The enrolment photo, downloaded: the download is on the trail, naming the subject.
    photo = client.get("/v1/galleries/staff/subjects/obama/photo", headers=as_operator)
    assert photo.status_code == 200 and photo.content[:3] == b"\xff\xd8\xff"
    (download,) = _entries(app, "subject.photo")
    assert download["subjects"] == ["staff/obama"]
    assert download["actor"]["key_id"] == op.actor.key_id  # type: ignore[index]

    # Sightings listed over the API (with a case) and at the command line.
    listed = client.get("/v1/sightings", headers={
        "Authorization": f"Bearer {investigator}", "X-Case-Reference": "C-1",
        "X-Purpose": "test"})
    assert listed.status_code == 200, listed.text
    assert any(e["actor"]["key_id"] == inv.actor.key_id  # type: ignore[index]
               for e in _entries(app, "sightings.search"))
    result = CliRunner().invoke(cli, ["--data-dir", str(app.settings.data_dir), "sightings",
                                      "--json"])
    assert result.exit_code == 0, result.output
    (cli_listing,) = _entries(app, "sightings.list")
    assert cli_listing["actor"]["kind"] == "cli"  # type: ignore[index]


def test_alert_evidence_download_and_refusals_are_audited(app: Application,
                                                          data_dir: Path) -> None:
    app.galleries.create(LOCAL, GallerySpec("watch", GalleryKind.WATCH_LIST, purpose="test",
                                            legal_basis="test"))
    crop = "alerts/gate/evidence.jpg"
    app.store.media.write(crop, (data_dir / "identities" / "train" / "obama" /
                                 "obama.jpg").read_bytes())
    alert = app.video.alerts.raise_for(CAMERA_RUNNER, _decision("watch", "obama"), crop)
    assert alert is not None
    reviewer, rev = key_caller(app, Role.REVIEWER, "rita")
    investigator, _ = key_caller(app, Role.INVESTIGATOR, "ivan")
    client = TestClient(create_api(app))

    got = client.get(f"/v1/alerts/{alert.id}/crop",
                     headers={"Authorization": f"Bearer {reviewer}"})
    assert got.status_code == 200
    (evidence,) = _entries(app, "alert.evidence")
    assert evidence["actor"]["holder"] == "rita"  # type: ignore[index]
    assert evidence["subjects"] == ["watch/obama"]

    # Refused: a search without a case reference, and a comparison of a non-image.
    as_investigator = {"Authorization": f"Bearer {investigator}"}
    face = (data_dir / "identities" / "train" / "obama" / "obama.jpg").read_bytes()
    refused = client.post("/v1/galleries/watch/identify", headers=as_investigator,
                          files={"image": ("probe.jpg", face, "image/jpeg")})
    assert refused.status_code == 400
    (no_case,) = [e for e in _entries(app, "identify") if e["outcome"] == "refused"]
    assert no_case["result"]["error"] == "invalid_input"  # type: ignore[index]
    not_image = client.post("/v1/verify", headers=as_investigator, files={
        "image_a": ("a.jpg", b"not an image at all", "image/jpeg"),
        "image_b": ("b.jpg", face, "image/jpeg")})
    assert not_image.status_code == 415
    (bad,) = _entries(app, "verify")
    assert bad["outcome"] == "refused"
    assert bad["result"]["error"] == "not_an_image"  # type: ignore[index]
    assert rev.actor.holder == "rita"
