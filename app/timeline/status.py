"""One meaning per status, for every reader (the dashboard, /api/, `why`, `replies
stats`, `replies failed`): what became of a reply, and whether a conversation's
customer is taken care of.

A reply's outcome, one word (SQL: OUTCOME; Python: reply_outcome):

    dry_run      a dry-run server logged it: never sent            (not a success)
    queued       queued or sending (not sent yet)
    sent         Twilio accepted it, no receipt yet
    delivered    a receipt said delivered or read (and none failed)
    failed       Twilio refused it, or the sender gave up          (requeue may help)
    undelivered  Twilio accepted it, a receipt said failed or undelivered (a carrier's
                 or the channel's refusal: sending it again is rarely the fix)

`failed` and `undelivered` are the failures (WENT_WRONG), in every reader.

A conversation's state follows its latest message from the customer or an agent
(CONVERSATION_STATES), e.g. `not_answered` when the reply to it failed either way; one
the bot handed off is `waiting_agent` until an agent writes or the customer opts out,
whatever the bot said since: the same conversations /api/waiting lists.
"""

from __future__ import annotations

import re

from sqlalchemy import and_, case, literal_column, or_

from ..autoreply import Reason, keywords
from ..store.models import Reply, ReplyStatus
from ..twilio.error_codes import OPTED_OUT, requeue_helps

REPLIES = Reply.__table__
DELIVERY_PROBLEMS = ("failed", "undelivered")
OUTCOMES = ("delivered", "sent", "queued", "failed", "undelivered", "dry_run")
OUTCOME_LABELS = {
    "dry_run": "dry run (not sent)", "queued": "queued", "sent": "sent, no receipt yet",
    "delivered": "delivered", "failed": "failed", "undelivered": "undelivered",
}
FAILURES = ("failed", "undelivered")

_DRY = REPLIES.c.dry_run.is_(True)
OUTCOME = case(
    (REPLIES.c.status == ReplyStatus.FAILED, literal_column("'failed'")),
    (_DRY, literal_column("'dry_run'")),
    (REPLIES.c.delivery_status.in_(DELIVERY_PROBLEMS), literal_column("'undelivered'")),
    (REPLIES.c.delivery_status.in_(("delivered", "read")), literal_column("'delivered'")),
    (REPLIES.c.status == ReplyStatus.SENT, literal_column("'sent'")),
    else_=literal_column("'queued'"))
# A reply that went wrong: Twilio refused it, or a participant's receipt failed.
WENT_WRONG = or_(REPLIES.c.status == ReplyStatus.FAILED,
                 and_(REPLIES.c.delivery_status.in_(DELIVERY_PROBLEMS), ~_DRY))


def reply_outcome(status: str, delivery_status: str | None, dry_run: bool) -> str:
    """The reply's outcome as OUTCOME computes it in SQL."""
    if status == ReplyStatus.FAILED:
        return "failed"
    if dry_run:
        return "dry_run"
    if delivery_status in DELIVERY_PROBLEMS:
        return "undelivered"
    if delivery_status in ("delivered", "read"):
        return "delivered"
    return "sent" if status == ReplyStatus.SENT else "queued"


def requeueable(status: str, error_code: int | None) -> bool:
    """Only a failed reply goes again, and only where trying again can help (not to a
    customer who opted out, nor WhatsApp free text outside the 24-hour window...)."""
    return status == ReplyStatus.FAILED and requeue_helps(error_code)


# --- conversations ----------------------------------------------------------------------

CONVERSATION_STATES = {
    "not_answered": "not answered",
    "answered": "answered (delivered)",
    "no_receipt": "answered (no receipt yet)",
    "replying": "reply on its way",
    "dry_run": "dry run (not sent)",
    "silent": "silent by decision",
    "waiting_agent": "waiting for an agent",
    "with_agent": "with an agent (bot silent)",
    "agent_replied": "answered by an agent",
    "opted_out": "opted out",
}
# Is the customer taken care of? ok / attention / quiet, for the page's colours.
TONE = {"not_answered": "bad", "answered": "ok", "no_receipt": "ok", "replying": "wait",
        "dry_run": "dry", "silent": "quiet", "waiting_agent": "wait", "with_agent": "wait",
        "agent_replied": "ok", "opted_out": "quiet"}
NOT_ANSWERED_REASONS = (Reason.TEMPLATE_ERROR.name, Reason.DECISION_FAILED.name)
OPTED_OUT_REASONS = (Reason.OPTED_OUT.name,)
_KEYWORD = re.compile(r": keyword ([^;]+?)(?:;|$)")


def conversation_state(reason: str | None, outcome: str | None, code: int | None,
                       waiting: bool = False, decided: str | None = None, *,
                       opted_out: bool = False) -> str:
    """The state of a conversation whose latest message (customer's or agent's) was
    decided with `reason` and answered by a reply with this `outcome` and error `code`
    (None: no reply); `waiting`: it was handed off and no agent has written since (its
    row's waiting_since); `decided`: the decision as stored ('ignored: ...: keyword
    HELP'), which tells STOP from HELP; `opted_out`: the customer is recorded as opted
    out (21610, here or in another conversation; no START since)."""
    if reason == Reason.AGENT_MESSAGE.name:
        return "agent_replied"
    if waiting:  # its customer has not opted out (WAITING); someone else may have
        return "waiting_agent"
    if opted_out or outcome in FAILURES and code == OPTED_OUT or (
            outcome is None and _opts_out(reason, decided)):
        return "opted_out"
    if outcome is not None:
        if outcome in FAILURES:
            return "not_answered"
        return {"delivered": "answered", "sent": "no_receipt", "queued": "replying",
                "dry_run": "dry_run"}[outcome]
    if reason == Reason.AGENT_ACTIVE.name:
        return "with_agent"
    if reason in NOT_ANSWERED_REASONS or reason == Reason.REPLY.name:
        return "not_answered"  # an error, or a reply decided and never recorded
    return "silent"


def _opts_out(reason: str | None, decided: str | None) -> bool:
    """An opt-out: STOP and the other words that end messaging, not HELP or START."""
    if reason != Reason.COMPLIANCE_KEYWORD.name:
        return reason in OPTED_OUT_REASONS
    found = _KEYWORD.search(decided or "")  # '...: keyword HELP; <a note>'
    return not found or found.group(1) not in keywords.STILL_LISTENING


def reason_text(code: str | None) -> str | None:
    """A decision's reason code in plain words ('cooldown after our last reply')."""
    if not code:
        return None
    return Reason[code].value if code in Reason.__members__ else code.lower()
