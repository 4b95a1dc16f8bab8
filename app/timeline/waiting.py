"""Conversations waiting for an agent: the bot handed them off (asked for a person, or
nothing to answer with) and no agent has written since. Oldest first: who has waited
longest is who an agent should take next."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from ..store.models import Conversation

CONVERSATIONS = Conversation.__table__


def waiting(conn: Connection, limit: int = 25, now: datetime | None = None) -> dict:
    """Up to `limit` waiting conversations, oldest first, and how many wait in all."""
    c = CONVERSATIONS.c
    rows = conn.execute(
        select(c.sid, c.waiting_since, c.handoff_at, c.last_inbound_at, c.inbound_count)
        .where(c.waiting_since.is_not(None))
        .order_by(c.waiting_since, c.sid).limit(limit)).all()
    total = conn.execute(select(func.count()).where(c.waiting_since.is_not(None))).scalar()
    return {"total": total, "conversations": [{
        "conversation_sid": r.sid, "waiting_since": r.waiting_since,
        "handoff_at": r.handoff_at, "last_inbound_at": r.last_inbound_at,
        "messages": r.inbound_count,
        "waited_seconds": (now - r.waiting_since).total_seconds() if now else None,
    } for r in rows]}
