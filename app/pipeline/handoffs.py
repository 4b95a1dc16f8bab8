"""Handoff state: the bot handed a conversation off (it waits for an agent), or an agent
wrote (it waits no more). Written in the transaction that records the decision. A
customer who opts out waits no more either (delivery/opt_outs.py: end_wait)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, or_, update

from ..autoreply import Decision, Reason
from ..store.models import Conversation

CONVERSATIONS = Conversation.__table__
_HANDED_OFF = (update(CONVERSATIONS).where(CONVERSATIONS.c.sid == bindparam("conversation"))
               .values(handoff_at=bindparam("now"),
                       waiting_since=func.coalesce(CONVERSATIONS.c.waiting_since,
                                                   bindparam("now"))))
_AGENT_WROTE = (update(CONVERSATIONS)
              .where(CONVERSATIONS.c.sid == bindparam("conversation"),
                     or_(CONVERSATIONS.c.waiting_since.is_not(None),
                         CONVERSATIONS.c.handoff_at.is_not(None)))
              .values(handoff_at=None, waiting_since=None))


def record(conn: Connection, conversation_sid: str, decision: Decision,
           now: datetime) -> None:
    """After the conversation's row is written: a handoff starts (or keeps) the wait; an
    agent's message ends it (the agent's own HANDOFF_WINDOW follows)."""
    if decision.hands_off:
        conn.execute(_HANDED_OFF, {"conversation": conversation_sid,
                                   "now": now.astimezone(UTC).replace(tzinfo=None)})
    elif decision.reason is Reason.AGENT_MESSAGE:
        conn.execute(_AGENT_WROTE, {"conversation": conversation_sid})

