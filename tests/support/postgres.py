"""A fresh PostgreSQL database for a test or a module, dropped afterwards; the test skips,
visibly, without a server (127.0.0.1:5432, or ``FRVS_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "FRVS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The URL of a new database named ``<prefix>_<random>``, dropped on leaving."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    with database_on(admin, f"{prefix}_{uuid.uuid4().hex[:12]}") as url:
        yield url


@contextmanager
def database_on(admin: Engine, name: str) -> Iterator[str]:
    """The URL of a new database ``name`` made through ``admin`` (an AUTOCOMMIT engine on
    ``PG_ADMIN_URL``), dropped with its connections on leaving; ``admin`` is disposed.
    Benchmarks use it too (no pytest skip here)."""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def copy_database(template_url: str, target_url: str) -> None:
    """Replace the database of ``target_url`` by a copy of ``template_url``'s (PostgreSQL's
    ``CREATE DATABASE ... TEMPLATE``: far quicker than making the same store again)."""
    target, template = make_url(target_url).database, make_url(template_url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
