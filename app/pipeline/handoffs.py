"""Handoff state, written in the transaction that records the decision: the bot handed a
conversation off (it waits for an agent: since when, and who waits), an agent wrote (the
wait and the handoff's silence end), the customer opted back in (START: the same, so
that asking again hands off again). An opt-out ends only the wait (delivery/opt_outs.py:
end_wait): the bot stays as silent as the handoff made it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, or_, update

from ..autoreply import Decision, Reason, keywords
from ..store.models import Conversation

CONVERSATIONS = Conversation.__table__
_HANDED_OFF = (update(CONVERSATIONS).where(CONVERSATIONS.c.sid == bindparam("conversation"))
               .values(handoff_at=bindparam("now"),
                       waiting_since=func.coalesce(CONVERSATIONS.c.waiting_since,
                                                   bindparam("now")),
                       waiting_address=bindparam("address"),
                       waiting_participant=bindparam("participant")))
_HANDOFF_ENDS = (update(CONVERSATIONS)
                 .where(CONVERSATIONS.c.sid == bindparam("conversation"),
                        or_(CONVERSATIONS.c.waiting_since.is_not(None),
                            CONVERSATIONS.c.handoff_at.is_not(None)))
                 .values(handoff_at=None, waiting_since=None, waiting_address=None,
                         waiting_participant=None))


def record(conn: Connection, conversation_sid: str, decision: Decision, body: str,
           addresses: list[str], now: datetime) -> None:
    """After the conversation's row is written: a handoff starts (or keeps) the wait of
    the customer who wrote (`addresses`: their address, then participant); an agent's
    message ends it (the agent's own HANDOFF_WINDOW follows), and so does opting back in."""
    if decision.hands_off:
        address, participant = (list(addresses) + [None, None])[:2]
        conn.execute(_HANDED_OFF, {"conversation": conversation_sid, "address": address,
                                   "participant": participant,
                                   "now": now.astimezone(UTC).replace(tzinfo=None)})
    elif decision.reason in (Reason.AGENT_MESSAGE, Reason.OPT_IN) or (
            decision.reason is Reason.COMPLIANCE_KEYWORD
            and keywords.keyword_in(body, keywords.OPT_IN)):
        conn.execute(_HANDOFF_ENDS, {"conversation": conversation_sid})
