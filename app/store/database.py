"""The database: one engine per app, short transactions, the schema kept current.

SQLite (the default) runs in WAL mode with a busy timeout, and every transaction starts
with BEGIN IMMEDIATE so two writers queue instead of failing on a lock upgrade.
PostgreSQL (`DATABASE_URL`) is for several instances side by side.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from .group_commit import GroupCommit

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15_000
READ_ONLY = "bot_read_only"  # execution option: begin a deferred (reading) transaction


class DatabaseUnavailable(Exception):
    """The database did not answer in time (a lock, a connection or a statement)."""


def dialect_insert(dialect_name: str):
    """Return the dialect's `insert` (the one with on_conflict_* methods)."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


class Database:
    """An engine, a session factory and the schema checks for one app."""

    def __init__(self, url: str, *, timeout: float = 2.0, instance_dir: Path | None = None):
        self.url = url
        self.timeout = timeout  # seconds a statement, connection or lock wait may take
        self.instance_dir = instance_dir
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._thread_lock = threading.Lock()
        self._lock_pid: int | None = None
        self._lock_file = None
        path = sqlite_path(url) if self.is_sqlite else None
        self._lock_path = Path(f"{path}.writer-lock") if path else None
        self.group_commit = GroupCommit(self)
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """A forked worker shares no socket, lock or lock file with its parent."""
        self.engine.dispose(close=False)
        self._thread_lock = threading.Lock()
        self._lock_pid = None
        self._lock_file = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self):
        """Yield a connection in one transaction: committed on success, else rolled back.

        Core statements on a plain connection: the webhook and sender paths run several
        hundred of these a second, and an ORM session costs twice as much.
        """
        with self._writer_turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Connection:
        """Yield a connection for reading only: never queued behind writers (on SQLite a
        deferred transaction in WAL mode, outside the writer lock)."""
        with self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            yield conn
            conn.rollback()

    @contextmanager
    def session(self):
        """Yield an ORM session in one transaction, for tools and tests that want objects."""
        with self._writer_turn(), self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def _writer_turn(self):
        """On SQLite, queue writers on a lock instead of SQLite's busy handler.

        SQLite admits one writer at a time and makes the others poll with sleeps of up
        to 100 ms: at a few hundred webhooks per second that is the whole tail latency.
        A thread lock (this process) and an flock (other processes) hand the turn over
        at once. PostgreSQL needs none of this.
        """
        if not self.is_sqlite:
            yield
            return
        with self._thread_lock:
            if self._lock_path is None:  # in-memory: one process only
                yield
                return
            if self._lock_pid != os.getpid():  # an flock is shared across fork: reopen
                self._lock_file = open(self._lock_path, "a")
                self._lock_pid = os.getpid()
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def ping(self) -> None:
        """Raise unless a write transaction can start now (the webhook path needs one)."""
        with self.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")

    def upgrade(self) -> None:
        """Bring the schema to the newest migration, one process at a time."""
        with self._migration_lock():
            with self.engine.begin() as conn:
                cfg = alembic_config(conn)
                command.upgrade(cfg, "head")

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
    def _migration_lock(self):
        if self.is_sqlite:
            path = sqlite_path(self.url)
            lock_path = (path.parent if path else Path(".")) / ".migrate.lock"
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            with open(lock_path, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        else:
            with self.engine.connect() as conn:
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


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not the driver, decide where transactions begin (see below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front; readers (Database.read) never wait for it.
        reading = conn.get_execution_options().get(READ_ONLY)
        conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine
