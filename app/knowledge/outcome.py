"""What a match says, without the matching: its outcome, candidates and thresholds.

Light on purpose (no numpy, no model): the decision imports these names in every worker,
while the knowledge base itself (matcher.py) loads only with a rules file that has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from .entries import Entry


class Outcome(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    DECLINE = "decline"


@dataclass(frozen=True)
class Thresholds:
    """Scores are about 0..1 (a cosine, plus a share of BM25 with the static model); see
    docs/faq.md. A threshold left None is the model's own (knowledge/models.py)."""

    answer: float | None = None  # the best entry's score needed to answer
    margin: float | None = None  # ... and its lead over the second best
    clarify: float | None = None  # the score an entry needs to be offered in a clarification

    def __post_init__(self):
        for name in ("answer", "margin", "clarify"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} is negative: {value}")

    def over(self, defaults: Thresholds) -> Thresholds:
        """These thresholds, each one not set taken from `defaults`."""
        return Thresholds(*(getattr(defaults, name) if getattr(self, name) is None
                            else getattr(self, name)
                            for name in ("answer", "margin", "clarify")))


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

    def candidates_json(self) -> str:
        """json.dumps([c.as_dict() for c in self.candidates]), written directly: it is
        stored with every decision the FAQ took part in, and the encoder's general path
        cost twice as much."""
        return "[" + ", ".join(f'{{"faq_id": {_quoted(c.faq_id)}, "score": {round(c.score, 3)!r}}}'
                               for c in self.candidates) + "]"

    def as_dict(self) -> dict:
        """The match as stored with the decision and printed by `faq eval --json`."""
        return {"outcome": self.outcome.value, "faq_id": self.faq_id,
                "candidates": [c.as_dict() for c in self.candidates]}

    def describe(self) -> str:
        """One line for the decision's detail: 'answer refund-time 0.91 (next 0.70)'."""
        scores = ", ".join(f"{c.faq_id} {c.score:.2f}" for c in self.candidates)
        return f"{self.outcome.value}" + (f": {scores}" if scores else "")


@lru_cache(maxsize=4096)
def _quoted(faq_id: str) -> str:
    return json.dumps(faq_id)
