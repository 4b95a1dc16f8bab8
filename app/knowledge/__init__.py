"""Answers from a knowledge base: FAQ entries matched offline, with a bound on wrong answers.

    kb = KnowledgeBase(entries)                    # once, at start-up (autoreply/compiler.py builds it)
    match = kb.match(text, channel)                # per message: pure, no network, no clock
    match.outcome     # Outcome.ANSWER | CLARIFY | DECLINE
    match.entry       # the entry answered with (ANSWER), else None
    match.candidates  # (Candidate(faq_id, score), ...): offered (CLARIFY), else the best few
    kb.retrieve(text, channel, k)                  # the best k entries, whatever the outcome

`entries.py` the entry (questions, keywords, channels, and an opaque answer the caller
renders), `matcher.py` the knowledge base and its three outcomes, `scoring.py` the hybrid
score (BM25, a static embedding, typo tolerance), `embedding.py` the embedding model
memory-mapped from its pip package, `sources.py` entries from CSV or Markdown,
`evaluation.py` the `faq eval` measure. No Flask, no database: the layer below autoreply.
"""

from .entries import Entry
from .outcome import Candidate, Match, Outcome, Thresholds


def __getattr__(name: str):
    """The knowledge base itself (numpy, bm25s, the embedding) on first use: only a rules
    file with an FAQ builds one, and a worker without it should not carry them."""
    if name == "KnowledgeBase":
        from .matcher import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Candidate", "Entry", "KnowledgeBase", "Match", "Outcome", "Thresholds"]
