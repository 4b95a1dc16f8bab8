"""Handoff state: the bot handed a conversation off (it waits for an agent), or the wait
ended: an agent wrote, or the customer opted out (STOP, or Twilio's 21610 at a send:
nobody may write to them now, so no agent should be asked to). Written in the
transaction that records the decision, or the send's refusal."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, or_, update

from ..autoreply import Decision, Reason, keywords
from ..store.models import Conversation

CONVERSATIONS = Conversation.__table__
_HANDED_OFF = (update(CONVERSATIONS).where(CONVERSATIONS.c.sid == bindparam("conversation"))
               .values(handoff_at=bindparam("now"),
                       waiting_since=func.coalesce(CONVERSATIONS.c.waiting_since,
                                                   bindparam("now"))))
_WAIT_ENDS = (update(CONVERSATIONS)
              .where(CONVERSATIONS.c.sid == bindparam("conversation"),
                     or_(CONVERSATIONS.c.waiting_since.is_not(None),
                         CONVERSATIONS.c.handoff_at.is_not(None)))
              .values(handoff_at=None, waiting_since=None))


def record(conn: Connection, conversation_sid: str, decision: Decision, body: str,
           now: datetime) -> None:
    """After the conversation's row is written: a handoff starts (or keeps) the wait; an
    agent's message ends it (the agent's own HANDOFF_WINDOW follows), and so does an
    opt-out."""
    if decision.hands_off:
        conn.execute(_HANDED_OFF, {"conversation": conversation_sid,
                                   "now": now.astimezone(UTC).replace(tzinfo=None)})
    elif decision.reason is Reason.AGENT_MESSAGE or opts_out(decision, body):
        end_wait(conn, conversation_sid)


def opts_out(decision: Decision, body: str) -> bool:
    """STOP (or a rules file's own opt-out word), or a customer opted out already; not
    HELP, START and the other words after which the customer still listens."""
    if decision.reason is Reason.OPTED_OUT:
        return True
    return decision.reason is Reason.COMPLIANCE_KEYWORD and not keywords.keyword_in(
        body, keywords.STILL_LISTENING)


def end_wait(conn: Connection, conversation_sid: str | None) -> None:
    """The conversation waits for an agent no more."""
    if conversation_sid:
        conn.execute(_WAIT_ENDS, {"conversation": conversation_sid})
