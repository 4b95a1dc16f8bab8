"""The database: one engine per app, short transactions, the schema kept current.

SQLite (the default) runs in WAL mode with a busy timeout, and every transaction starts
with BEGIN IMMEDIATE so two writers queue instead of failing on a lock upgrade.
PostgreSQL (`DATABASE_URL`) is for several instances side by side.

Nothing waits longer than `timeout` (DATABASE_TIMEOUT): not a statement (the watchdog
cuts it), a connect, a free pooled connection, nor the writer turn. Twilio gives a
webhook 5 s; a database that does not answer gets it a 503 in time, not a hang.
Its files are the user's alone (0600 in a 0700 folder): they hold every conversation.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker

from .file_lock import FileLock
from .group_commit import GroupCommit
from .watchdog import WATCHDOG

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
READ_ONLY = "bot_read_only"  # execution option: a connection that only reads (no write lock)


class DatabaseUnavailable(SQLAlchemyError):
    """The database did not answer in time (a lock, a connection or a statement).

    A SQLAlchemyError, so that every `except SQLAlchemyError` (the sender, the jobs)
    rides it out like any other database outage.
    """


def dialect_insert(dialect_name: str):
    """Return the dialect's `insert` (the one with on_conflict_* methods)."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


class Database:
    """An engine, a session factory and the schema checks for one app."""

    def __init__(self, url: str, *, timeout: float = 2.0, instance_dir: Path | None = None):
        self.url = url
        self.timeout = timeout  # seconds a statement, connection or lock wait may take
        self.instance_dir = instance_dir
        self.engine = make_engine(url, timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._thread_lock = threading.Lock()
        path = sqlite_path(url) if self.is_sqlite else None
        self._file_lock = FileLock(Path(f"{path}.writer-lock")) if path else None
        self.group_commit = GroupCommit(self)
        self._readers = threading.local()  # each thread's reading connection
        self._reader_conns: set[Connection] = set()  # all of them, to close on dispose
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """A forked worker shares no socket, lock or lock file with its parent (the file
        lock, the group commit and the watchdog reset themselves)."""
        self.engine.dispose(close=False)
        self._thread_lock = threading.Lock()
        self._readers = threading.local()
        self._reader_conns = set()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self):
        """Yield a connection in one transaction: committed on success, else rolled back.

        Core statements on a plain connection: the webhook and sender paths run several
        hundred of these a second, and an ORM session costs twice as much.
        """
        with self._writer_turn(), self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Connection:
        """Yield a pooled connection for reading only, never queued behind writers
        (outside the writer lock; on SQLite each statement its own snapshot)."""
        with self._connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            yield conn
            conn.rollback()

    def run_read(self, query: Callable[[Connection], T]) -> T:
        """Run `query(conn)` on this thread's own reading connection, kept open in
        autocommit: no pool checkout, pre-ping or BEGIN per read, which matters on the
        webhook path, where a handler reads before it decides. A connection found
        broken (the database restarted) is replaced once; a timeout is not retried."""
        for attempt in (1, 2):
            conn = getattr(self._readers, "conn", None)
            if conn is None or conn.closed or conn.invalidated:
                conn = self._readers.conn = self._connect()
                self._reader_conns.add(conn)
                options = {READ_ONLY: True}
                if not self.is_sqlite:  # SQLite's driver is in autocommit already
                    options["isolation_level"] = "AUTOCOMMIT"
                conn.execution_options(**options)
            try:
                result = query(conn)
                conn.rollback()  # SQLAlchemy's own bookkeeping; in autocommit nothing is sent
                return result
            except BaseException as exc:
                self._readers.conn = None
                self._reader_conns.discard(conn)
                conn.close()
                if attempt == 2 or not getattr(exc, "connection_invalidated", False):
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Close every connection: the threads' reading ones, then the pool."""
        for conn in list(self._reader_conns):
            conn.close()
        self._reader_conns.clear()
        self.engine.dispose()

    @contextmanager
    def session(self):
        """Yield an ORM session in one transaction, for tools and tests that want objects."""
        with self._writer_turn(), self.sessions() as session, session.begin():
            yield session

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except PoolTimeout as exc:  # every pooled connection stayed busy
            raise DatabaseUnavailable(
                f"no free database connection within {self.timeout:g} s") from exc
        except OperationalError as exc:  # no connection (refused, or connect_timeout)
            raise DatabaseUnavailable(f"cannot connect to the database: {exc.orig}") from exc

    @contextmanager
    def _writer_turn(self):
        """On SQLite, queue writers on a lock instead of SQLite's busy handler.

        SQLite admits one writer at a time and makes the others poll with sleeps of up
        to 100 ms: at a few hundred webhooks per second that is the whole tail latency.
        A thread lock (this process) and an flock (other processes) hand the turn over
        at once. PostgreSQL needs none of this. Both waits together end after the timeout.
        """
        if not self.is_sqlite:
            yield
            return
        deadline = time.monotonic() + self.timeout
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise DatabaseUnavailable(f"no writer turn within {self.timeout:g} s "
                                      "(another thread of this process kept it)")
        try:
            lock = self._file_lock
            if lock is None:  # in-memory: one process only
                yield
                return
            if not lock.acquire(deadline - time.monotonic()):
                raise DatabaseUnavailable(f"no writer turn within {self.timeout:g} s "
                                          "(another process kept it)")
            try:
                yield
            finally:
                lock.release()
        finally:
            self._thread_lock.release()

    def ping(self) -> None:
        """Raise unless a write transaction can start now (the webhook path needs one);
        give up after the timeout, like the webhook path."""
        with self.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")

    def upgrade(self) -> None:
        """Bring the schema to the newest migration, one process at a time.

        On an engine of its own without the watchdog: a migration may rightly take longer
        than a webhook's statement, and so may the wait for another process migrating.
        """
        current, head = self.schema_revision()
        if current == head:  # the common start-up: no lock, no write
            return
        engine = make_engine(self.url, self.timeout, watched=False)
        try:
            with self._migration_lock(engine), engine.begin() as conn:
                command.upgrade(alembic_config(conn), "head")
        finally:
            engine.dispose()

    def schema_revision(self) -> tuple[str | None, str]:
        """Return (the database's revision, the newest revision in the code)."""
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with self.read() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head

    def schema_differences(self) -> list:
        """Differences between the models and the database (empty when they agree)."""
        from alembic.autogenerate import compare_metadata

        from .models import Base

        with self.read() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)

    @contextmanager
    def _migration_lock(self, engine: Engine):
        if self.is_sqlite:
            path = sqlite_path(self.url)
            lock_path = (path.parent if path else Path(".")) / ".migrate.lock"
            lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock
        else:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT pg_advisory_lock(827364512)")
                try:
                    yield
                finally:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(827364512)")
                    conn.commit()


