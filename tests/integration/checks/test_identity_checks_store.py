"""The identity checks' table on both stores: migration ``0008_identity_checks`` creates
exactly what the ORM declares, and a real check (a real still photo as the capture)
commits its row and audit entry on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from callers import LOCAL
from check_media import answer_twice_at_once
from sqlalchemy import select

from frvs.app import build_application
from frvs.checks.models import LiveFrame, parse_challenge
from frvs.checks.tables import IdentityChallengeRow, IdentityCheckRow
from frvs.config.settings import load_settings
from frvs.imaging.decode import read_image
from frvs.oversight.tables import AuditEntryRow
from frvs.storage.schema import Base


def test_migration_matches_the_orm_and_a_check_commits(store_url: str, tmp_path: Path,
                                                        data_dir: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data", database_url=store_url))
    app.store.open()
    with app.store.database.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "identity_" in repr(d)] == []
    images = data_dir / "pairs" / "images"
    still = read_image(images / "img39.jpg")
    frames = [LiveFrame(still, i / 5, f"f{i}") for i in range(5)]
    result = app.checks.run(LOCAL, read_image(images / "img38.jpg"), frames,
                            parse_challenge("left,right"))
    assert result.match and not result.liveness.passed
    with app.store.unit() as uow:
        row = uow.session.get(IdentityCheckRow, result.id)
        assert row is not None and row.liveness_reasons == list(result.liveness.reasons)
        assert row.document_sha256 == result.document_sha256
        audited = uow.session.scalars(select(AuditEntryRow.result).where(
            AuditEntryRow.action == "identity_check")).one()
        assert audited["check"] == result.id
    app.stop()


def test_an_issued_challenge_is_used_up_by_exactly_one_of_two_concurrent_checks(
        store_url: str, tmp_path: Path, data_dir: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data", database_url=store_url))
    app.store.open()
    images = data_dir / "pairs" / "images"
    document = read_image(images / "img38.jpg")
    frames = [LiveFrame(read_image(images / "img39.jpg"), i / 5, f"f{i}") for i in range(5)]
    app.checks.run(LOCAL, document, frames, parse_challenge("left"))  # models loaded
    issued = app.checks.issue_challenge(LOCAL)
    outcomes = answer_twice_at_once(app, document, frames, issued.id)
    assert outcomes == ["checked", "conflict"]
    with app.store.unit() as uow:
        row = uow.session.get(IdentityChallengeRow, issued.id)
        assert row is not None and row.used_at is not None
        checks = uow.session.scalars(select(IdentityCheckRow).where(
            IdentityCheckRow.challenge == ",".join(m.value for m in issued.moves))).all()
        refusals = uow.session.scalars(select(AuditEntryRow.result).where(
            AuditEntryRow.action == "identity_check", AuditEntryRow.outcome == "refused")).all()
    assert len(refusals) == 1 and refusals[0]["error"] == "conflict"
    assert checks  # the one that committed
    app.stop()
