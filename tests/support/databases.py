"""The databases tests run on: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from functools import cache
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


# The public schema's shape: every relation with its columns, types and defaults, every
# index, constraint, function and trigger, and the migration's revision, so that whatever
# a test left behind (a table of its own, a dropped index, an older revision) is seen.
# From pg_catalog: ~8 ms, where information_schema's views take ~20.
_SHAPE = text("""
    SELECT md5(coalesce(string_agg(part, ';' ORDER BY part), '')) FROM (
        SELECT c.relname::text || ' ' || c.relkind::text || ' '
               || coalesce(a.attname::text, '') || ' '
               || coalesce(format_type(a.atttypid, a.atttypmod), '') || ' '
               || coalesce(a.attnotnull::text, '') || ' '
               || coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS part
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attribute a
                 ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
         WHERE n.nspname = 'public'
        UNION ALL SELECT 'i ' || pg_get_indexdef(i.indexrelid) FROM pg_index i
          JOIN pg_class c ON c.oid = i.indrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
        UNION ALL SELECT 'k ' || c.conname::text || ' ' || pg_get_constraintdef(c.oid)
          FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = 'public'
        UNION ALL SELECT 'f ' || p.proname::text FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
        UNION ALL SELECT 't ' || t.tgname::text FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND NOT t.tgisinternal
        UNION ALL SELECT 'v ' || version_num FROM alembic_version
    ) AS shape""")
_migrated: dict[str, str] = {}  # url -> the shape the migrations leave, once per process
# Every table's rows deleted and every sequence restarted, in one round trip.
_EMPTY = """DO $$ DECLARE name text; BEGIN
    FOR name IN SELECT quote_ident(tablename) FROM pg_tables
                 WHERE schemaname = 'public' AND tablename != 'alembic_version' LOOP
        EXECUTE 'DELETE FROM ' || name;
    END LOOP;
    FOR name IN SELECT quote_ident(sequence_name) FROM information_schema.sequences
                 WHERE sequence_schema = 'public' LOOP
        EXECUTE 'ALTER SEQUENCE ' || name || ' RESTART';
    END LOOP;
END $$"""


def empty_postgres(url: str) -> None:
    """The schema as the migrations leave it, with no rows: what reset_postgres and a
    first start give, at a fraction of the cost. Its rows are deleted when the schema
    has exactly that shape; anything else (a first use, what a test changed) is reset and
    migrated again."""
    from app.store.database import Database

    engine = _engine(url)
    with engine.begin() as conn:
        shape = _shape(conn)
        if shape is not None and shape == _migrated.get(url):
            # DELETE, not TRUNCATE: 4 ms instead of 30 for tables of a few rows (the
            # schema has no foreign keys, so the order does not matter).
            conn.execute(text(_EMPTY))
            return
    reset_postgres(url)
    database = Database(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        database.upgrade()
    finally:
        database.dispose()
    with engine.begin() as conn:
        _migrated[url] = _shape(conn)


@cache
def _engine(url: str):
    """One connection per process for emptying the database: its catalog cache warm
    (the shape query takes 25 ms on a new connection); pinged before each use, since
    fault tests cut connections."""
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                         pool_size=1, pool_pre_ping=True)


def _shape(conn) -> str | None:
    """The schema's shape (None without alembic_version: not migrated)."""
    exists = conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar()
    return conn.execute(_SHAPE).scalar() if exists else None
