"""Shared fixtures: the real test data beside the checkout and one application per session.

Layout (tests/README.md): ``unit/<package>/test_<module>.py`` mirrors ``src/frvs``;
``contract/`` runs one port's assertions on every implementation; ``integration/`` is
grouped by the package a test exercises, except ``service``, ``hardening`` and
``replicas``, which test features that cross packages; helpers live in ``support/``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres import fresh_database

from frvs.app import Application, build_application
from frvs.config.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FRVS_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data``: real photographs and a real clip (never copied into the repo)."""
    if not DATA.is_dir():
        pytest.fail(f"test data not found at {DATA}; set FRVS_SHARED to the shared/ folder")
    return DATA


@pytest.fixture(scope="session")
def session_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    """One application with the default configuration, shared by read-only engine tests."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("frvs-data"))
    application = build_application(settings)
    application.start()
    yield application
    application.stop()


@pytest.fixture
def data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty data directory for one test (also exported as FRVS_DATA_DIR)."""
    path = tmp_path / "data"
    monkeypatch.setenv("FRVS_DATA_DIR", str(path))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file in tmp_path, or a new PostgreSQL database
    (dropped afterwards; a visible skip without a server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'frvs.db'}"
        return
    with fresh_database("frvs_test") as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser).

    One per session: Playwright's sync API refuses a second instance while one is alive.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() gives each run a fresh, temporary user-data-dir of its own.
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded Milvus server (PyPI ``milvus``: a Milvus binary run as its own process,
    speaking Milvus's gRPC API) on a free port with a fresh base directory: its URI."""
    if importlib.util.find_spec("pymilvus") is None:
        pytest.skip("pymilvus not installed: pip install 'frvs[milvus]'")
    if importlib.util.find_spec("milvus") is None:
        pytest.skip("the embedded Milvus server is not installed: pip install 'frvs[dev]'")
    import socket

    from milvus import default_server

    default_server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        default_server.listen_port = int(s.getsockname()[1])
    default_server.start()
    try:
        yield f"http://127.0.0.1:{default_server.listen_port}"
    finally:
        default_server.stop()
