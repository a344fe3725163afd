"""Alembic migrations of the FRVS store, shipped in the package and run on open."""
