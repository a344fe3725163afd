"""The shipped migrations create exactly the tables the ORM declares (galleries part),
and the store opens with the pragmas several writing processes need."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from frvs.storage.schema import Base
from frvs.storage.store import Store

MINE = {"galleries", "subjects", "templates"}


def _table_of(diff: object) -> str | None:
    for part in diff if isinstance(diff, tuple) else (diff,):
        table = getattr(part, "table", None) or getattr(part, "name", None)
        if isinstance(part, tuple):
            return _table_of(part[0]) or _table_of(part[-1])
        if table is not None:
            return str(getattr(table, "name", table))
    return None


def test_migrations_match_the_orm(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url, tmp_path / "media").open()
    with store.database.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = [d for d in diffs if _table_of(d) in MINE]
    assert mine == []
    store.close()


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'frvs.db'}", tmp_path / "media").open()
    with store.unit() as uow:
        pragma = {name: uow.session.execute(text(f"PRAGMA {name}")).scalar()
                  for name in ("journal_mode", "foreign_keys", "busy_timeout")}
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30_000}
    store.close()
