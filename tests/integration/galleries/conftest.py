"""Fixtures for the galleries tests: a caching face analyser, fresh stores on SQLite and
PostgreSQL, and one session-scoped enrolled gallery for read-only identification tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from gallery_helpers import CachingAnalyser, enrol_train, make_service

from frvs.app import Application
from frvs.galleries.service import GalleryService


@pytest.fixture(scope="session")
def analyser(session_app: Application) -> CachingAnalyser:
    return CachingAnalyser(session_app.engine)


@pytest.fixture(scope="session")
def people(tmp_path_factory: pytest.TempPathFactory, analyser: CachingAnalyser,
           data_dir: Path) -> GalleryService:
    """identities/train enrolled once into gallery 'people' (SQLite); read-only tests."""
    root = tmp_path_factory.mktemp("people")
    service = make_service(f"sqlite:///{root / 'frvs.db'}", root, analyser)
    enrol_train(service, data_dir / "identities" / "train")
    return service
