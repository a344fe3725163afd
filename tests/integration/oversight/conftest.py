"""Fixtures of the oversight tests: one fresh store per test, on SQLite (a file in the
data dir) and on PostgreSQL (a new database, dropped afterwards), and the same store
with a watch-list alert already raised from the real clip (made once per module and
backend, then copied: watching the clip is the slow part)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from oversight_helpers import Alerted, Backend, frvs_ok, raise_alert
from postgres import copy_database, fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty data dir and the store the CLI and ``frvs serve`` will use with it."""
    data = tmp_path / "data"
    if request.param == "sqlite":
        yield Backend("sqlite", data, f"sqlite:///{data / 'frvs.db'}")
        return
    with fresh_database("frvs_oversight") as url:
        yield Backend("postgres", data, url)


class AlertedStores:
    """``frvs init``, Lin-Manuel Miranda in watch list 'hamilton' (crops kept) and the
    Hamilton clip watched: made once per backend, copied into each test's store (the
    data dir, and on PostgreSQL the database, as a template)."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self._root = root
        self._data_dir = data_dir
        self._made: dict[str, tuple[Backend, Alerted]] = {}
        self._templates = ExitStack()

    def _make(self, kind: str) -> tuple[Backend, Alerted]:
        data = self._root / kind / "data"
        if kind == "sqlite":
            made = Backend(kind, data, f"sqlite:///{data / 'frvs.db'}")
        else:
            url = self._templates.enter_context(fresh_database("frvs_oversight_template"))
            made = Backend(kind, data, url)
        env = made.env()
        token = json.loads(frvs_ok(["init", "--json"], env).stdout)["admin_key"]
        self._made[kind] = made, Alerted(raise_alert(env, self._data_dir), token)
        return self._made[kind]

    def copy_into(self, backend: Backend) -> Alerted:
        made, alerted = self._made.get(backend.name) or self._make(backend.name)
        shutil.copytree(made.data, backend.data)
        if backend.name == "postgres":
            copy_database(made.url, backend.url)
        return alerted

    def close(self) -> None:
        self._templates.close()


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
