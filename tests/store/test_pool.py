"""PostgreSQL's pooled connections: pinged at checkout only after a moment idle (a ping
per transaction would be a round trip per webhook under load), and a connection that
broke in the pool is replaced either way."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest
from sqlalchemy.exc import SQLAlchemyError

from app.store import engine
from app.store.database import Database
from tests.support.databases import PG_URL
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: needs PostgreSQL")


def driver_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def statements(monkeypatch) -> list[str]:
    """Every statement psycopg sends from this process, in order."""
    sent, real = [], psycopg.Cursor.execute

    def execute(self, query, *args, **kwargs):
        sent.append(str(query))
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return sent


def transaction(db: Database) -> None:
    with db.transaction() as conn:
        conn.exec_driver_sql("SELECT 2")


def pings(statements: list[str]) -> int:
    return sum(s == ";" for s in statements)  # the psycopg dialect's ping


def test_a_connection_returned_moments_ago_is_not_pinged_an_idle_one_is(statements,
                                                                      monkeypatch):
    db = Database(driver_url(PG_URL))
    try:
        transaction(db)
        statements.clear()
        for _ in range(20):
            transaction(db)
        assert statements.count("SELECT 2") == 20 and pings(statements) == 0
        monkeypatch.setattr(engine, "PING_BYPASS_SECONDS", 0.0)  # as if idle for long
        transaction(db)
        assert pings(statements) == 1
    finally:
        db.dispose()


@pytest.mark.parametrize("idle", [False, True])
def test_a_connection_broken_in_the_pool_is_replaced(monkeypatch, idle):
    """Idle a while, the ping finds it broken and a new connection serves the caller;
    returned moments ago, its first statement fails (one error, as any statement cut by
    a restart), and the next transaction connects again."""
    target = urlsplit(PG_URL)
    proxy = TcpProxy(target.hostname, target.port or 5432).start()
    url = PG_URL.replace(target.netloc, f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}")
    db = Database(driver_url(url))
    try:
        transaction(db)
        proxy.cut()
        proxy.restore()
        if idle:
            monkeypatch.setattr(engine, "PING_BYPASS_SECONDS", 0.0)
            transaction(db)
        else:
            with pytest.raises(SQLAlchemyError):
                transaction(db)
            transaction(db)
    finally:
        db.dispose()
        proxy.cut()
