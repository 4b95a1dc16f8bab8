"""Compliance keywords: the opt-out, opt-in and help words the bot must never answer.

Twilio and the carriers answer these on SMS themselves (Twilio's Advanced Opt-Out), and a
reply after STOP fails with error 21610 or breaks messaging rules. A message counts as a
keyword only when it *is* one, ignoring case, surrounding whitespace and punctuation
("Stop!", " stop. "); a sentence that merely contains one ("please don't stop") is an
ordinary message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

# Twilio's default opt-out, opt-in and help keywords (support.twilio.com, "Advanced Opt-Out").
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
COMPLIANCE = OPT_OUT | OPT_IN | HELP
# The compliance words after which the customer still expects an answer to what they
# asked before (Twilio answers these themselves); every other one (STOP, and a rules
# file's own words) ends what the bot was about to say.
STILL_LISTENING = OPT_IN | HELP

# What brings an opted-out customer back: Twilio's opt-in words, and YES (which Twilio
# also accepts as an opt-in reply). YES alone is not a compliance keyword: from a customer
# who never opted out it is an ordinary message.
OPT_BACK_IN = OPT_IN | {"YES"}

# A letter or digit. Everything else at either end (punctuation, spaces, emoji) is cut.
# Found from each end with a forward search, never as `[\W_]+$`: tried from every
# character of a long run of spaces, that one took quadratic time (10 s for 32,000).
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The form keywords are compared in: edges stripped, spaces collapsed, upper case."""
    first = _LETTER_OR_DIGIT.search(text)
    if first is None:
        return ""
    last = _LETTER_OR_DIGIT.search(text[::-1])
    return _SPACES.sub(" ", text[first.start():len(text) - last.start()]).upper()


def keyword_in(body: str, words: Iterable[str]) -> str | None:
    """The keyword the whole message is (upper case), or None when it is not one of `words`."""
    word = normalize(body)
    return word if word and word in _normalized(frozenset(words)) else None


def opts_out(body: str, words: Iterable[str]) -> bool:
    """STOP, or another of `words` (the compliance keywords in force) but HELP, INFO,
    START or UNSTOP, after which the customer still listens."""
    return bool(keyword_in(body, words)) and not keyword_in(body, STILL_LISTENING)


@cache
def _normalized(words: frozenset[str]) -> frozenset[str]:
    return frozenset(normalize(w) for w in words)
