"""Reads on the webhook path: each thread keeps a reading connection, replaced when broken."""

import pytest
from sqlalchemy import text

from app.services import services
from tests.conftest import PG_URL


def test_a_thread_keeps_its_reading_connection(app):
    """Two reads in one thread use one connection: no checkout, pre-ping or BEGIN each."""
    db = services(app).db
    first = db.run_read(lambda conn: conn.connection.dbapi_connection)
    second = db.run_read(lambda conn: conn.connection.dbapi_connection)
    assert first is second


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: needs PostgreSQL")
def test_a_reading_connection_the_server_dropped_is_replaced(make_app, env):
    """After PostgreSQL ends the reading connection (a restart, a failover), the next read
    still answers, on a new connection."""
    if not env["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    db = services(make_app()).db
    pid = db.run_read(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar())
    with db.transaction() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    again = db.run_read(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar())
    assert again != pid
