"""The databases tests run on: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text


def worker_database(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets a database of its own (test_gw0, test_gw1, ...,
    created on first use next to TEST_DATABASE_URL's), so tests that reset the schema
    never meet another worker's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'test'}_{worker}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                {"name": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return urlunsplit(parts._replace(path=f"/{name}"))


PG_URL = worker_database(os.environ.get("TEST_DATABASE_URL"))

NEEDS_POSTGRESQL = pytest.mark.skipif(
    not PG_URL, reason="TEST_DATABASE_URL is not set: no PostgreSQL to test against")

BACKENDS = ["sqlite", pytest.param("postgresql", marks=NEEDS_POSTGRESQL)]


def on_one_database(backend: str = "sqlite"):
    """Run a test on `backend` only (the `database_url` fixture runs every test on both):
    for what does not depend on the database, where both runs cost a server's start."""
    marks = [NEEDS_POSTGRESQL] if backend == "postgresql" else []
    return pytest.mark.parametrize("database_url", [pytest.param(backend, marks=marks)],
                                   indirect=True)


def reset_postgres(url: str) -> None:
    """Empty the test database's public schema so migrations start from nothing."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
