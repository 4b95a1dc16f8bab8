"""The database's clock, as SQL: the one clock every host agrees on.

Leases, due times and job turns are compared across hosts, so they are written and
compared in the database's time, never a host's (a host an hour ahead would take over
live leases and every job turn). Both functions return SQL expressions evaluated by the
statement that uses them: no extra round trip.

PostgreSQL: the statement's start in UTC, a naive timestamp like our columns.
SQLite (one host by construction, one code path all the same): SQLAlchemy stores a
naive DateTime as text, 'YYYY-MM-DD HH:MM:SS.ffffff', and SQLite compares it as text.
SQLite's clock has milliseconds, so the microseconds are padded with 999: a time
written from Python earlier in the same millisecond is then not in the future.
"""

from __future__ import annotations

from sqlalchemy import DateTime, Float, bindparam, func, literal_column, type_coerce
from sqlalchemy.sql.elements import ColumnElement

_PG_NOW = "timezone('UTC', statement_timestamp())"
_SQLITE_FORMAT = literal_column("'%Y-%m-%d %H:%M:%f'")  # %f is SS.SSS
_SQLITE_PAD = literal_column("'999'")


def now(dialect_name: str) -> ColumnElement:
    """The database's current time (naive UTC)."""
    if dialect_name == "postgresql":
        return literal_column(_PG_NOW, DateTime)
    return _sqlite_time()


def later(dialect_name: str, seconds_param: str) -> ColumnElement:
    """The database's current time plus the seconds bound to `seconds_param` (may be < 0)."""
    seconds = bindparam(seconds_param, type_=Float)
    if dialect_name == "postgresql":
        return type_coerce(literal_column(_PG_NOW)
                           + seconds * literal_column("interval '1 second'"), DateTime)
    return _sqlite_time(func.printf(literal_column("'%.6f seconds'"), seconds))


def _sqlite_time(*modifiers) -> ColumnElement:
    text = func.strftime(_SQLITE_FORMAT, literal_column("'now'"), *modifiers)
    return type_coerce(text.concat(_SQLITE_PAD), DateTime)
