"""The database: one engine per app, short transactions, the schema kept current.

SQLite (the default) runs in WAL mode with a busy timeout, and every transaction starts
with BEGIN IMMEDIATE so two writers queue instead of failing on a lock upgrade.
PostgreSQL (`DATABASE_URL`) is for several instances side by side.

Nothing waits longer than `timeout` (DATABASE_TIMEOUT): not a statement (the watchdog
cuts it), a connect, a free pooled connection, nor the writer turn; within a request's
deadline (deadline.py), all of them together end by it, and nothing is committed after
it. Twilio gives a webhook 5 s; a database that does not answer gets it a 503 in time,
not a hang.
Its files are the user's alone (0600 in a 0700 folder): they hold every conversation.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker

from . import deadline
from .engine import READ_ONLY, DatabaseUnavailable, make_engine, sqlite_path
from .file_lock import FileLock
from .group_commit import GroupCommit

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest migration's revision (migrations/versions/). Every worker checks the schema
# at start-up; knowing the head here lets it do so with one query, and import Alembic
# (~11 MB per worker) only when there is something to migrate. A test keeps it equal to
# Alembic's own head.
SCHEMA_HEAD = "0012"
# While a serving process holds its connections back (the schema is behind the code, or
# could not be checked at start-up), it looks again at most this often.
SCHEMA_RECHECK_SECONDS = 1.0


class SchemaBehind(DatabaseUnavailable):
    """The database's schema is older than the code (or was not checked yet): nothing is
    read or written until it is current, so a request gets a 503 that says so, not a 500
    from a missing table or column. `current`: the revision found (None: none)."""

    def __init__(self, message: str, current: str | None = None):
        super().__init__(message)
        self.current = current


def behind(current: str | None) -> bool:
    """Whether a database at revision `current` lacks migrations this code has (None: no
    schema at all). Revisions are numbered in order ("0001", ...); one this code does not
    know is a later release's (after a rollback): not behind, served as before."""
    return current is None or (current.isdigit() and len(current) == len(SCHEMA_HEAD)
                               and current < SCHEMA_HEAD)


def schema_behind(current: str | None, head: str) -> str:
    return (f"database schema is at {current or 'nothing'} but the code needs {head}: run "
            "`flask --app wsgi db upgrade` (the Procfile's release phase does)")


