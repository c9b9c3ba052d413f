"""Fixtures of the engine's tests that several modules share."""

from postgres_server import postgres_db, postgres_server  # noqa: F401 - fixtures: a real PostgreSQL server
