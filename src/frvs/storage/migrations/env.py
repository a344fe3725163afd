"""Alembic environment: migrations run programmatically on the connection given by
``frvs.storage.database`` (``config.attributes["connection"]``), never from an ini file."""

from __future__ import annotations

from alembic import context

from frvs.storage.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the store runs these migrations
    raise RuntimeError("FRVS migrations run through frvs.storage.database.Database.migrate")

# render_as_batch lets ALTERs work on SQLite, which rewrites tables to alter them.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
