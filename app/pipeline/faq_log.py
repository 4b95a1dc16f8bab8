"""The FAQ's part of a decision's record, written in the claim's transaction: the match
(outcome, entry, candidates with scores) and the question's text, for `why`, the API, the
dashboard and `faq gaps`; and the ids a clarification offered, kept on the conversation
until the bot says something else."""

from __future__ import annotations

from sqlalchemy import Connection, insert

from ..autoreply import Decision, Reason, keywords
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
        "candidates": match.candidates_json(),
        "text": text[:FAQ_TEXT_LENGTH], "created_at": utcnow()})


# Decisions after which a number is meant for someone else: an agent is in the
# conversation, the bot handed off, or the customer opted out or in.
_ENDS_OFFER = frozenset({Reason.AGENT_MESSAGE, Reason.AGENT_ACTIVE, Reason.WAITING_FOR_AGENT,
                         Reason.COMPLIANCE_KEYWORD, Reason.OPTED_OUT, Reason.OPT_IN})


def offer_changes(decision: Decision, body: str) -> dict:
    """What the conversation keeps of a clarification after this decision on `body`: the
    ids it offered when this decision sends one; none after any other reply, an agent's
    message, a handoff or an opt-out or in; unchanged while the bot stays silent for any
    other reason (the cooldown after the question, no fallback, after hours, a message
    waiting for its burst, HELP or INFO, which Twilio answers), so the customer's "2"
    after a "thanks" or a "HELP" still picks."""
    match = decision.faq
    if decision.replies:
        if match is not None and match.outcome is Outcome.CLARIFY:
            return {"faq_offered": ",".join(c.faq_id for c in match.candidates)}
        return {"faq_offered": None}
    if decision.reason in _ENDS_OFFER and not (
            decision.reason is Reason.COMPLIANCE_KEYWORD
            and keywords.keyword_in(body, keywords.HELP)):
        return {"faq_offered": None}
    return {}
