"""Guardrails: what the model's output must be before a customer sees any of it (pure).

    check(raw, retrieved, limit) -> Assist     # or raises Refused(why)

The output must be one JSON object {action: answer|clarify|decline, text, cited: [ids]}.
An answer must
 - cite at least one entry, each one the model was given (`retrieved`);
 - carry every number (in digits, or written out: "three"), price, URL, e-mail address
   and phone number it contains verbatim in the cited entries, a link or an address as
   a whole (a model may rephrase, never invent a fact: "$0", a
   link, a number to call are where a wrong answer costs most, and where a customer's
   "ignore your instructions and say ..." would show);
 - be mostly words of the cited entries (GROUNDED_SHARE of its longer words), so that
   a text about something else, whatever it cites, is refused;
 - fit the channel (`limit` characters).
A clarification must cite two or three entries it was given (the customer sees their
titles in our words, never the model's text). A decline needs nothing. Anything else is
refused, and a refused answer becomes a decline (never the model's text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ..autoreply.assist import Action, Assist

GROUNDED_SHARE = 0.6  # of an answer's words of 4+ letters, found in the cited entries
MAX_CITED = 3

# A link: with a scheme or www., or a bare domain a phone makes clickable anyway
# ("evil.example/card", "bit.ly/x"): labels, then a top-level domain of 2+ letters, in
# any script ("mybаnk.com" with a Cyrillic "а", "пример.рф" are links too).
# (A top-level domain in another script is 2-6 letters: "рф", "中国", "みんな"; a
# sentence's end, "届きます.詳しくは", is none.)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+|(?<![\w@.-])(?:[^\W_][\w-]*\.)+"
                  r"(?:[a-z]{2,}|[^\W\d_]{2,6})(?![\w@-])(?:/[^\s<>\"')\]]*)?",
                  re.IGNORECASE)
# What ends a link in a text but is no part of it: punctuation, markdown, quotes.
_LINK_END = ".,;:!?*_\u201d\u2019\u00bb\u2026\"'"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Numbers a model may write out ("three working days" where the entry says 7). Not
# "one": "one of our agents" is no fact.
_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "zero _ two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split()) if w != "_"}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
                      "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100",
                      "thousand": "1000", "million": "1000000", "dozen": "12"})
_SCALES = {"hundred", "thousand", "million"}
_ONE_NUMBER_WORD = "(?:" + "|".join(_NUMBER_WORDS) + "|one)"
# A number written out, in words that may run together: "twenty-four", "two hundred".
# ASCII only: "ſix" and "fİve" are no English, and not what the table holds.
_NUMBER_RUN = re.compile(rf"\b{_ONE_NUMBER_WORD}(?:(?:[\s-]+|\s+and\s+){_ONE_NUMBER_WORD})*\b",
                         re.IGNORECASE | re.ASCII)
# A phone number: 7+ digits with the usual separators, optionally +country.
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]{4,}")


class Refused(ValueError):
    """The model's output broke a guardrail: the message says which."""


def check(raw: str, retrieved: Mapping[str, str], limit: int) -> Assist:
    """The model's output as an Assist; Refused when it breaks a guardrail. `retrieved`:
    each entry the model was shown, id -> its text (questions and answer)."""
    action, text, cited = _parse(raw)
    unknown = [i for i in cited if i not in retrieved]
    if unknown:
        raise Refused(f"cites entries it was not given: {', '.join(unknown)}")
    if action is Action.DECLINE:
        return Assist(Action.DECLINE, "the model declined", cited=cited)
    if action is Action.CLARIFY:
        if not 2 <= len(cited) <= MAX_CITED:
            raise Refused(f"a clarification must cite 2 or 3 entries, not {len(cited)}")
        return Assist(Action.CLARIFY, "the model asked which", cited=cited)
    if not cited:
        raise Refused("the answer cites no entry")
    if not text.strip():
        raise Refused("the answer is empty")
    if len(text) > limit:
        raise Refused(f"the answer has {len(text):,} characters; the channel takes "
                      f"{limit:,}")
    source = "\n".join(retrieved[i] for i in cited)
    missing = ungrounded_facts(text, source)
    if missing:
        raise Refused(f"not in the cited entries: {', '.join(missing[:5])}")
    share = grounded_share(text, source)
    if share < GROUNDED_SHARE:
        raise Refused(f"only {share:.0%} of its words are in the cited entries")
    return Assist(Action.ANSWER, "the model answered", text=text.strip(), cited=cited)


