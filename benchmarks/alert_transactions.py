"""Transactions a camera's analysis thread makes per alert, on the real clip, printed as
JSON.

A scratch SQLite store with the clip's two people in a watch list; the clip registered as
a camera and started as an operator starts one in 'frvs serve' (leased to this replica,
so alerts and sightings are fenced by the lease). Every database transaction begun on
the camera's analysis thread is counted (a SQLAlchemy ``after_begin`` listener on all
sessions), attributed to the FRVS function that opened it, and divided by the alerts
raised. ``--suppress-seconds 0`` lifts the repeat window so every decided track alerts.

    .venv/bin/python benchmarks/alert_transactions.py [--suppress-seconds 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from frvs.alerts.models import AlertRule
from frvs.app import build_application
from frvs.config.settings import load_settings
from frvs.core.caller import system_caller
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.video.service import CameraSpec

DATA = Path(os.environ.get("FRVS_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
CAMERA = "stage"


def _opener() -> str:
    """Who began the transaction: the innermost FRVS function outside the storage layer
    on the stack, after the pipeline function it serves (``pipeline -> function``)."""
    frames = [f for f in traceback.extract_stack()[:-2]
              if "/frvs/" in f.filename.replace(os.sep, "/")]
    names = [f"{f.filename.replace(os.sep, '/').split('/frvs/', 1)[1]}:{f.name}"
             for f in frames]
    inner = next((n for n in reversed(names) if not n.startswith("storage/")), "?")
    step = next((n for n in reversed(names) if n.startswith("pipeline/")
                 and n != inner), None)
    return inner if step is None else f"{step} -> {inner}"


def measure(suppress_seconds: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        clips = Path(scratch) / "clips"
        clips.mkdir()
        clip = clips / "clip.mp4"
        clip.symlink_to(DATA / "video" / "short_hamilton_clip.mp4")
        app = build_application(load_settings(data_dir=data,
                                              video={"media_roots": [str(clips)]}))
        app.store.open()
        me = system_caller("bench")
        app.galleries.create(me, GallerySpec("hamilton", GalleryKind.WATCH_LIST,
                                             purpose="bench", legal_basis="bench"))
        app.galleries.enrol(me, "hamilton", [
            EnrolItem(name, DATA / "video" / f"{name}.png")
            for name in ("lin-manuel-miranda", "alex-lacamoire")])
        if suppress_seconds is not None:
            app.video.alerts.set_rule(me, AlertRule("hamilton", True, suppress_seconds))
        app.video.cameras.add(me, CameraSpec(CAMERA, str(clip), ("hamilton",),
                                             sample_fps=None, enabled=False))
        opened: Counter[str] = Counter()
        seconds: Counter[str] = Counter()
        began: dict[int, tuple[str, float]] = {}
        lock = threading.Lock()

        def count(session: Session, _transaction: Any, _connection: Any) -> None:
            if threading.current_thread().name == f"analyse-{CAMERA}":
                tag = _opener()
                with lock:
                    opened[tag] += 1
                    began[id(session)] = (tag, time.perf_counter())

        def ended(session: Session) -> None:
            with lock:
                found = began.pop(id(session), None)
                if found is not None:
                    seconds[found[0]] += time.perf_counter() - found[1]

        event.listen(Session, "after_begin", count)
        event.listen(Session, "after_commit", ended)
        event.listen(Session, "after_rollback", ended)
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        try:
            app.video.start_camera(me, CAMERA)
            while not app.video.supervisor.wait(0.5):
                pass
        finally:
            event.remove(Session, "after_begin", count)
            event.remove(Session, "after_commit", ended)
            event.remove(Session, "after_rollback", ended)
        cpu1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
        counts = app.video.router.counts
        app.stop()
    total = sum(opened.values())
    return {
        "suppress_seconds": suppress_seconds, "alerts": counts.alerts,
        "suppressed": app.video.alerts.suppressed, "decisions": counts.decisions,
        "sightings": counts.sightings, "transactions": total,
        "transactions_per_alert": round(total / counts.alerts, 2) if counts.alerts else None,
        "by_opener": dict(opened.most_common()),
        "seconds_in_transactions": round(sum(seconds.values()), 3),
        "seconds_by_opener": {k: round(v, 4) for k, v in seconds.most_common()},
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suppress-seconds", type=int, default=None,
                        help="The watch list's repeat window (default: the default rule).")
    args = parser.parse_args()
    print(json.dumps(measure(args.suppress_seconds), indent=2))


if __name__ == "__main__":
    main()
