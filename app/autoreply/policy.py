"""Policy: everything a decision needs besides the message, the conversation and the clock.

Built once at start-up from settings values (and the rules file, if any), frozen, shared by
every request. It holds no connection and reads no environment: the caller turns settings
into values, which is what keeps `decide` a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ..knowledge import Thresholds
from . import keywords
from .handoff import Handoff

if TYPE_CHECKING:  # loaded only with a rules file (names.py)
    from .rules import Rules


@dataclass(frozen=True)
class Policy:
    bot_identity: str  # our author name: its messages are never answered (loop guard)
    agent_identities: frozenset[str]  # authors who are human agents (AGENT_IDENTITIES)
    auto_reply_text: str  # AUTO_REPLY_TEXT: the reply when there is no rules file (literal)
    cooldown: timedelta  # at most one reply per conversation within this; 0: off
    budget: int  # hard cap of replies per conversation per rolling hour; 0: no cap
    handoff_window: timedelta  # silent this long after an agent wrote; 0: off
    rules: Rules | None = None  # None: defaults only (AUTO_REPLY_TEXT to every customer)
    enabled: bool = True  # AUTO_REPLY_ENABLED: the start-up default of the runtime switch
    handoff: Handoff | None = None  # HANDOFF_PHRASES, HANDOFF_MESSAGE, HANDOFF_ON_DECLINE
    debounce: timedelta = timedelta(0)  # AUTO_REPLY_DEBOUNCE: answer bursts once quiet
    answer_model: bool = False  # ANSWER_MODEL_URL is set: replies are composed later
    faq_thresholds: Thresholds = Thresholds()  # FAQ_ANSWER_SCORE, FAQ_MARGIN, FAQ_CLARIFY_SCORE

    @classmethod
    def build(cls, *, bot_identity: str, agent_identities, auto_reply_text: str,
              cooldown: timedelta, budget: int, handoff_window: timedelta,
              rules: Rules | None = None, enabled: bool = True,
              handoff: Handoff | None = None, debounce: timedelta = timedelta(0),
              answer_model: bool = False, faq_thresholds: Thresholds | None = None) -> Policy:
        """A policy from settings values; ValueError for values no setting should allow."""
        if not bot_identity:
            raise ValueError("bot_identity is empty")
        if not auto_reply_text.strip():
            raise ValueError("auto_reply_text is empty")
        for name, value in (("cooldown", cooldown), ("handoff_window", handoff_window),
                            ("debounce", debounce)):
            if value < timedelta(0):
                raise ValueError(f"{name} is negative: {value}")
        if budget < 0:
            raise ValueError(f"budget is negative: {budget}")
        return cls(
            bot_identity=bot_identity, agent_identities=frozenset(agent_identities),
            auto_reply_text=auto_reply_text.strip(), cooldown=cooldown, budget=budget,
            handoff_window=handoff_window, rules=rules, enabled=enabled, handoff=handoff,
            debounce=debounce, answer_model=answer_model,
            faq_thresholds=faq_thresholds or Thresholds())

    @property
    def composes_later(self) -> bool:
        """Whether a customer's reply is decided after the webhook's ack (app/compose/)."""
        return bool(self.debounce) or self.answer_model

    @property
    def deferral(self) -> str:
        """Why a message's reply is composed later, for its decision's detail."""
        if self.debounce:
            return f"after {self.debounce.total_seconds():g} s without a new message"
        return "by the answer model, after the ack"

    @property
    def compliance_keywords(self) -> frozenset[str]:
        """The standard keywords plus the rules file's own."""
        extra = self.rules.compliance_keywords if self.rules else frozenset()
        return keywords.COMPLIANCE | extra

    def is_agent(self, author: str) -> bool:
        """Whether a message's author is a human agent (what starts the handoff window)."""
        return author in self.agent_identities or bool(self.rules and self.rules.is_agent(author))

    def switch(self, stored: bool | None) -> bool:
        """The `enabled` to decide with: the runtime switch when set, else the start-up default."""
        return self.enabled if stored is None else stored
