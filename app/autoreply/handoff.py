"""Handoff: a customer asks for a person (or the bot cannot answer), the bot says so once
and stays silent until an agent writes.

    handoff = Handoff.build(phrases, message, on_decline=False)
    handoff.asked("can I talk to a human?")  -> "human"

A phrase of several words matches as whole words anywhere in the message, ignoring case
and how the words are spaced ("Talk  to a HUMAN please" asks for "talk to a human"). A
phrase of one word matches only when it is what the message says, give or take a few
words of asking ("agent", "Human please!", "I want an agent", "talk to human"): inside a
sentence one word is too often about something else ("my travel agent booked it", "which
mobile operator?", "is this a human or a bot?"). The message is sent as it is written (no
template): it is the one reply every customer who asks gets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULE = "handoff"  # the decision's rule name when the bot hands off
MAX_SCANNED = 4_096  # like the rules: phrases are looked for in the first 4,096 characters
MAX_ASKING_WORDS = 4  # a one-word phrase asks only in a message this short
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
# A negation at most three words before a phrase, in the same clause: "I don't want to
# talk to a human", "I do not need an agent", "can't talk to a human right now" do not
# ask; "no, I want a human" and "not sure, can I talk to a human?" do (a comma or a full
# stop ends what the negation says), and so do questions ("why can't I talk to a human?",
# "no I want a human": a negation followed by I, we or you).
_NEGATION = re.compile(
    r"(?<![\w'])(?:no|not|never|without|nobody|(?:do|does|did|ca|could|wo|would|should|"
    r"is|are|was)n'?t|cannot)(?!\s+(?:i|we|you)\b)(?:\s+[\w']+){0,3}\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Handoff:
    phrases: tuple[str, ...]  # what a customer says to ask for a person
    message: str  # what the bot says, once, when it hands off
    on_decline: bool = False  # hand off instead of the fallback/greeting when it cannot answer
    _pattern: re.Pattern | None = None  # the phrases of several words
    _alone: frozenset[str] = frozenset()  # the one-word phrases, lower case

    @classmethod
    def build(cls, phrases, message: str, *, on_decline: bool = False) -> Handoff:
        """A handoff from settings values; ValueError for an empty message."""
        if not message.strip():
            raise ValueError("the handoff message is empty")
        words = tuple(p.strip() for p in phrases if p.strip())
        several = [phrase for phrase in words if len(phrase.split()) > 1]
        pattern = None
        if several:
            alternatives = "|".join(
                r"\s+".join(re.escape(w) for w in phrase.split()) for phrase in several)
            pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        alone = frozenset(p.lower() for p in words if len(p.split()) == 1)
        return cls(words, message.strip(), on_decline, pattern, alone)

    def asked(self, body: str) -> str | None:
        """The phrase the message asks for a person with (lower case), or None."""
        text = body[:MAX_SCANNED]
        if self._pattern is not None:
            for found in self._pattern.finditer(text):
                if not _negated(text[:found.start()]):
                    return " ".join(found.group(0).lower().split())
        if self._alone:  # each line: a burst's messages are one text, a line each
            for line in text.splitlines():
                said = _WORD.findall(line.casefold())
                if len(said) <= MAX_ASKING_WORDS:
                    for at, word in enumerate(said):
                        if word in self._alone and not _negated(" ".join(said[:at])):
                            return word
        return None


def _negated(before: str) -> bool:
    """Whether the words just before a phrase say the customer does not want it ("I
    don't need a human", "no agent")."""
    return bool(_NEGATION.search(before[-60:].replace("\u2019", "'")))
