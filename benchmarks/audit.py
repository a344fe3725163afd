"""What the atomic audit trail costs: folder enrolment with one audit entry per image in
the image's own transaction, bare audit appends, and ``audit verify``, on SQLite and (when
reachable) PostgreSQL. Prints one JSON document.

    python benchmarks/audit.py [--entries 20000] [--postgres URL]

The enrolment uses the real photographs of ``../shared/data/pairs/images`` (one subject
per photograph) through ``GalleryService.enrol``, exactly what ``frvs enroll
--from-folder`` runs; the appends are ``Store.audit`` (one transaction each, as a search
or a refusal makes); ``verify`` walks the whole chain and the subject index.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from frvs.app import build_application
from frvs.config.settings import load_settings
from frvs.core.caller import AuditDraft, system_caller
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCH = system_caller("benchmark")


def _postgres(url: str | None) -> str | None:
    """A fresh database on the server at ``url`` (the server's admin database)."""
    url = url or os.environ.get("FRVS_TEST_POSTGRES_URL") or \
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    name = f"frvs_bench_{uuid.uuid4().hex[:8]}"
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except Exception:  # no server here: the benchmark reports SQLite only
        return None
    return url.rsplit("/", 1)[0] + f"/{name}"


def _drop(admin_url: str, database_url: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}"'))
    engine.dispose()


def run(database_url: str | None, entries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(data_dir=Path(folder))
        if database_url:
            settings = settings.model_copy(update={"database_url": database_url})
        app = build_application(settings)
        app.store.open()
        app.galleries.create(BENCH, GallerySpec("bench"))
        images = sorted((DATA / "pairs" / "images").glob("*.jpg"))
        items = [EnrolItem(p.stem, p) for p in images]
        app.engine.packs.get(None)  # load the models before the clock starts
        started = time.perf_counter()
        report = app.galleries.enrol(BENCH, "bench", items)
        enrol_s = time.perf_counter() - started
        enrolled = report.as_dict()["enrolled"]

        started = time.perf_counter()
        for i in range(entries):
            app.store.audit(BENCH, AuditDraft("benchmark", {"i": i}, {"ok": True},
                                              [f"bench/subject-{i % 1000}"]))
        append_s = time.perf_counter() - started

        started = time.perf_counter()
        verification = app.oversight.trail.verify()
        verify_s = time.perf_counter() - started
        app.stop()
        return {
            "store": "postgresql" if database_url else "sqlite",
            "enrol": {"images": len(items), "enrolled": enrolled, "seconds": round(enrol_s, 2),
                      "ms_per_image": round(1000 * enrol_s / len(items), 1)},
            "append": {"entries": entries, "seconds": round(append_s, 2),
                       "entries_per_s": round(entries / append_s),
                       "ms_per_entry": round(1000 * append_s / entries, 3)},
            "verify": {"entries": verification.entries, "ok": verification.ok,
                       "seconds": round(verify_s, 2),
                       "entries_per_s": round(verification.entries / verify_s)},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=20_000, help="bare appends to time")
    parser.add_argument("--postgres", help="SQLAlchemy URL of a PostgreSQL server's admin "
                        "database (default: 127.0.0.1:5432; skipped when unreachable)")
    args = parser.parse_args()
    results = [run(None, args.entries)]
    pg = _postgres(args.postgres)
    if pg is not None:
        try:
            results.append(run(pg, args.entries))
        finally:
            _drop(pg.rsplit("/", 1)[0] + "/postgres", pg)
    print(json.dumps({"benchmark": "audit", "load_average": os.getloadavg(),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
