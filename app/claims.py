"""Claims: each event is recorded once, atomically, before any side effect.

`INSERT ... ON CONFLICT DO NOTHING` on the unique key: the first delivery inserts the
row, a retry, replay or concurrent duplicate inserts nothing (on PostgreSQL it waits for
the first transaction, then sees its row) and is answered 2xx without side effects.
Statements are built once and take their values as parameters: this is the hot path.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from .events import Event
from .models import ProcessedEvent, utcnow

EVENTS = ProcessedEvent.__table__


def dialect_insert(conn: Connection):
    """Return the dialect's `insert` (the one with on_conflict_* methods)."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


@cache
def _claim_statement(dialect_name: str):
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return (insert(EVENTS).on_conflict_do_nothing(index_elements=["key"])
            .returning(EVENTS.c.id))


_RECORD_OUTCOME = (update(EVENTS).where(EVENTS.c.id == bindparam("claim_id"))
                   .values(outcome=bindparam("new_outcome")))


def claim(conn: Connection, event: Event, key: str, outcome: str) -> int | None:
    """Record the event and its outcome under `key`; return its row id, or None if it
    was already there."""
    return conn.execute(_claim_statement(conn.dialect.name), {
        "key": key, "event_type": event.type, "outcome": outcome[:200],
        "conversation_sid": event.get("ConversationSid"),
        "message_sid": event.get("MessageSid"), "received_at": utcnow(),
    }).scalar()


def record_outcome(conn: Connection, claim_id: int, outcome: str) -> None:
    conn.execute(_RECORD_OUTCOME, {"claim_id": claim_id, "new_outcome": outcome[:200]})
