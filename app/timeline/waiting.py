"""Conversations waiting for an agent: the bot handed them off (asked for a person, or
nothing to answer with) and no agent has written since, nor has the customer opted out.
Oldest first: who has waited longest is who an agent should take next. Each with its
customer and what they last wrote."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from ..store.models import Conversation
from .conversations import WAITING, latest_message, preview

CONVERSATIONS = Conversation.__table__


def waiting(conn: Connection, limit: int = 25, now: datetime | None = None) -> dict:
    """Up to `limit` waiting conversations, oldest first, and how many wait in all."""
    c = CONVERSATIONS.c
    rows = conn.execute(
        select(c.sid, c.waiting_since, c.handoff_at, c.last_inbound_at, c.inbound_count)
        .where(WAITING).order_by(c.waiting_since, c.sid).limit(limit)).all()
    total = conn.execute(select(func.count()).select_from(CONVERSATIONS).where(WAITING)).scalar()
    return {"total": total, "conversations": [{
        "conversation_sid": r.sid, "waiting_since": r.waiting_since,
        "handoff_at": r.handoff_at, "last_inbound_at": r.last_inbound_at,
        "messages": r.inbound_count,
        "waited_seconds": (now - r.waiting_since).total_seconds() if now else None,
        **_last_words(conn, r.sid),
    } for r in rows]}


def _last_words(conn: Connection, conversation_sid: str) -> dict:
    """The customer (address, channel) and the first words of their latest message: one
    index probe per conversation listed."""
    row = latest_message(conn, conversation_sid, customer=True)
    if row is None:
        return {"customer": {"address": None, "channel": None}, "preview": None}
    media = row.media_types.split(",") if row.media_types else []
    return {"customer": {"address": row.author, "channel": row.channel},
            "preview": preview({"body": row.body, "media": media})}
