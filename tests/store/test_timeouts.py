"""Timeouts: a database that does not answer makes the caller give up within
DATABASE_TIMEOUT (a statement, a connection, a lock), and it is usable again after."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from sqlalchemy.exc import SQLAlchemyError

from app.store.database import Database, DatabaseUnavailable
from tests.support.databases import PG_URL
from tests.support.lock_holder import LockHolder
from tests.support.tcp_proxy import ProxyProcess
from tests.support.timeouts import COUNT_FOR_LONG, bound, gives_up
from tests.support.waiting import wait_for

TIMEOUT = 1.0  # the databases' timeout here: each wait ends at it, not before


@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}", timeout=TIMEOUT)
    db.ping()  # creates the file
    yield db
    db.engine.dispose()


def test_a_statement_running_past_the_timeout_is_cut(sqlite_db):
    """A statement still running after the timeout is interrupted; the next one works."""

    def long_count():
        with sqlite_db.read() as conn:
            conn.exec_driver_sql(COUNT_FOR_LONG).scalar()

    error, took = gives_up(long_count, limit=30)
    assert isinstance(error, DatabaseUnavailable)
    assert TIMEOUT <= took < bound(TIMEOUT)
    sqlite_db.ping()


def test_a_frozen_sqlite_writer_makes_writes_give_up(sqlite_db, tmp_path):
    """Another process stuck holding the writer turn: writes and ping give up in time, reads
    go on, and once it is gone writes work again."""
    with LockHolder(tmp_path / "bot.sqlite3") as holder:
        holder.freeze()
        error, took = gives_up(sqlite_db.ping, limit=10)
        assert isinstance(error, DatabaseUnavailable) and TIMEOUT <= took < bound(TIMEOUT)

        def write():
            with sqlite_db.transaction() as conn:
                conn.exec_driver_sql("CREATE TABLE t (x)")

        error, took = gives_up(write, limit=10)
        assert isinstance(error, DatabaseUnavailable) and took < bound(TIMEOUT)
        with sqlite_db.read() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    sqlite_db.ping()


def test_writers_of_one_process_queue_with_a_bound(sqlite_db):
    """A thread that cannot get the writer turn from another thread gives up in time."""
    inside, release = threading.Event(), threading.Event()

    def hold():
        with sqlite_db.transaction():
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        inside.wait(10)
        error, took = gives_up(sqlite_db.ping, limit=10)
        assert isinstance(error, DatabaseUnavailable) and TIMEOUT <= took < bound(TIMEOUT)
    finally:
        release.set()
        holder.join()
    sqlite_db.ping()


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: needs PostgreSQL")
def test_a_postgresql_statement_past_the_timeout_is_cut():
    """A statement still running after the timeout, in a transaction or a group commit,
    fails with DatabaseUnavailable; the next transaction works."""
    db = Database(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), timeout=TIMEOUT)
    try:
        def in_transaction():
            with db.transaction() as conn:
                conn.exec_driver_sql("SELECT pg_sleep(10)")

        for call in (in_transaction, lambda: db.group_commit.run(
                lambda conn: conn.exec_driver_sql("SELECT pg_sleep(10)"))):
            error, took = gives_up(call, limit=8)
            assert isinstance(error, DatabaseUnavailable) and TIMEOUT <= took < bound(TIMEOUT), (error, took)
        db.ping()
    finally:
        db.engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: needs PostgreSQL")
def test_a_frozen_postgresql_makes_calls_give_up():
    """Behind a frozen proxy (connections accepted, nothing answered), ping, reads and new
    connections give up within the timeout; after the thaw it works again by itself."""
    target = urlsplit(PG_URL)
    with ProxyProcess(target.hostname, target.port or 5432) as proxy:
        url = PG_URL.replace(target.netloc,
                             f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}")
        # libpq's connect_timeout is 2 s at least: a new connection gives up after 2 s.
        db = Database(url.replace("postgresql://", "postgresql+psycopg://", 1), timeout=TIMEOUT)
        try:
            db.ping()  # one pooled connection
            proxy.freeze()
            try:
                for _ in range(2):  # the pooled connection (cut), then a new one
                    error, took = gives_up(db.ping, limit=10)
                    assert isinstance(error, SQLAlchemyError) and took < bound(2.0), (error, took)

                def read():
                    with db.read() as conn:
                        conn.exec_driver_sql("SELECT 1")

                error, took = gives_up(read, limit=10)
                assert isinstance(error, SQLAlchemyError) and took < bound(2.0), (error, took)
            finally:
                proxy.thaw()
            wait_for(lambda: gives_up(db.ping, limit=10)[0] is None, timeout=20, interval=0.2)
        finally:
            db.engine.dispose()
