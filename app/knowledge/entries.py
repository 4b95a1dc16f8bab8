"""A knowledge-base entry: the ways customers ask one question, and its answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}")  # fits the decision's rule column


@dataclass(frozen=True)
class Entry:
    """One FAQ entry. `answer` is opaque here: the rules' ReplySpec, rendered by the caller."""

    id: str
    questions: tuple[str, ...]  # one or more phrasings, as customers ask it
    answer: object = field(compare=False, repr=False)
    keywords: tuple[re.Pattern[str], ...] = ()  # all must appear (whole words) to answer
    channels: frozenset[str] | None = None  # None: every channel

    def applies(self, text: str, channel: str) -> bool:
        """Whether this entry may answer `text` on `channel` (its channels, its keywords)."""
        if self.channels is not None and channel not in self.channels:
            return False
        return all(keyword.search(text) for keyword in self.keywords)

    @property
    def title(self) -> str:
        """How the entry is offered when the bot asks "did you mean": its first question."""
        return self.questions[0]
