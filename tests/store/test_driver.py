"""Statements on the driver's cursor (store/driver.py) give what `Connection.execute`
gives: the same rows and types, the same column defaults, the same errors, and the
watchdog still cuts them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError

from app.store.database import Database, DatabaseUnavailable, dialect_insert
from app.store.driver import Statement
from app.store.models import Conversation, Reply
from tests.support.timeouts import COUNT_FOR_LONG, bound, gives_up

CONVERSATIONS = Conversation.__table__
REPLIES = Reply.__table__
STAMP = datetime(2026, 12, 3, 21, 5, 7, 123456)  # naive UTC, as stored


@pytest.fixture
def db(database_url):
    database = Database(database_url, timeout=1.0)
    database.upgrade()
    yield database
    database.dispose()


def test_rows_and_types_are_those_of_execute(db):
    """Datetimes, NULLs, integers and strings read back exactly as SQLAlchemy reads them."""
    with db.transaction() as conn:
        conn.execute(insert(CONVERSATIONS), [
            {"sid": "CH1", "inbound_count": 3, "last_agent_at": STAMP, "updated_at": STAMP},
            {"sid": "CH2", "inbound_count": 0, "last_agent_at": None, "updated_at": STAMP}])
    query = (select(CONVERSATIONS.c.sid, CONVERSATIONS.c.inbound_count,
                    CONVERSATIONS.c.last_agent_at, CONVERSATIONS.c.last_reply_at)
             .where(CONVERSATIONS.c.updated_at >= bindparam("since"))
             .order_by(CONVERSATIONS.c.sid))
    params = {"since": STAMP - timedelta(seconds=1)}
    with db.read() as conn:
        expected = [tuple(row) for row in conn.execute(query, params)]
    got = db.run_read(lambda conn: Statement(query).rows(conn, params))
    assert got == expected == [("CH1", 3, STAMP, None), ("CH2", 0, None, None)]


def test_an_insert_fills_python_defaults_and_returns_nothing_on_conflict(db):
    """Columns left out get their model defaults (`default=utcnow`, a status, 0); a
    conflicting insert returns no row."""
    stmt = Statement(dialect_insert(db.engine.dialect.name)(REPLIES)
                     .on_conflict_do_nothing(index_elements=["in_reply_to"])
                     .returning(REPLIES.c.id))
    params = {"conversation_sid": "CH1", "in_reply_to": "IM1", "author": "bot", "body": "hi"}
    before = datetime.utcnow() - timedelta(seconds=5)  # noqa: DTZ003 - stored naive UTC
    with db.transaction() as conn:
        first = stmt.scalar(conn, params)
        again = stmt.scalar(conn, params)
    assert isinstance(first, int) and again is None
    with db.read() as conn:
        row = conn.execute(select(REPLIES).where(REPLIES.c.id == first)).one()
    assert (row.status, row.attempts, row.dry_run) == ("queued", 0, False)
    assert row.created_at >= before and row.next_attempt_at >= before


def test_errors_are_sqlalchemys(db):
    """A constraint the statement breaks raises SQLAlchemy's IntegrityError, and the
    transaction is rolled back as with execute."""
    stmt = Statement(insert(CONVERSATIONS))
    with pytest.raises(IntegrityError), db.transaction() as conn:
        stmt.rows(conn, {"sid": "CH1", "updated_at": STAMP})
        stmt.rows(conn, {"sid": "CH1", "updated_at": STAMP})
    with db.read() as conn:
        assert conn.execute(select(CONVERSATIONS.c.sid)).all() == []


def test_the_watchdog_cuts_a_statement_past_its_timeout(database_url):
    """The engine's events still arm the watchdog: a statement running past the
    timeout gives up with DatabaseUnavailable, and the next one works."""
    db = Database(database_url, timeout=1.0)
    long_count = Statement(text(COUNT_FOR_LONG if db.is_sqlite else "SELECT pg_sleep(30)"))
    try:
        error, took = gives_up(lambda: db.run_read(lambda conn: long_count.rows(conn, {})),
                               limit=30)
        assert isinstance(error, DatabaseUnavailable)
        assert 1.0 <= took < bound(1.0)
        assert db.run_read(lambda conn: Statement(text("SELECT 1")).scalar(conn, {})) == 1
    finally:
        db.dispose()
