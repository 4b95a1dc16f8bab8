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

import numpy as np

from .entries import Entry
from .models import DEFAULT, MODELS
from .outcome import Candidate, Match, Outcome, Thresholds
from .scoring import Index

MAX_OFFERED = 3  # "did you mean" offers at most this many entries
BEST_FEW = 3  # candidates kept with an answer or a decline, for the record


DECLINED = Match(Outcome.DECLINE)
DEFAULTS = Thresholds()  # the model's own


class KnowledgeBase:
    """FAQ entries, indexed once; `match` is pure and safe to call from many threads."""

    def __init__(self, entries: tuple[Entry, ...] | list[Entry], model: str = DEFAULT,
                 embedder=None):
        if model not in MODELS:
            raise ValueError(f"unknown FAQ model {model!r} (one of: {', '.join(MODELS)})")
        self.model = MODELS[model]
        self.entries = tuple(entries)
        ids = [entry.id for entry in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("two entries share an id")
        self.by_id = {entry.id: entry for entry in self.entries}
        self.index = Index(self.entries, self.model, embedder)
        # The policy's thresholds over the model's, resolved once: a webhook's match would
        # otherwise build and check a Thresholds (~25,000 instructions) every time.
        self._resolved = (DEFAULTS, DEFAULTS.over(self.model.defaults))

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
              thresholds: Thresholds = DEFAULTS) -> Match:
        """Answer, clarify or decline (the module docstring says when)."""
        given, resolved = self._resolved  # one tuple: consistent whatever the threads do
        if given is not thresholds:
            resolved = thresholds.over(self.model.defaults)
            self._resolved = (thresholds, resolved)
        thresholds = resolved
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
