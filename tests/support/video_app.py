"""Building an application on a fresh data directory for the video tests.

A module of tests/support (not a conftest) so test modules can import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from callers import LOCAL

from frvs.app import Application, build_application
from frvs.config.settings import load_settings
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.video.service import CameraSpec

HAMILTON = ("lin-manuel-miranda", "alex-lacamoire")


def make_app(data: Path, **video: object) -> Application:
    settings = load_settings(data_dir=data, video=video or None)
    app = build_application(settings)
    app.store.open()
    return app


def watch_hamilton(app: Application, data_dir: Path, people: Sequence[str] = HAMILTON,
                   edge_cameras: Sequence[str] = ()) -> None:
    """Watch list 'hamilton' holding the reference photos (``video/<person>.png``) of
    ``people`` from the Hamilton clip, and ``edge_cameras`` (fed by edge nodes) watching
    it."""
    app.galleries.create(LOCAL, GallerySpec("hamilton", GalleryKind.WATCH_LIST,
                                            purpose="test", legal_basis="test"))
    app.galleries.enrol(LOCAL, "hamilton", [
        EnrolItem(person, data_dir / "video" / f"{person}.png") for person in people])
    for camera in edge_cameras:
        app.video.cameras.add(LOCAL, CameraSpec(camera, "edge", ("hamilton",)))
