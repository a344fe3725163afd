"""Opening the SQL store: engines, SQLite pragmas, migrations, sessions.

SQLite (the embedded default) runs in WAL mode so readers never block the writer,
with foreign keys on and a busy timeout because several processes (CLI, service,
camera workers) write at once. Write units of work start with ``BEGIN IMMEDIATE``:
a deferred transaction that reads and then writes can fail at once with
SQLITE_BUSY_SNAPSHOT when another process committed in between, whereas an immediate
one waits for the lock under the busy timeout. PostgreSQL is selected by a
``postgresql+psycopg://`` URL and needs none of this.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from frvs.core.errors import ConfigurationError, FrvsError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30_000
# Any constant works; it names "the FRVS schema migration" among advisory locks.
_PG_MIGRATION_LOCK = 0x4652_5653


class StoreError(FrvsError):
    """The store cannot be opened or reached."""

    code = "store_error"


def _first_line(error: BaseException | None) -> str:
    # Drivers append the statement and its parameters; those stay out of messages.
    return str(error).strip().splitlines()[0][:300] if error is not None else ""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling skips BEGIN for DDL and reads; take it over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Database:
    """One store: a reader and a writer engine over the same database, migrated on open."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigurationError(f"invalid database_url {url!r}: {exc}") from exc
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self._reader = _sqlite_engine(url, immediate=False)
            self._writer = _sqlite_engine(url, immediate=True)
        else:
            self._reader = create_engine(url, pool_pre_ping=True)
            self._writer = self._reader
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        return self._writer

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe when processes race to do it."""
        upgrade = _upgrader()  # imported before any lock is taken, not while holding it
        try:
            if self.dialect == "sqlite":
                self._migrate_sqlite(upgrade)
            else:
                with self._writer.begin() as conn:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                 {"k": _PG_MIGRATION_LOCK})
                    upgrade(conn)
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {self.safe_url}: {exc.orig}") from exc

    def _migrate_sqlite(self, upgrade: Callable[[Any], None]) -> None:
        database = make_url(self.url).database
        if not database or database == ":memory:":
            with self._writer.begin() as conn:
                upgrade(conn)
            return
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        with Path(f"{database}.migrate.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._writer.begin() as conn:
                    upgrade(conn)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        A failure the database reports (a constraint or trigger that refuses the audit
        entry, a lost connection, a full disk) becomes a ``StoreError``: the caller gets a
        clear error and, because the whole transaction rolled back, nothing of it is kept.
        """
        factory = self._write_sessions if write else self._read_sessions
        try:
            with factory() as session, session.begin():
                yield session
        except DBAPIError as exc:
            raise StoreError(f"the store refused the transaction: "
                             f"{type(exc.orig).__name__}: {_first_line(exc.orig)}") from exc

    def close(self) -> None:
        self._reader.dispose()
        if self._writer is not self._reader:
            self._writer.dispose()


def _upgrader() -> Callable[[Any], None]:
    """Alembic's upgrade of a connection to the newest revisions. Imported only when a
    store is opened (``frvs models``, ``--help`` do without Alembic), and before its
    migration lock is taken: the import's 0.1 s would hold other processes' writes."""
    from alembic import command
    from alembic.config import Config

    def upgrade(connection: Any) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        # "heads": independent branches (video, oversight) off 0001 each reach their tip.
        command.upgrade(config, "heads")

    return upgrade



def insert_absent(session: Session, table: type[Any], values: dict[str, Any],
                  keys: list[str]) -> None:
    """Insert a row of ``table`` unless one with the same ``keys`` exists: never a
    conflict when several processes race to create the same row."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        session.execute(pg_insert(table).values(**values)
                        .on_conflict_do_nothing(index_elements=keys))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        session.execute(sqlite_insert(table).values(**values)
                        .on_conflict_do_nothing(index_elements=keys))
