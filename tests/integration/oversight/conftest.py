"""Fixtures of the oversight tests: one fresh store per test, on SQLite (a file in the
data dir) and on PostgreSQL (a new database, dropped afterwards), and the same store
with a watch-list alert already raised from the real clip (made once per module and
backend, then copied: watching the clip is the slow part)."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from oversight_helpers import PG_ADMIN_URL, Alerted, Backend, frvs_ok, raise_alert
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url


def _pg_admin() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                         connect_args={"connect_timeout": 3})


def _pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _pg_database(prefix: str) -> tuple[str, Engine]:
    """A new, empty PostgreSQL database (or a visible skip); its name and an admin engine."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    return name, admin


def _pg_drop(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty data dir and the store the CLI and ``frvs serve`` will use with it."""
    data = tmp_path / "data"
    if request.param == "sqlite":
        yield Backend("sqlite", data, f"sqlite:///{data / 'frvs.db'}")
        return
    name, admin = _pg_database("frvs_oversight")
    try:
        yield Backend("postgres", data, _pg_url(name))
    finally:
        _pg_drop(admin, name)


class AlertedStores:
    """``frvs init``, Lin-Manuel Miranda in watch list 'hamilton' (crops kept) and the
    Hamilton clip watched: made once per backend, copied into each test's store (the
    data dir, and on PostgreSQL the database, as a template)."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self._root = root
        self._data_dir = data_dir
        self._made: dict[str, tuple[Backend, Alerted]] = {}
        self._templates: list[str] = []

    def _make(self, kind: str) -> tuple[Backend, Alerted]:
        data = self._root / kind / "data"
        if kind == "sqlite":
            made = Backend(kind, data, f"sqlite:///{data / 'frvs.db'}")
        else:
            name, admin = _pg_database("frvs_oversight_template")
            admin.dispose()
            self._templates.append(name)
            made = Backend(kind, data, _pg_url(name))
        env = made.env()
        token = json.loads(frvs_ok(["init", "--json"], env).stdout)["admin_key"]
        self._made[kind] = made, Alerted(raise_alert(env, self._data_dir), token)
        return self._made[kind]

    def copy_into(self, backend: Backend) -> Alerted:
        made, alerted = self._made.get(backend.name) or self._make(backend.name)
        shutil.copytree(made.data, backend.data)
        if backend.name == "postgres":
            target = make_url(backend.url).database
            template = make_url(made.url).database
            admin = _pg_admin()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{target}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{template}"'))
            admin.dispose()
        return alerted

    def close(self) -> None:
        for name in self._templates:
            _pg_drop(_pg_admin(), name)


@pytest.fixture(scope="module")
def alerted_stores(tmp_path_factory: pytest.TempPathFactory, data_dir: Path
                   ) -> Iterator[AlertedStores]:
    stores = AlertedStores(tmp_path_factory.mktemp("alerted"), data_dir)
    yield stores
    stores.close()


@pytest.fixture
def alerted(backend: Backend, alerted_stores: AlertedStores) -> Alerted:
    """``backend`` holding a copy of the alerted store."""
    return alerted_stores.copy_into(backend)
