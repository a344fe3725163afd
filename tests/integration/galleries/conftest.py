"""Fixtures for the galleries tests: a caching face analyser, fresh stores on SQLite and
PostgreSQL, and one session-scoped enrolled gallery for read-only identification tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gallery_helpers import (
    PG_ADMIN_URL,
    CachingAnalyser,
    create_pg_database,
    enrol_train,
    make_service,
)
from sqlalchemy import create_engine, text

from frvs.app import Application
from frvs.galleries.service import GalleryService


@pytest.fixture(scope="session")
def analyser(session_app: Application) -> CachingAnalyser:
    return CachingAnalyser(session_app.engine)


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """The admin URL of a reachable PostgreSQL server, or a visible skip."""
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                               connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'frvs.db'}"
        return
    url, drop = create_pg_database(request.getfixturevalue("postgres_admin"))
    yield url
    drop()


@pytest.fixture(scope="session")
def people(tmp_path_factory: pytest.TempPathFactory, analyser: CachingAnalyser,
           data_dir: Path) -> GalleryService:
    """identities/train enrolled once into gallery 'people' (SQLite); read-only tests."""
    root = tmp_path_factory.mktemp("people")
    service = make_service(f"sqlite:///{root / 'frvs.db'}", root, analyser)
    enrol_train(service, data_dir / "identities" / "train")
    return service
