"""The knowledge base and its three outcomes: answer, clarify ("did you mean"), decline.

    kb = KnowledgeBase(entries)
    kb.match(text, channel, thresholds) -> Match

ANSWER when the best entry scores at least `answer` and leads the second by at least
`margin`: a score alone says "similar", the lead says "this one and not another", which
is what keeps wrong answers rare on questions the base does not cover (they sit near
several entries at once). CLARIFY when two or three entries score at least `clarify` and
lie within `margin` of the best: the bot offers them by number. DECLINE otherwise: the
caller says what it said before there was a knowledge base (fallback, greeting, after
hours) or hands off. An entry whose channels or keywords exclude the message is never a
candidate. The defaults were chosen on eval/clinc150 (docs/faq.md says how), never on a
customer's questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from . import embedding
from .entries import Entry
from .scoring import Index

MAX_OFFERED = 3  # "did you mean" offers at most this many entries
BEST_FEW = 3  # candidates kept with an answer or a decline, for the record


class Outcome(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    DECLINE = "decline"


@dataclass(frozen=True)
class Thresholds:
    """Scores are about 0..1.3 (cosine plus a share of BM25); see docs/faq.md."""

    answer: float = 0.45  # the best entry's score needed to answer
    margin: float = 0.19  # ... and its lead over the second best
    clarify: float = 0.55  # the score an entry needs to be offered in a clarification

    def __post_init__(self):
        for name in ("answer", "margin", "clarify"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} is negative: {getattr(self, name)}")


@dataclass(frozen=True)
class Candidate:
    faq_id: str
    score: float

    def as_dict(self) -> dict:
        return {"faq_id": self.faq_id, "score": round(self.score, 3)}


@dataclass(frozen=True)
class Match:
    outcome: Outcome
    entry: Entry | None = None  # set when the outcome is ANSWER
    candidates: tuple[Candidate, ...] = ()  # offered (CLARIFY), else the best few

    @property
    def faq_id(self) -> str | None:
        return self.entry.id if self.entry else None

    def as_dict(self) -> dict:
        """The match as stored with the decision and printed by `faq eval --json`."""
        return {"outcome": self.outcome.value, "faq_id": self.faq_id,
                "candidates": [c.as_dict() for c in self.candidates]}

    def describe(self) -> str:
        """One line for the decision's detail: 'answer refund-time 0.91 (next 0.70)'."""
        scores = ", ".join(f"{c.faq_id} {c.score:.2f}" for c in self.candidates)
        return f"{self.outcome.value}" + (f": {scores}" if scores else "")


DECLINED = Match(Outcome.DECLINE)


class KnowledgeBase:
    """FAQ entries, indexed once; `match` is pure and safe to call from many threads."""

    def __init__(self, entries: tuple[Entry, ...] | list[Entry],
                 embedder: embedding.Embedder | None = None):
        self.entries = tuple(entries)
        ids = [entry.id for entry in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("two entries share an id")
        self.by_id = {entry.id: entry for entry in self.entries}
        self.index = Index(self.entries, embedder)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, faq_id: str) -> Entry | None:
        return self.by_id.get(faq_id)

    def retrieve(self, text: str, channel: str = "", k: int = 5) -> list[Candidate]:
        """The k best entries that may answer `text` on `channel`, best first."""
        if not self.entries or not text.strip():
            return []
        scores = self.index.scores(text)
        found = []
        for row in np.argsort(-scores, kind="stable"):
            entry = self.entries[row]
            if entry.applies(text, channel):
                found.append(Candidate(entry.id, float(scores[row])))
                if len(found) == k:
                    break
        return found

    def match(self, text: str, channel: str = "",
              thresholds: Thresholds = Thresholds()) -> Match:
        """Answer, clarify or decline (the module docstring says when)."""
        best = self.retrieve(text, channel, k=MAX_OFFERED)
        if not best:
            return DECLINED
        first = best[0]
        second = best[1].score if len(best) > 1 else 0.0
        if first.score >= thresholds.answer and first.score - second >= thresholds.margin:
            return Match(Outcome.ANSWER, self.by_id[first.faq_id], tuple(best[:BEST_FEW]))
        close = tuple(c for c in best if c.score >= thresholds.clarify
                      and first.score - c.score < thresholds.margin)
        if len(close) >= 2:
            return Match(Outcome.CLARIFY, None, close[:MAX_OFFERED])
        return Match(Outcome.DECLINE, None, tuple(best[:BEST_FEW]))