def dialect_insert(dialect_name: str):
    """Return the dialect's `insert` (the one with on_conflict_* methods)."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


class Database:
    """An engine, a session factory and the schema checks for one app."""

    def __init__(self, url: str, *, timeout: float = 2.0):
        self.url = url
        self.timeout = timeout  # seconds a statement, connection or lock wait may take
        self.engine = make_engine(url, timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._thread_lock = threading.Lock()
        path = sqlite_path(url) if self.is_sqlite else None
        self._file_lock = FileLock(Path(f"{path}.writer-lock")) if path else None
        self.group_commit = GroupCommit(self)
        self._readers = threading.local()  # each thread's reading connection
        self._reader_set: weakref.WeakSet[_Reader] = weakref.WeakSet()  # for dispose()
        self._schema_hold: str | None = None  # why connections are held back (hold())
        self._schema_found: str | None = None  # the revision the last look found
        self._schema_upgrades = False  # ... and whether a look again may migrate
        self._schema_looked = 0.0
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """A forked worker shares no socket, lock or lock file with its parent (the file
        lock, the group commit and the watchdog reset themselves)."""
        self.engine.dispose(close=False)
        self._thread_lock = threading.Lock()
        self._readers = threading.local()
        self._reader_set = weakref.WeakSet()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self):
        """Yield a connection in one transaction: committed on success, else rolled back.

        Core statements on a plain connection: the webhook and sender paths run several
        hundred of these a second, and an ORM session costs twice as much. Past the
        request's deadline it is rolled back instead: a webhook answered 503 in time has
        nothing committed after its answer.
        """
        with self.writer_turn(), self._connect() as conn, conn.begin():
            yield conn
            in_time("commit")

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
        webhook path, where a handler reads before it decides. The connection goes back
        to the pool when its thread ends. A connection found broken (the database
        restarted) is replaced once; a timeout is not retried."""
        for attempt in (1, 2):
            in_time("read")
            reader = getattr(self._readers, "reader", None)
            if reader is None or reader.conn.closed or reader.conn.invalidated:
                reader = self._readers.reader = _Reader(self._connect(), self.is_sqlite)
                self._reader_set.add(reader)
            try:
                # No rollback after it: in autocommit each statement ended by itself, and
                # SQLAlchemy's rollback would only cost the webhook its bookkeeping and the
                # watchdog's arming (~30 us per read, as much as the SQLite query itself).
                return query(reader.conn)
            except BaseException as exc:
                self._readers.reader = None
                reader.close()
                if attempt == 2 or not getattr(exc, "connection_invalidated", False):
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Close every connection: the threads' reading ones, then the pool."""
        for reader in list(self._reader_set):
            reader.close()
        self.engine.dispose()

    @contextmanager
    def session(self):
        """Yield an ORM session in one transaction, for tools and tests that want objects."""
        with self.writer_turn(), self.sessions() as session, session.begin():
            yield session

    def hold(self, reason: str, *, upgrade: bool = False, found: str | None = None) -> None:
        """Hand out no connection (SchemaBehind(reason)) until the schema is current: a
        look at most every SCHEMA_RECHECK_SECONDS, the first at the next connection, ends
        the hold as soon as someone has run `db upgrade` (or, with `upgrade`, migrates
        itself: the SQLite default, whose start-up migration found no database)."""
        self._schema_upgrades, self._schema_found = upgrade, found
        self._schema_looked = 0.0
        self._schema_hold = reason

    def _look_at_schema(self, reason: str) -> None:
        now = time.monotonic()
        if now - self._schema_looked < SCHEMA_RECHECK_SECONDS:
            raise SchemaBehind(reason, self._schema_found)
        try:
            if self._schema_upgrades:
                self.upgrade()
            current, head = self.schema_revision()
        except PoolTimeout as exc:  # as _connect says it; anything else as it is
            raise DatabaseUnavailable("no free database connection in time") from exc
        except OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc.orig}") from exc
        self._schema_looked = now
        if behind(current):
            self._schema_hold = reason = schema_behind(current, head)
            self._schema_found = current
            raise SchemaBehind(reason, current)
        self._schema_hold = None
        log.info("database schema is at %s, as the code needs: serving", current)

    def _connect(self) -> Connection:
        if self._schema_hold is not None:
            self._look_at_schema(self._schema_hold)
        in_time("connection")
        try:
            return self.engine.connect()
        except PoolTimeout as exc:  # every pooled connection stayed busy
            raise DatabaseUnavailable("no free database connection in time") from exc
        except OperationalError as exc:  # no connection (refused, or connect_timeout)
            raise DatabaseUnavailable(f"cannot connect to the database: {exc.orig}") from exc

    @contextmanager
    def writer_turn(self):
        """On SQLite, queue writers on a lock instead of SQLite's busy handler.

        SQLite admits one writer at a time and makes the others poll with sleeps of up
        to 100 ms: at a few hundred webhooks per second that is the whole tail latency.
        A thread lock (this process) and an flock (other processes) hand the turn over
        at once. PostgreSQL needs none of this. Both waits together end after the timeout
        (or by the request's deadline).
        """
        if not self.is_sqlite:
            yield
            return
        ends = deadline.until(self.timeout)
        if not self._thread_lock.acquire(timeout=max(0.0, ends - time.monotonic())):
            raise DatabaseUnavailable("no writer turn in time "
                                      "(another thread of this process kept it)")
        try:
            lock = self._file_lock
            if lock is None:  # in-memory: one process only
                yield
                return
            if not lock.acquire(ends - time.monotonic()):
                raise DatabaseUnavailable("no writer turn in time (another process kept it)")
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
        if current != head:  # current at most start-ups: no lock, no write, no Alembic
            from alembic import command

            engine = make_engine(self.url, self.timeout, watched=False)
            try:
                with self._migration_lock(engine), engine.begin() as conn:
                    command.upgrade(alembic_config(conn), "head")
            finally:
                engine.dispose()
        self._schema_hold = None  # current now: nothing to hold connections back for

    def schema_revision(self) -> tuple[str | None, str]:
        """Return (the database's revision, the newest revision in the code). On a
        connection of its own, not `read()`: it is what ends a hold()."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None, SCHEMA_HEAD
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            if len(current) > 1:  # branches: Alembic's own error names them
                from alembic.runtime.migration import MigrationContext

                MigrationContext.configure(conn).get_current_revision()  # raises
        return (current[0] if current else None), SCHEMA_HEAD

    def schema_differences(self) -> list:
        """Differences between the models and the database (empty when they agree)."""
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

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


def in_time(what: str) -> None:
    """Raise DatabaseUnavailable if the request's deadline has passed: no new wait
    (`what`) begins, and nothing is committed, after it."""
    if deadline.expired():
        raise DatabaseUnavailable(f"no time left for the database ({what})")


class _Reader:
    """A thread's reading connection; it goes back to the pool when the thread ends (the
    thread-local holding it is dropped) or on dispose."""

    def __init__(self, conn: Connection, is_sqlite: bool):
        self.conn = conn
        options = {READ_ONLY: True}
        if not is_sqlite:  # SQLite's driver is in autocommit already (engine.py)
            options["isolation_level"] = "AUTOCOMMIT"
        conn.execution_options(**options)
        self._finalizer = weakref.finalize(self, conn.close)

    def close(self) -> None:
        self._finalizer()


def alembic_config(connection=None):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg
