"""The FAQ's step in a decision: an answer, a clarification, a number picked, or a decline.

    choose(body, channel, offered, knowledge, thresholds) -> Found

Pure, like the rest of the decision. A clarification offers two or three entries by
number; the conversation keeps their ids (ConversationState.offered) until the customer's
next message, so a reply "2" (or "2)", " 2. ") gets the second one's answer. Any other
next message is matched afresh and the offer lapses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..knowledge import Candidate, Match, Outcome, Thresholds
from .templates import ReplySpec

if TYPE_CHECKING:  # built only from a rules file with an FAQ (numpy, the embedding)
    from ..knowledge import KnowledgeBase

CLARIFY = "faq:clarify"  # the decision's rule for a clarification
_NUMBER = re.compile(r"\s*#?([1-9])\s*[.)]?\s*")


def rule_name(faq_id: str) -> str:
    """The decision's rule for an FAQ answer: faq:<id> (fits the stored rule column)."""
    return f"faq:{faq_id}"


@dataclass(frozen=True)
class Found:
    match: Match
    rule: str | None = None
    detail: str = ""
    spec: ReplySpec | None = None  # the entry's answer
    text: str | None = None  # or a literal text: the clarification

    @property
    def replies(self) -> bool:
        return self.match.outcome is not Outcome.DECLINE


def choose(body: str, channel: str, offered: tuple[str, ...], knowledge: KnowledgeBase,
           thresholds: Thresholds) -> Found:
    picked = _picked(body, offered, knowledge)
    if picked is not None:
        entry, number = picked
        match = Match(Outcome.ANSWER, entry, tuple(Candidate(i, 0.0) for i in offered))
        return Found(match, rule_name(entry.id),
                     f"FAQ {entry.id!r} (option {number} of the clarification)", entry.answer)
    match = knowledge.match(body, channel, thresholds)
    if match.outcome is Outcome.ANSWER:
        return Found(match, rule_name(match.entry.id),
                     f"FAQ {match.entry.id!r} ({match.describe()})", match.entry.answer)
    if match.outcome is Outcome.CLARIFY:
        titles = [knowledge.get(c.faq_id).title for c in match.candidates]
        return Found(match, CLARIFY, f"FAQ {match.describe()}", text=clarification(titles))
    return Found(match)


def clarification(titles: list[str]) -> str:
    options = " ".join(f"{n}) {title.rstrip('?.! ')}" for n, title in enumerate(titles, 1))
    return f"Did you mean: {options}? Reply with a number."


def picks(body: str, offered: tuple[str, ...], knowledge: KnowledgeBase) -> bool:
    """Whether the message picks an entry the last clarification offered ("2")."""
    return _picked(body, offered, knowledge) is not None


def _picked(body: str, offered: tuple[str, ...], knowledge: KnowledgeBase):
    """(entry, number) when the message is a number the last clarification offered."""
    if not offered:
        return None
    number = _NUMBER.fullmatch(body)
    if number is None or not 1 <= int(number.group(1)) <= len(offered):
        return None
    entry = knowledge.get(offered[int(number.group(1)) - 1])
    return (entry, int(number.group(1))) if entry is not None else None
