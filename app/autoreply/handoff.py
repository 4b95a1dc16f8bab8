"""Handoff: a customer asks for a person (or the bot cannot answer), the bot says so once
and stays silent until an agent writes.

    handoff = Handoff.build(phrases, message, on_decline=False)
    handoff.asked("can I talk to a human?")  -> "human"

A phrase matches as whole words anywhere in the message, ignoring case and how the words
are spaced ("Talk  to a HUMAN please" asks for "talk to a human"). The message is sent as
it is written (no template): it is the one reply every customer who asks gets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULE = "handoff"  # the decision's rule name when the bot hands off
MAX_SCANNED = 4_096  # like the rules: phrases are looked for in the first 4,096 characters


@dataclass(frozen=True)
class Handoff:
    phrases: tuple[str, ...]  # what a customer says to ask for a person
    message: str  # what the bot says, once, when it hands off
    on_decline: bool = False  # hand off instead of the fallback/greeting when it cannot answer
    _pattern: re.Pattern | None = None

    @classmethod
    def build(cls, phrases, message: str, *, on_decline: bool = False) -> Handoff:
        """A handoff from settings values; ValueError for an empty message."""
        if not message.strip():
            raise ValueError("the handoff message is empty")
        words = tuple(p.strip() for p in phrases if p.strip())
        pattern = None
        if words:
            alternatives = "|".join(
                r"\s+".join(re.escape(w) for w in phrase.split()) for phrase in words)
            pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        return cls(words, message.strip(), on_decline, pattern)

    def asked(self, body: str) -> str | None:
        """The phrase the message asks for a person with (lower case), or None."""
        if self._pattern is None:
            return None
        found = self._pattern.search(body[:MAX_SCANNED])
        return " ".join(found.group(0).lower().split()) if found else None
