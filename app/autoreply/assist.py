"""The answer model's verdict as an input of the decision (pure, like the rest of it).

    decide(..., composing=True, assist=Assist(...))

The composer consults the model outside any transaction, the guardrails (app/answering/
guardrails.py) turn its output into an Assist, and `decide` uses it in the FAQ's step in
place of the offline matcher's outcome: an answer (the model's text, citing entries), a
clarification (the cited entries offered by number, in our words, never the model's) or
a decline (on to after hours, handoff on decline, greeting, fallback). An Assist that
says OFFLINE (a timeout, an error, a cap reached) leaves the offline outcome standing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ..knowledge import Candidate, Match, Outcome
from . import faq

if TYPE_CHECKING:  # built only from a rules file with an FAQ (numpy, the embedding)
    from ..knowledge import KnowledgeBase


class Action(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    DECLINE = "decline"
    OFFLINE = "offline"  # no usable verdict: the offline matcher's outcome stands


@dataclass(frozen=True)
class Assist:
    action: Action
    detail: str  # for the decision's detail: what the model said, or why it is not used
    text: str | None = None  # the answer's text (ANSWER only; checked by the guardrails)
    cited: tuple[str, ...] = ()  # entry ids: those that ground the answer, or those offered


def apply(assist: Assist, found: faq.Found, knowledge: KnowledgeBase) -> faq.Found:
    """The FAQ step's outcome once the model's verdict is in."""
    if assist.action is Action.OFFLINE:
        return faq.Found(found.match, found.rule, f"{found.detail}; answer model: "
                         f"{assist.detail}" if found.detail else "", found.spec, found.text)
    entries = [e for e in (knowledge.get(i) for i in assist.cited) if e is not None]
    candidates = tuple(Candidate(e.id, 0.0) for e in entries)
    if assist.action is Action.ANSWER and entries:
        return faq.Found(Match(Outcome.ANSWER, entries[0], candidates),
                         faq.rule_name(entries[0].id),
                         f"answer model, citing {', '.join(assist.cited)}", text=assist.text)
    if assist.action is Action.CLARIFY and len(entries) >= 2:
        return faq.Found(Match(Outcome.CLARIFY, None, candidates), faq.CLARIFY,
                         f"answer model: clarify between {', '.join(assist.cited)}",
                         text=faq.clarification([e.title for e in entries]))
    return faq.Found(Match(Outcome.DECLINE, None, found.match.candidates))
