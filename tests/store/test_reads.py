"""Reads on the webhook path: each thread keeps a reading connection, replaced when broken."""

import pytest
from sqlalchemy import text

from app.services import services
from tests.support.databases import PG_URL


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


def test_an_idle_reading_connection_is_not_watched(app):
    """Between reads the kept connection is idle, not stuck: the watchdog must not cut it
    (it would make every later read reconnect, and log a false alarm)."""
    from app.store.watchdog import WATCHDOG

    db = services(app).db
    dbapi = db.run_read(lambda conn: conn.connection.dbapi_connection)
    assert dbapi not in WATCHDOG.armed


def test_a_threads_reading_connection_goes_back_when_the_thread_ends(app):
    """Threads that come and go do not drain the pool."""
    import gc
    import threading

    db = services(app).db
    threads = [threading.Thread(target=db.run_read, args=(lambda conn: 1,)) for _ in range(6)]
    for t in threads:
        t.start()
        t.join()
    gc.collect()
    assert db.engine.pool.checkedout() == 0
