"""Building an application on a fresh data directory for the video tests.

A module of its own (not conftest) so test modules can import it by a unique name.
"""

from __future__ import annotations

from pathlib import Path

from frvs.app import Application, build_application
from frvs.config.settings import load_settings


def make_app(data: Path, **video: object) -> Application:
    settings = load_settings(data_dir=data, video=video or None)
    app = build_application(settings)
    app.store.open()
    return app
