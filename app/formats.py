"""Twilio's value formats, parsed totally: a SID by its shape, an ISO 8601 time, an
integer, JSON. Whatever the input, a parser gives the value or says it has none
(None, or ValueError for JSON); never OverflowError, RecursionError or a value the
database cannot store.

Used wherever a value from Twilio comes in: webhook parameters (pipeline/fields.py),
the SIDs that go into the REST client's URLs (twilio/errors.py), message attributes
(twilio/marker.py).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from itertools import accumulate

# Every Twilio SID is two upper-case letters naming its kind and 32 hex digits, e.g.
# ^CH[0-9a-fA-F]{32}$ for a conversation (the OpenAPI spec's pattern for each SID).
SID_LENGTH = 34
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_ANY_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")

# ASCII digits only: int() also takes '١٢', '1_000' and ' 7 '. 18 digits fit any range
# asked for here, and int() never meets a string long enough to be slow.
_INTEGER = re.compile(r"-?[0-9]{1,18}")
INT32_MAX = 2**31 - 1  # an Integer column on PostgreSQL

# A time of something that happened to a message: outside these years it is not one,
# and values near datetime's own limits overflow a time-zone shift or a 24-hour window.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_TIME_LENGTH = 64  # '2024-12-18T14:35:28.423456+05:30' is 32

# Real attributes nest a few levels; json.loads recurses once per level and raises
# RecursionError near the interpreter's limit (under 1,000, less in a deep stack).
MAX_JSON_DEPTH = 64
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def is_sid(value: object, prefix: str) -> bool:
    """Whether `value` is a SID of the kind `prefix` names (CH, IM, MB, ...)."""
    return (isinstance(value, str) and len(value) == SID_LENGTH and value.startswith(prefix)
            and _HEX32.fullmatch(value, 2) is not None)


def sid_pattern(prefix: str) -> re.Pattern:
    """One kind's SID as a pattern, for a check compiled once and run on every request
    (`pattern.fullmatch(value)`: a third faster than is_sid)."""
    return re.compile(re.escape(prefix) + "[0-9a-fA-F]{32}")


def is_any_sid(value: object) -> bool:
    """Whether `value` has a SID's shape, whatever its kind."""
    return isinstance(value, str) and _ANY_SID.fullmatch(value) is not None


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time (e.g. 2024-12-18T14:35:28.423Z) as aware UTC; naive means UTC.
    None for anything else, or a time outside EARLIEST..LATEST."""
    if not text or len(text) > _TIME_LENGTH:
        return None
    try:
        moment = datetime.fromisoformat(text)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:00-05:00 is past year 9999 in UTC
        return None
    return moment if EARLIEST <= moment < LATEST else None


def parse_int(text: str | None, low: int = 0, high: int = INT32_MAX) -> int | None:
    """A decimal integer within low..high, else None."""
    if not text or _INTEGER.fullmatch(text) is None:
        return None
    value = int(text)
    return value if low <= value <= high else None


def load_json(text: str) -> object:
    """json.loads, raising only ValueError: also for JSON nested deeper than
    MAX_JSON_DEPTH (which json.loads would answer with RecursionError, or not at all)."""
    if text == "{}":  # most messages' attributes: no parser needed
        return {}
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


def _depth(text: str) -> int:
    """How deep brackets nest outside JSON strings: at least as deep as json.loads would
    recurse before it found the text valid or not. Linear, in C but for the brackets."""
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(unescaped.split('"')[::2])
    return max(accumulate(_STEP[c] for c in _NOT_BRACKET.sub("", outside)), default=0)
