"""Engines whose waits are bounded: SQLite's pragmas and transactions, PostgreSQL's
connect and pool timeouts, and the watchdog wired to every statement.

Nothing waits longer than `timeout` (DATABASE_TIMEOUT), nor past the request's deadline
(store/deadline.py) when there is one: a statement running past it is cut by the
watchdog (store/watchdog.py) and surfaces as DatabaseUnavailable, which the web layer
answers with 503; the wait for a pooled connection, a new PostgreSQL connection and
SQLite's busy handler end by it too.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from .deadline import current, left, until
from .watchdog import WATCHDOG

READ_ONLY = "bot_read_only"  # execution option: a connection that only reads (no write lock)
# A pooled connection checked in less than this long ago is not pinged at checkout.
PING_BYPASS_SECONDS = 0.5


class DatabaseUnavailable(SQLAlchemyError):
    """The database did not answer in time (a lock, a connection or a statement).

    A SQLAlchemyError, so that every `except SQLAlchemyError` (the sender, the jobs)
    rides it out like any other database outage.
    """


def sqlite_path(url: str) -> Path | None:
    """Return the file behind an sqlite:/// URL (None for in-memory)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(path.split("?", 1)[0]) if path and path != ":memory:" else None


def make_engine(url: str, timeout: float, *, watched: bool = True) -> Engine:
    """An engine whose waits end after `timeout` s (statements: when `watched`)."""
    if not url.startswith("sqlite"):
        engine = create_engine(
            url, poolclass=DeadlinePool, pool_pre_ping=True, pool_size=10, max_overflow=10,
            pool_timeout=timeout,
            # libpq counts whole seconds, at least 2 (within a deadline: connect_by_deadline).
            connect_args={"connect_timeout": max(2, math.ceil(timeout))})
        if watched:
            watch(engine, timeout)
            connect_by_deadline(engine, timeout)
        return engine

    path = sqlite_path(url)
    if path is not None:
        create_private(path)
    busy_ms = int(timeout * 1000)
    # In memory: SQLAlchemy's one connection per thread (no pool to wait for).
    pool = {"poolclass": DeadlinePool, "pool_timeout": timeout} if path is not None else {}
    engine = create_engine(url, connect_args={"timeout": timeout}, **pool)
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
        # The watchdog's interrupt does not end SQLite's busy handler: bound it here, by
        # the deadline too (a few microseconds, no I/O).
        busy = int(left(timeout) * 1000) if watched else busy_ms
        conn.connection.dbapi_connection.execute(f"PRAGMA busy_timeout={busy}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_private(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by its user only, before SQLite
    opens it: SQLite gives its -wal and -shm files the database file's mode.

    An existing file is never opened here: closing any descriptor of a file drops every
    POSIX lock the process holds on it, SQLite's included. A process that already has a
    connection open (a second engine, as `Database.upgrade` makes) would lose the shared
    lock that tells others the WAL is in use; the next connection closed elsewhere would
    then checkpoint and delete the WAL under it, and its later commits would go to a
    deleted file that no other process sees."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass


# SQLAlchemy's pools log under their class's module, here under `app`, whose INFO level
# would print "Pool disposed" / "Pool recreating" on every CLI command: quiet, as
# SQLAlchemy's own pools are unless asked for.
logging.getLogger(f"{__name__}.DeadlinePool").setLevel(logging.WARNING)


class DeadlinePool(QueuePool):
    """QueuePool whose wait for a free connection also ends by the request's deadline
    (QueuePool reads `_timeout` for each wait)."""

    @property
    def _timeout(self) -> float:
        return left(self._wait_at_most)

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._wait_at_most = value

    def recreate(self) -> DeadlinePool:
        pool = super().recreate()
        pool._timeout = self._wait_at_most  # not what is left of this thread's deadline
        return pool


def connect_by_deadline(engine: Engine, timeout: float) -> None:
    """Within a deadline, open a new PostgreSQL connection on a helper thread and wait
    for it only as long as the deadline allows: libpq's connect_timeout counts whole
    seconds, at least 2, and nothing can cut a connect under way. A connection that
    comes after its caller gave up is closed. Without a deadline: connect_timeout."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _record, cargs, cparams):
        if current() is None:
            return None  # the dialect connects, as usual
        connecting = _Connecting(lambda: dialect.connect(*cargs, **cparams))
        return connecting.result(left(timeout))


class _Connecting:
    """One connect on its own thread; its result, or DatabaseUnavailable in time."""

    def __init__(self, connect):
        self._connect = connect
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._conn = self._error = None
        threading.Thread(target=self._run, name="db-connect", daemon=True).start()

    def _run(self) -> None:
        conn = error = None
        try:
            conn = self._connect()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            error = exc
        with self._lock:
            if not self._abandoned:
                self._conn, self._error = conn, error
                self._done.set()
                return
        if conn is not None:
            conn.close()

    def result(self, timeout: float):
        if not self._done.wait(timeout):
            with self._lock:
                if not self._done.is_set():
                    self._abandoned = True
                    raise DatabaseUnavailable("no new database connection in time")
        if self._error is not None:
            raise self._error
        return self._conn


def watch(engine: Engine, timeout: float) -> None:
    """Arm the watchdog around everything that waits for the database on `engine`:
    statements, commits and rollbacks, and the pool's pre-ping (which runs outside
    the engine's events), each until `timeout` from its start or the deadline. A cut
    turns into DatabaseUnavailable."""
    armed = WATCHDOG.armed
    is_sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(engine, "connect")
    def _start(dbapi_conn, _record):
        WATCHDOG.start()

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn, cursor, statement, parameters, context, executemany):
        armed[cursor.connection] = until(timeout)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn, cursor, statement, parameters, context, executemany):
        armed.pop(cursor.connection, None)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _arm_ending(conn):
        if not conn.invalidated:  # a cut connection has nothing left to end
            armed[conn.connection.dbapi_connection] = until(timeout)

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
        return DatabaseUnavailable("the database did not answer in time")

    ping = engine.dialect.do_ping
    returned = weakref.WeakKeyDictionary()  # a pooled connection: when it was checked in

    if not is_sqlite:  # SQLite has no pre-ping (and its connections take no weak reference)
        @event.listens_for(engine, "checkin")
        def _returned(dbapi_conn, _record):
            if dbapi_conn is not None:
                returned[dbapi_conn] = time.monotonic()

    def do_ping(dbapi_conn):
        # A connection back in the pool moments ago was fine then: under load, when
        # every transaction takes one, the ping would be a round trip per transaction
        # (HikariCP skips it the same way, aliveBypassWindowMs). One that broke within
        # the window fails its first statement instead, is invalidated, and the next
        # checkout connects again.
        if time.monotonic() - returned.get(dbapi_conn, -math.inf) < PING_BYPASS_SECONDS:
            return True
        armed[dbapi_conn] = until(timeout)
        try:
            return ping(dbapi_conn)
        except Exception as exc:
            if WATCHDOG.was_cut(dbapi_conn):  # unanswered, not refused: no reconnect
                raise DatabaseUnavailable("the database did not answer in time") from exc
            raise
        finally:
            armed.pop(dbapi_conn, None)

    engine.dialect.do_ping = do_ping
