"""What a decision says, and what it is made from: the vocabulary of decision.py.

    Decision(reason, detail, rule, reply, hands_off, faq)   # the verdict, recorded
    Reason                                                   # why: replied, or why silent
    Inbound, ConversationState                               # the message, the history
    Reply                                                    # what to send

Plain frozen data, no behaviour beyond reading it: the pipeline records a Decision with
the message, `why IM...` and the dashboard read it back by its Reason's name (the stored
code), and decision.py's `decide` is the one place that makes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ..knowledge import Match


class Reason(StrEnum):
    """Why the bot replied or stayed silent: the name is the stored code, the value reads."""

    REPLY = "replied"
    OWN_MESSAGE = "our own message (loop guard)"
    AGENT_MESSAGE = "written by an agent"
    SYSTEM_MESSAGE = "written by the REST API as 'system'"
    DISABLED = "auto-reply disabled"
    COMPLIANCE_KEYWORD = "compliance keyword, answered by Twilio and the carriers"
    OPTED_OUT = "customer opted out"
    OPT_IN = "customer opted back in"
    AGENT_ACTIVE = "an agent is handling the conversation"
    COOLDOWN = "cooldown after our last reply"
    BUDGET = "hourly reply budget spent"
    AFTER_HOURS_SILENT = "after hours, no after-hours reply configured"
    WHATSAPP_WINDOW = "outside WhatsApp's 24-hour window, no approved template"
    NO_RULE = "no rule matched and no fallback"
    TEMPLATE_ERROR = "the reply's template failed"
    DEFERRED = "answer composed once the conversation is quiet"
    WAITING_FOR_AGENT = "handed off, waiting for an agent"
    DECISION_FAILED = "the decision failed (a defect), no reply"


@dataclass(frozen=True)
class Inbound:
    """The customer's message as the decision sees it."""

    body: str
    author: str
    channel: str  # the webhook's Source, upper case: SMS, WHATSAPP, SDK, API, CHAT ('' unknown)
    attributes: str | None  # the message's Attributes (JSON string), for our own mark
    participant_sid: str | None
    received_at: datetime  # aware, UTC: when the customer's message arrived (DateCreated)


@dataclass(frozen=True)
class ConversationState:
    """What the conversation's history says, loaded by the caller under its lock."""

    inbound_before: int  # customer messages seen in this conversation before this one
    last_reply_at: datetime | None  # our last automated reply (aware UTC)
    replies_last_hour: int  # our automated replies in the hour before `now`
    last_agent_at: datetime | None  # a human agent last wrote here (aware UTC)
    opted_out: bool  # this customer opted out (error 21610) and has not opted back in
    handoff_at: datetime | None = None  # the bot handed off (no agent wrote since; aware UTC)
    offered: tuple[str, ...] = ()  # FAQ ids our last reply offered by number ("did you mean")


@dataclass(frozen=True)
class Reply:
    """What to send: a body, or a Content template (content_sid, never both); media (a
    file path or http(s) URL, with the body or alone) is uploaded when sent."""

    body: str | None
    content_sid: str | None = None
    content_variables: str | None = None  # a JSON object as a string
    media: str | None = None


@dataclass(frozen=True)
class Decision:
    reason: Reason
    detail: str  # e.g. "rule 'hours'", "cooldown until 14:05 UTC", "keyword STOP"
    rule: str | None = None  # the [[rules]] name, or greeting / after_hours / fallback
    reply: Reply | None = None  # set only when the reason is REPLY
    hands_off: bool = False  # the reply is the handoff message: the conversation waits
    faq: Match | None = None  # the knowledge base's match, when it was asked

    @property
    def replies(self) -> bool:
        return self.reason is Reason.REPLY and self.reply is not None

    @property
    def code(self) -> str:
        """The stored code: the reason's name."""
        return self.reason.name

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value
