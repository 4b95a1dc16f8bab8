"""The FAQ's step in a decision: an answer, a clarification, a number picked, or a decline.

    choose(body, channel, offered, knowledge, thresholds) -> Found

Pure, like the rest of the decision. A clarification offers two or three entries by
number; the conversation keeps their ids (ConversationState.offered) until the bot says
something else, an agent writes, it hands off or the customer opts out or in
(pipeline/faq_log.py), so a reply that picks one ("2", "2)", "#2", "２", "2️⃣", "two",
"the second one", "option 2 please", "ok 2") gets its answer, also after a "thanks" the
bot stayed silent to. Any other message is matched afresh.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..knowledge import Candidate, Match, Outcome, Thresholds
from .templates import ReplySpec

if TYPE_CHECKING:  # built only from a rules file with an FAQ (numpy, the embedding)
    from ..knowledge import KnowledgeBase

CLARIFY = "faq:clarify"  # the decision's rule for a clarification
MAX_TITLE = 200  # characters of an entry's title in a clarification (3 x 200 < an SMS)
# A pick is a short message whose only word, besides a few fillers, names a number.
MAX_PICK_LENGTH = 40
MAX_OPTION = 9  # a larger number after a clarification is something else (an order number)
MAX_BURST_LINES = 5  # of a burst the FAQ cannot answer whole, the lines matched one by one
_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_NUMBERS = {"one": 1, "two": 2, "three": 3, "first": 1, "second": 2, "third": 3,
            "1st": 1, "2nd": 2, "3rd": 3}
_FILLERS = frozenset("""
please pls plz option options number nr num the it s is choice answer i want take pick
ok okay k yes yeah yep yup sure thanks thank you thx ty cheers great perfect
""".split())


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
           thresholds: Thresholds, by_message: bool = False) -> Found:
    """`by_message`: `body` is a burst (a line per message) that may be answered by one of
    its messages when it declines whole (_answered_line)."""
    picked = _picked(body, offered, knowledge)
    if picked is not None:
        entry, number = picked
        match = Match(Outcome.ANSWER, entry, tuple(Candidate(i, 0.0) for i in offered))
        return Found(match, rule_name(entry.id),
                     f"FAQ {entry.id!r} (option {number} of the clarification)", entry.answer)
    again = _offered_again(body, offered, knowledge)
    if again is not None:
        return again
    match, whose = knowledge.match(body, channel, thresholds), ""
    if match.outcome is Outcome.DECLINE and by_message:
        line = _answered_line(body, channel, knowledge, thresholds)
        if line is not None:
            match, whose = line, "; one of the burst's messages"
    if match.outcome is Outcome.ANSWER:
        return Found(match, rule_name(match.entry.id),
                     f"FAQ {match.entry.id!r} ({match.describe()}{whose})", match.entry.answer)
    if match.outcome is Outcome.CLARIFY:
        titles = [knowledge.get(c.faq_id).title for c in match.candidates]
        return Found(match, CLARIFY, f"FAQ {match.describe()}", text=clarification(titles))
    return Found(match)


def _answered_line(body: str, channel: str, knowledge: KnowledgeBase,
                   thresholds: Thresholds) -> Match | None:
    """A burst (AUTO_REPLY_DEBOUNCE: its messages, a line each) whose whole text matches
    no entry clearly, often two questions at once ("How much is shipping?" then "Do you
    take PayPal?"): the newest of its last MAX_BURST_LINES lines that alone gets a clear
    answer, as it would have without the wait. None if none does."""
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    for line in reversed(lines[-MAX_BURST_LINES:]):
        match = knowledge.match(line, channel, thresholds)
        if match.outcome is Outcome.ANSWER:
            return match
    return None


def _offered_again(body: str, offered: tuple[str, ...], knowledge: KnowledgeBase):
    """A number the clarification did not offer ("3" of two, "0"): the same question
    again, rather than matching "3" afresh (which answers nothing, often in silence)."""
    number = picked_number(body) if offered else None
    entries = [knowledge.get(i) for i in offered]
    if number is None or 1 <= number <= len(offered) or number > MAX_OPTION \
            or None in entries:
        return None  # a pick, no number, or one too large to be meant as an option
    match = Match(Outcome.CLARIFY, None, tuple(Candidate(i, 0.0) for i in offered))
    return Found(match, CLARIFY, f"FAQ clarification again ({number} was not an option)",
                 text=clarification([entry.title for entry in entries]))


def clarification(titles: list[str]) -> str:
    """ "Did you mean: 1) ... 2) ...? Reply with a number.", each title cut to fit, so that
    three of them stay within an SMS (titles are the entries' first questions)."""
    options = " ".join(f"{n}) {_short(title.rstrip('?.! '))}"
                       for n, title in enumerate(titles, 1))
    return f"Did you mean: {options}? Reply with a number."


def _short(title: str) -> str:
    return title if len(title) <= MAX_TITLE else title[:MAX_TITLE - 1].rstrip() + "\u2026"


def picks(body: str, offered: tuple[str, ...], knowledge: KnowledgeBase) -> bool:
    """Whether the message answers the last clarification with a number: an entry it
    offered ("2"), or one it did not ("3" of two: asked again). No model is consulted."""
    return (_picked(body, offered, knowledge) is not None
            or _offered_again(body, offered, knowledge) is not None)


def _picked(body: str, offered: tuple[str, ...], knowledge: KnowledgeBase):
    """(entry, number) when the message is a number the last clarification offered."""
    if not offered:
        return None
    number = picked_number(body)
    if number is None or not 1 <= number <= len(offered):
        return None
    entry = knowledge.get(offered[number - 1])
    return (entry, number) if entry is not None else None


def _only_fillers(line: str) -> bool:
    words = _TOKEN.findall(unicodedata.normalize("NFKC", line).casefold())
    return all(word in _FILLERS for word in words)


def _number(token: str) -> int | None:
    """A token's value as an option's number: decimal digits in any script ("2", "٢"),
    one digit that is not decimal ("⓶", "፪": isdigit() says yes, int() refuses it), or a
    number word or ordinal."""
    if token.isdecimal():
        return int(token)
    if len(token) == 1:
        return unicodedata.digit(token, None)
    return _NUMBERS.get(token)


def picked_number(body: str) -> int | None:
    """The option a reply to "Did you mean: 1) ... 2) ...?" names, if it names one:
    digits in any script or as a keycap emoji, a number word or an ordinal ("two", "the
    second one"), with punctuation and a few fillers around it ("option 2 please", "ok
    2", "2, thank you"); in a burst, its last message that is not only such fillers.
    Nothing else is."""
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) > 1:  # a burst, a line per message: its last one that says more than
        said = [line for line in lines if not _only_fillers(line)]  # "ok" or "thanks"
        return picked_number(said[-1]) if said else None  # "2" then "thanks": 2
    if len(body) > MAX_PICK_LENGTH or body.lstrip().startswith("-"):
        return None  # "-1" is not option 1
    text = unicodedata.normalize("NFKC", body).casefold()
    words = _TOKEN.findall(text)
    tokens = [t for t in words if t not in _FILLERS]
    if len(tokens) > 1 and tokens[-1] == "one" and tokens[0] in _NUMBERS:
        tokens.pop()  # "the second one"
    elif tokens == ["one"] and len(words) > 1:
        return None  # "the one", "i want one": which one?
    if len(tokens) > 1 and tokens[0].isdecimal() and tokens[1] in ("st", "nd", "rd"):
        tokens = [tokens[0] + tokens[1]]  # NFKC's "2nd" stays one token; "2 nd" too
    values = {_number(t) for t in tokens}
    if len(values) != 1 or None in values:
        return None
    return values.pop()