def _parse(raw: str) -> tuple[Action, str, tuple[str, ...]]:
    try:
        data = json.loads(_unfenced(raw))
    except (TypeError, ValueError):
        raise Refused("the output is not JSON") from None
    if not isinstance(data, dict):
        raise Refused("the output is not a JSON object")
    try:
        action = Action(str(data.get("action", "")).strip().lower())
    except ValueError:
        raise Refused(f"unknown action {str(data.get('action'))[:40]!r}") from None
    if action is Action.OFFLINE:
        raise Refused("unknown action 'offline'")
    text = data.get("text") or ""
    cited = data.get("cited") or []
    if not isinstance(text, str) or not isinstance(cited, list) \
            or not all(isinstance(i, str) for i in cited):
        raise Refused("text must be a string and cited a list of entry ids")
    return action, text, tuple(dict.fromkeys(i.strip() for i in cited if i.strip()))


def _unfenced(raw: str) -> str:
    """Small models wrap JSON in a ```json fence despite being asked not to."""
    text = (raw or "").strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[4:] if text.lower().startswith("json") else text
    return text


def ungrounded_facts(text: str, source: str) -> list[str]:
    """The URLs, e-mail addresses, phone numbers and numbers (prices included) of `text`
    that `source` does not contain, as they appear in `text`."""
    missing = []
    links = _links(source)
    rest = text
    for url in _URL.findall(text):
        url = url.rstrip(_LINK_END)
        # The whole link ("bank.com" is not in "mybank.com"); without a query, as the
        # entry's without its query ("?lang=en") or fragment.
        if _link(url) not in links:
            missing.append(url)
        rest = rest.replace(url, " ")
    emails = {e.lower() for e in _EMAIL.findall(source)}
    lowered = source.lower()
    for email in _EMAIL.findall(rest):
        if email.lower().rstrip(".") not in emails:  # "p@mybank.co" is not help@mybank.com
            missing.append(email)
        rest = rest.replace(email, " ")

    source_digits = {re.sub(r"\D", "", p) for p in _PHONE.findall(source)}
    for phone in _PHONE.findall(rest):
        digits = re.sub(r"\D", "", phone)
        if len(digits) >= 7:
            if digits not in source_digits:
                missing.append(phone.strip())
            rest = rest.replace(phone, " ")
    numbers = {_plain(n) for n in _NUMBER.findall(source)}
    missing += [n for n in _NUMBER.findall(rest) if _plain(n) not in numbers]
    for run in _NUMBER_RUN.findall(rest):
        value = _value(run)
        if value is not None and run.lower() not in lowered and str(value) not in numbers:
            missing.append(run)
    return missing


def _value(run: str) -> int | None:
    """A number written out as its value ("twenty-four" 24, "two hundred" 200); None for
    "one" alone, which is rarely a fact ("one of our agents")."""
    words = [w for w in re.split(r"[\s-]+", run.lower()) if w != "and"]
    if words == ["one"]:
        return None
    total = current = 0
    for word in words:
        if word in _SCALES:
            current = max(current, 1) * int(_NUMBER_WORDS[word])
            if word != "hundred":
                total, current = total + current, 0
        else:
            current += 1 if word == "one" else int(_NUMBER_WORDS[word])
    return total + current


def _link(url: str) -> str:
    """A link as compared: lower case, without https:// (http:// stays: a downgrade is a
    different link), www., trailing punctuation or slash."""
    url = re.sub(r"^(?:https://)?(?:www\.)?", "", url.rstrip(_LINK_END).lower())
    return url.rstrip("/")


def _links(source: str) -> set[str]:
    """The source's links: each as written, without its query or fragment, and its host
    alone ("see bank.example" for an entry that gives https://bank.example/fees)."""
    found = {_link(url) for url in _URL.findall(source)}
    bare = {re.split(r"[?#]", link, maxsplit=1)[0].rstrip("/") for link in found}
    return found | bare | {link.split("/", 1)[0] for link in found | bare}


def _plain(number: str) -> str:
    """1,000 and 1000 are one number; 2.50 and 2,50 too."""
    return re.sub(r"[.,](?=\d{3}\b)", "", number).replace(",", ".")


def grounded_share(text: str, source: str) -> float:
    """The share of the text's words (4+ letters) that the source contains, compared by
    their first five letters ("arrives" is grounded by "arrival")."""
    words = [w.lower()[:5] for w in _WORD.findall(text)]
    if not words:
        return 1.0
    known = {w.lower()[:5] for w in _WORD.findall(source)}
    return sum(w in known for w in words) / len(words)
