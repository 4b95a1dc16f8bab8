"""A request's deadline bounds every wait for the database together: statements, the
commit, the group commit's turn, a pooled or new connection, SQLite's busy handler."""

from __future__ import annotations

import sqlite3
import threading
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.store import deadline
from app.store.database import Database, DatabaseUnavailable
from app.store.engine import DeadlinePool
from app.store.group_commit import GroupCommit
from tests.support.databases import PG_URL
from tests.support.tcp_proxy import ProxyProcess
from tests.support.timeouts import COUNT_FOR_LONG, bound, gives_up
from tests.support.waiting import wait_for

TIMEOUT = 20.0  # DATABASE_TIMEOUT here: far longer than the deadlines below
SOON = 0.3  # the deadline, seconds from the start
LIMIT = bound(SOON)  # a wait that ends at the deadline ends well before TIMEOUT


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}", timeout=TIMEOUT)
    with db.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
    yield db
    db.dispose()


def within_soon(call):
    """`call` under a deadline SOON from now."""
    def bounded():
        with deadline.within(SOON):
            return call()
    return bounded


def test_a_statement_is_cut_at_the_deadline_not_its_timeout(db):
    """A statement past the deadline is cut; the next wait under it fails at once."""
    def two_reads():
        try:
            with db.read() as conn:
                conn.exec_driver_sql(COUNT_FOR_LONG).scalar()
        except DatabaseUnavailable:
            pass
        with db.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    error, took = gives_up(within_soon(two_reads), limit=10)
    assert isinstance(error, DatabaseUnavailable) and SOON <= took < LIMIT, (error, took)
    assert "no time left" in str(error)


def test_nothing_is_committed_after_the_deadline(db):
    """A transaction whose deadline passes before its commit is rolled back."""
    def late_write():
        with db.transaction() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            wait_for(deadline.expired, timeout=5)

    error, _ = gives_up(within_soon(late_write), limit=10)
    assert isinstance(error, DatabaseUnavailable)
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0


class Blocking:
    """A group-commit unit that holds its batch until released."""

    def __init__(self):
        self.inside, self.release = threading.Event(), threading.Event()
        self.threads: list[str] = []

    def __call__(self, conn):
        self.threads.append(threading.current_thread().name)
        self.inside.set()
        assert self.release.wait(10)


def test_a_queued_unit_gives_up_at_its_deadline_unwritten(db):
    """Queued behind a batch that does not end, a request's unit leaves at its deadline,
    and is not written after."""
    commit, blocking = GroupCommit(db), Blocking()
    leader = threading.Thread(target=commit.run, args=(blocking,))
    leader.start()
    try:
        assert blocking.inside.wait(10)
        write = lambda: commit.run(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (2)"))  # noqa: E731
        error, took = gives_up(within_soon(write), limit=10)
        assert isinstance(error, DatabaseUnavailable) and SOON <= took < LIMIT, (error, took)
    finally:
        blocking.release.set()
        leader.join(10)
    commit.run(lambda conn: None)
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0


def test_the_lead_passes_to_the_unit_with_the_most_time_left(db):
    """The leader's deadline bounds its batch: after a batch, the queued unit with the
    most time left (here one without a deadline) runs the next for both."""
    commit, first, second = GroupCommit(db), Blocking(), Blocking()
    second.release.set()
    threads = [threading.Thread(target=commit.run, args=(first,), name="first")]
    threads[0].start()
    assert first.inside.wait(10)

    def with_deadline():
        with deadline.within(10):
            commit.run(second)

    threads.append(threading.Thread(target=with_deadline, name="short"))
    threads[1].start()
    wait_for(lambda: commit.waiting == 1, timeout=10)  # the running batch is not queued
    threads.append(threading.Thread(target=commit.run, args=(second,), name="none"))
    threads[2].start()
    wait_for(lambda: commit.waiting == 2, timeout=10)
    first.release.set()
    for thread in threads:
        thread.join(10)
    assert second.threads == ["none", "none"]


def test_waiting_for_a_pooled_connection_ends_at_the_deadline():
    """Every pooled connection busy: the wait ends at the deadline; the pool's own
    timeout stays as configured (after a dispose too)."""
    pool = DeadlinePool(lambda: sqlite3.connect(":memory:"), pool_size=1, max_overflow=0,
                        timeout=TIMEOUT)
    held = pool.connect()
    try:
        error, took = gives_up(within_soon(pool.connect), limit=10)
        assert isinstance(error, PoolTimeout) and SOON <= took < LIMIT, (error, took)
        assert pool.timeout() == TIMEOUT and pool.recreate().timeout() == TIMEOUT
    finally:
        held.close()


def test_sqlite_busy_handler_ends_at_the_deadline(db, tmp_path):
    """Another program (not queued on our writer turn) holds SQLite's write lock: the
    busy handler, which the watchdog cannot interrupt, gives up at the deadline."""
    other = sqlite3.connect(tmp_path / "bot.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        error, took = gives_up(within_soon(db.ping), limit=10)
        # "database is locked", or the watchdog's cut if it looked first: both are 503s
        assert isinstance(error, (OperationalError, DatabaseUnavailable)), error
        assert SOON <= took < LIMIT, took
    finally:
        other.execute("ROLLBACK")
        other.close()
    db.ping()


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: needs PostgreSQL")
def test_a_new_postgresql_connection_ends_at_the_deadline():
    """Behind a frozen proxy, a connect (libpq: 2 s at least) gives up at the deadline;
    after the thaw the database is usable again."""
    target = urlsplit(PG_URL)
    with ProxyProcess(target.hostname, target.port or 5432) as proxy:
        url = PG_URL.replace(target.netloc,
                             f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}")
        db = Database(url.replace("postgresql://", "postgresql+psycopg://", 1), timeout=TIMEOUT)
        try:
            proxy.freeze()
            try:
                error, took = gives_up(within_soon(db.ping), limit=10)
                assert isinstance(error, DatabaseUnavailable) and SOON <= took < LIMIT, \
                    (error, took)
            finally:
                proxy.thaw()
            wait_for(lambda: gives_up(db.ping, limit=10)[0] is None, timeout=20, interval=0.2)
        finally:
            db.dispose()


def test_without_a_deadline_each_wait_has_its_timeout(db):
    """The sender, the jobs and the CLI run without a deadline: nothing changes for them."""
    assert deadline.current() is None
    assert TIMEOUT - 0.5 < deadline.left(TIMEOUT) <= TIMEOUT
    with db.transaction() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
