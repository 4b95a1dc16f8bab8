"""State handlers may read before they decide: short reads, never behind the writers.

A narrow interface on purpose: handlers ask questions (what happened in this
conversation?), they never get a connection. Each read is its own short read
transaction (on SQLite a deferred one in WAL mode, outside the writer lock), so a
handler that reads does not slow the webhooks that only write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select

from ..store.database import Database
from ..store.models import Reply, utcnow

REPLIES = Reply.__table__
_CONVERSATION = (
    select(func.max(REPLIES.c.created_at),
           func.count().filter(REPLIES.c.created_at >= bindparam("hour_ago")))
    .where(REPLIES.c.conversation_sid == bindparam("conversation_sid"))
)


@dataclass(frozen=True)
class ConversationState:
    """What the bot has done in one conversation."""

    last_reply_at: datetime | None  # when the newest automated reply was queued
    replies_last_hour: int


class StateReader:
    def __init__(self, db: Database):
        self._db = db

    def conversation(self, conversation_sid: str) -> ConversationState:
        with self._db.read() as conn:
            last, count = conn.execute(_CONVERSATION, {
                "conversation_sid": conversation_sid,
                "hour_ago": utcnow() - timedelta(hours=1)}).one()
        return ConversationState(last_reply_at=last, replies_last_hour=count or 0)
