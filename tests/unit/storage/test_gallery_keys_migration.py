"""Migration ``0009_gallery_keys`` on a store with data: a store at ``0008`` with alerts,
reviews, rules, sightings and attendance events naming galleries by name is upgraded,
and every row names its gallery by key while the services still show the name; rows of
a gallery deleted before the upgrade go as the keys make them go from now on. Runs on
SQLite and on PostgreSQL (skipped, visibly, without a server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from postgres import fresh_database
from sqlalchemy import Engine, create_engine, text

from frvs.alerts.service import AlertService
from frvs.attendance.service import AttendanceService
from frvs.storage.database import MIGRATIONS
from frvs.storage.schema import Base
from frvs.storage.store import Store
from frvs.video.service import SightingService

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
KEYED = {"alerts", "alert_rules", "sightings", "attendance_events"}


def _table_of(diff: Any) -> str | None:
    for part in diff if isinstance(diff, list) else [diff]:
        for item in part if isinstance(part, tuple) else (part,):
            name = getattr(getattr(item, "table", None), "name", None) or (
                item if isinstance(item, str) and item in KEYED else None)
            if name:
                return str(name)
    return None


def _to(engine: Engine, revision: str, down: bool = False) -> None:
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)


def _naive(dialect: str, at: datetime) -> Any:
    return at.replace(tzinfo=None) if dialect == "sqlite" else at


def _fill_0008(engine: Engine) -> None:
    """Two galleries, and rows naming them and a gallery deleted long ago ("gone")."""
    at = _naive(engine.dialect.name, T0)
    later = _naive(engine.dialect.name, T0 + timedelta(days=3650))
    rows: list[tuple[str, dict[str, Any]]] = [
        ("INSERT INTO galleries (id, name, kind, keep_crops, pack, revision, created_at) "
         "VALUES (:id, :name, :kind, false, 'p', 0, :at)",
         {"id": 7, "name": "watch", "kind": "watch_list", "at": at}),
        ("INSERT INTO galleries (id, name, kind, keep_crops, pack, revision, created_at) "
         "VALUES (:id, :name, :kind, false, 'p', 0, :at)",
         {"id": 9, "name": "staff", "kind": "attendance", "at": at}),
    ]
    alert = ("INSERT INTO alerts (id, camera, track_id, gallery, subject, score, threshold, "
             "attempts, at, frame_time, quality, status, two_person, created_at) VALUES "
             "(:id, 'gate', 1, :g, 'anchor', 0.9, 0.4, 1, :at, 0.0, 0.9, 'new', true, :at)")
    rows += [(alert, {"id": 1, "g": "watch", "at": at}), (alert, {"id": 2, "g": "gone", "at": at})]
    review = ("INSERT INTO alert_reviews (id, alert_id, reviewer, holder, verdict, at) "
              "VALUES (:id, :a, 'key:k (ann)', 'ann', 'confirm', :at)")
    rows += [(review, {"id": 1, "a": 1, "at": at}), (review, {"id": 2, "a": 2, "at": at})]
    rule = ("INSERT INTO alert_rules (gallery, two_person, suppress_seconds) "
            "VALUES (:g, true, :s)")
    rows += [(rule, {"g": "watch", "s": 60}), (rule, {"g": "gone", "s": 5})]
    sighting = ("INSERT INTO sightings (id, camera, track_id, first_seen, last_seen, frames, "
                "attempts, quality, gallery, subject, score, best_subject, best_score, "
                "expires_at) VALUES (:id, 'gate', :id, :at, :at, 3, 1, 0.5, :g, :s, 0.8, :s, "
                "0.8, :until)")
    rows += [(sighting, {"id": 1, "g": "watch", "s": "anchor", "at": at, "until": later}),
             (sighting, {"id": 2, "g": "gone", "s": "ghost", "at": at, "until": later}),
             (sighting, {"id": 3, "g": None, "s": None, "at": at, "until": later})]
    event = ("INSERT INTO attendance_events (id, gallery, subject, camera, direction, at, "
             "score) VALUES (:id, :g, 'ann', 'door', 'entry', :at, 0.7)")
    rows += [(event, {"id": 1, "g": "staff", "at": at}), (event, {"id": 2, "g": "gone", "at": at})]
    with engine.begin() as conn:
        for sql, params in rows:
            conn.execute(text(sql), params)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'frvs.db'}"
    else:
        with fresh_database("frvs_keys") as url:
            yield url


def test_upgrade_from_0008_converts_names_to_keys(store_url: str, tmp_path: Path) -> None:
    engine = create_engine(store_url)
    _to(engine, "0008_identity_checks")
    _fill_0008(engine)
    _to(engine, "heads")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, gallery_id FROM alerts")).all() == [(1, 7)]
        assert conn.execute(text("SELECT alert_id FROM alert_reviews")).all() == [(1,)]
        assert conn.execute(text(
            "SELECT gallery_id, suppress_seconds FROM alert_rules")).all() == [(7, 60)]
        assert sorted(conn.execute(text(
            "SELECT id, gallery_id, subject, best_subject FROM sightings")).all()) == [
            (1, 7, "anchor", "anchor"), (2, None, None, None), (3, None, None, None)]
        assert conn.execute(text(
            "SELECT id, gallery_id FROM attendance_events")).all() == [(1, 9)]
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if _table_of(d) in KEYED] == []  # as the ORM declares them
    engine.dispose()

    # The services still speak of galleries by name.
    store = Store(store_url, tmp_path / "media").open()
    clock = lambda: T0 + timedelta(days=1)  # noqa: E731
    alerts = AlertService(store, clock)
    alert = alerts.get(1)
    assert (alert.gallery, alert.subject, alert.reviews[0].holder) == ("watch", "anchor", "ann")
    assert [a.id for a in alerts.list()] == [1]
    assert alerts.rule("watch").suppress_seconds == 60
    sighting = SightingService(store, clock).stored(1)
    assert sighting is not None and sighting.gallery == "watch"
    assert [e.gallery for e in AttendanceService(store).events(date(2026, 11, 30))] == ["staff"]
    store.close()


def test_downgrade_to_0008_brings_the_names_back(store_url: str) -> None:
    engine = create_engine(store_url)
    _to(engine, "0008_identity_checks")
    _fill_0008(engine)
    _to(engine, "heads")
    _to(engine, "0008_identity_checks", down=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, gallery FROM alerts")).all() == [(1, "watch")]
        assert conn.execute(text("SELECT gallery FROM alert_rules")).all() == [("watch",)]
        assert conn.execute(text(
            "SELECT gallery FROM attendance_events")).all() == [("staff",)]
    engine.dispose()
