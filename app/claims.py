"""Claims: each event is recorded once, atomically, before any side effect.

`INSERT ... ON CONFLICT DO NOTHING` on the unique key: the first delivery inserts the
row, a retry, replay or concurrent duplicate inserts nothing (on PostgreSQL it waits for
the first transaction, then sees its row) and is answered 2xx without side effects.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .events import Event
from .models import ProcessedEvent, utcnow


def dialect_insert(session: Session):
    """Return the dialect's `insert` (the one with on_conflict_* methods)."""
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


def claim(session: Session, event: Event, key: str) -> int | None:
    """Record the event under `key`; return its row id, or None if it was already there."""
    stmt = (
        dialect_insert(session)(ProcessedEvent)
        .values(key=key, event_type=event.type, outcome="",
                conversation_sid=event.get("ConversationSid"),
                message_sid=event.get("MessageSid"), received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(ProcessedEvent.id)
    )
    return session.execute(stmt).scalar()


def record_outcome(session: Session, claim_id: int, outcome: str) -> None:
    session.execute(update(ProcessedEvent).where(ProcessedEvent.id == claim_id)
                    .values(outcome=outcome[:200]))