def alembic_config(connection=None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def sqlite_path(url: str) -> Path | None:
    """Return the file behind an sqlite:/// URL (None for in-memory)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(path.split("?", 1)[0]) if path and path != ":memory:" else None


def make_engine(url: str, timeout: float, *, watched: bool = True) -> Engine:
    """An engine whose waits end after `timeout` s (statements: when `watched`)."""
    if not url.startswith("sqlite"):
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=timeout,
            # libpq counts whole seconds, at least 2.
            connect_args={"connect_timeout": max(2, math.ceil(timeout))})
        if watched:
            watch(engine, timeout)
        return engine

    path = sqlite_path(url)
    if path is not None:
        create_private(path)
    busy_ms = int(timeout * 1000)
    engine = create_engine(url, connect_args={"timeout": timeout})
    if watched:
        watch(engine, timeout)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not the driver, decide where transactions begin (see below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front; readers (Database.read) never wait for it.
        if conn.get_execution_options().get(READ_ONLY):
            return  # autocommit: each SELECT is its own snapshot, and costs no BEGIN
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_private(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by its user only, before SQLite
    opens it: SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def watch(engine: Engine, timeout: float) -> None:
    """Arm the watchdog around everything that waits for the database on `engine`:
    statements, commits and rollbacks, and the pool's pre-ping (which runs outside
    the engine's events). A cut turns into DatabaseUnavailable."""
    armed = WATCHDOG.armed
    monotonic = time.monotonic
    is_sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(engine, "connect")
    def _start(dbapi_conn, _record):
        WATCHDOG.start()

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn, cursor, statement, parameters, context, executemany):
        armed[cursor.connection] = monotonic() + timeout

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn, cursor, statement, parameters, context, executemany):
        armed.pop(cursor.connection, None)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _arm_ending(conn):
        if not conn.invalidated:  # a cut connection has nothing left to end
            armed[conn.connection.dbapi_connection] = monotonic() + timeout

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn, _record):
        armed.pop(dbapi_conn, None)

    @event.listens_for(engine, "invalidate")
    def _invalidate(dbapi_conn, _record, _exception):
        armed.pop(dbapi_conn, None)

    @event.listens_for(engine, "handle_error")
    def _cut_is_unavailable(ctx):
        conn = ctx.connection
        if conn is None or conn.invalidated:
            return None
        if not WATCHDOG.was_cut(conn.connection.dbapi_connection):
            return None
        if not is_sqlite:
            ctx.is_disconnect = True  # the socket is shut: drop the connection
        return DatabaseUnavailable(f"the database did not answer within {timeout:g} s")

    ping = engine.dialect.do_ping

    def do_ping(dbapi_conn):
        armed[dbapi_conn] = monotonic() + timeout
        try:
            return ping(dbapi_conn)
        except Exception as exc:
            if WATCHDOG.was_cut(dbapi_conn):  # unanswered, not refused: no reconnect
                raise DatabaseUnavailable(
                    f"the database did not answer within {timeout:g} s") from exc
            raise
        finally:
            armed.pop(dbapi_conn, None)

    engine.dialect.do_ping = do_ping
