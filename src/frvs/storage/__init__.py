"""Persistence: SQL store, vector indexes, media."""
