"""Exactly-once intake under concurrent duplicates, on SQLite and PostgreSQL: the same
report (a real template of a real photo) submitted by many threads at once is stored
once (one sighting, one alert, one ``sighting.record`` and one ``alert.raise`` entry);
every caller gets the same sighting id, and the audit chain verifies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from callers import LOCAL
from postgres import fresh_database
from sqlalchemy import func, select
from video_app import watch_hamilton

from frvs.alerts.tables import AlertRow
from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.core.caller import AuditContext, Role
from frvs.imaging.decode import decode_image
from frvs.oversight.edge import EdgeResult, EdgeSighting
from frvs.oversight.tables import AuditEntryRow
from frvs.video.edge_report import NodeTemplate, quality_numbers
from frvs.video.tables import SightingRow

RACERS = {"sqlite": 6, "postgres": 12}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path, data_dir: Path
        ) -> Iterator[Application]:
    stores = ExitStack()
    url = stores.enter_context(fresh_database("edge")) if request.param == "postgres" else None
    application = build_application(load_settings(data_dir=tmp_path / "data",
                                                  database_url=url))
    application.store.open()
    watch_hamilton(application, data_dir, ["lin-manuel-miranda"], edge_cameras=["stage"])
    try:
        yield application
    finally:
        application.stop()
        stores.close()


def _count(app: Application, stmt: object) -> int:
    with app.store.unit() as uow:
        return int(uow.session.scalar(stmt) or 0)  # type: ignore[call-overload]


def test_concurrent_duplicates_store_one_sighting_and_one_alert(
        app: Application, data_dir: Path) -> None:
    photo = decode_image((data_dir / "video" / "lin-manuel-miranda.png").read_bytes())
    face = app.engine.analyse(photo)[0]
    template = NodeTemplate(face.template.space.key,
                            face.template.vector.astype("<f4").tobytes(),
                            quality_numbers(face.face.quality))
    issued = app.oversight.keys.create(LOCAL, Role.DEVICE, "node", cameras=["stage"])
    device = AuditContext(app.oversight.keys.authenticate(issued.token).actor())
    now = datetime.now(UTC)
    report = EdgeSighting("stage", 3, now - timedelta(seconds=4), now, 20)

    racers = RACERS["postgres" if app.store.database.dialect == "postgresql"
                    else "sqlite"]
    results: list[EdgeResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(racers)

    def submit() -> None:
        start.wait()
        try:
            results.append(app.edge.submit(device, report, None, None, template))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == racers
    assert len({r.sighting for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert {r.subject for r in results} == {"lin-manuel-miranda"}
    assert _count(app, select(func.count()).select_from(SightingRow)) == 1
    assert _count(app, select(func.count()).select_from(AlertRow)) == 1
    for action in ("sighting.record", "alert.raise"):
        assert _count(app, select(func.count()).select_from(AuditEntryRow).where(
            AuditEntryRow.action == action)) == 1
    assert app.oversight.trail.verify().ok
