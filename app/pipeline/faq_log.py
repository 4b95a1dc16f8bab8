"""The FAQ's part of a decision's record, written in the claim's transaction: the match
(outcome, entry, candidates with scores) and the question's text, for `why`, the API, the
dashboard and `faq gaps`; and the ids a clarification offered, kept on the conversation."""

from __future__ import annotations

import json

from sqlalchemy import Connection, insert

from ..autoreply import Decision
from ..knowledge import Match, Outcome
from ..store.driver import Statement
from ..store.models import FAQ_TEXT_LENGTH, FaqMatch, utcnow

FAQ_MATCHES = FaqMatch.__table__
# Compiled once (store/driver.py): built per webhook, the insert cost more than the match.
_INSERT = Statement(insert(FAQ_MATCHES))


def record(conn: Connection, message_sid: str, conversation_sid: str, text: str,
           match: Match) -> None:
    _INSERT.rows(conn, {
        "message_sid": message_sid, "conversation_sid": conversation_sid,
        "outcome": match.outcome.value, "faq_id": match.faq_id,
        "candidates": json.dumps([c.as_dict() for c in match.candidates]),
        "text": text[:FAQ_TEXT_LENGTH], "created_at": utcnow()})


def offered(decision: Decision) -> str | None:
    """What the conversation keeps after this decision: the ids a clarification sent (only
    if it is sent), else nothing (an offer lapses with the customer's next message)."""
    match = decision.faq
    if decision.replies and match is not None and match.outcome is Outcome.CLARIFY:
        return ",".join(c.faq_id for c in match.candidates)
    return None
