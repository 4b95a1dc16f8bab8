"""Formats: every parser is total; a value it cannot vouch for is None (JSON: ValueError),
never OverflowError, RecursionError or something the database cannot store."""

from datetime import UTC, datetime

import pytest

from app import formats

HEX = "0123456789abcdef" * 2


@pytest.mark.parametrize("value, prefix, ok", [
    ("CH" + HEX, "CH", True),
    ("CH" + HEX.upper(), "CH", True),
    ("IM" + HEX, "CH", False),  # another kind
    ("ch" + HEX, "CH", False),
    ("CH" + HEX[:-1], "CH", False),
    ("CH" + HEX + "0", "CH", False),
    ("CH" + HEX[:-1] + "g", "CH", False),
    ("CH" + HEX[:-1] + "\u0661", "CH", False),  # an Arabic-Indic digit
    ("CH" + HEX + "/../../Services", "CH", False),
    ("CH" + HEX[:-2] + "?x", "CH", False),
    ("CH" + HEX[:-1] + "\n", "CH", False),  # `$` would let a final newline through
    ("", "CH", False),
    (None, "CH", False),
    (12345, "CH", False),  # an API answer's field may be anything
])
def test_sid_shape(value, prefix, ok):
    """A SID is its kind's two letters and exactly 32 hex digits, nothing around them."""
    assert formats.is_sid(value, prefix) is ok


def test_any_sid_takes_any_kind_but_only_the_shape():
    assert formats.is_any_sid("WA" + HEX) and formats.is_any_sid("SM" + HEX)
    assert not formats.is_any_sid("wa" + HEX) and not formats.is_any_sid("SM" + HEX + "/x")


@pytest.mark.parametrize("text, expected", [
    ("2024-12-18T14:35:28.423Z", datetime(2024, 12, 18, 14, 35, 28, 423000, tzinfo=UTC)),
    ("2024-12-18T14:35:28+05:00", datetime(2024, 12, 18, 9, 35, 28, tzinfo=UTC)),
    ("2024-12-18T14:35:28", datetime(2024, 12, 18, 14, 35, 28, tzinfo=UTC)),  # naive: UTC
    ("9999-12-31T23:59:59-05:00", None),  # past year 9999 once in UTC: OverflowError
    ("0001-01-01T00:00:00+05:00", None),  # before year 1 once in UTC: OverflowError
    ("9999-12-31T23:59:59.999999+00:00", None),  # in range for Python, not a real time
    ("1969-12-31T23:59:59Z", None),
    ("2999-12-31T23:00:00-05:00", None),  # the year 3000 in UTC
    ("2024-02-30T00:00:00Z", None),
    ("2024-12-18T14:35:28+24:00", None),
    ("yesterday", None),
    ("2" * 10_000, None),
    ("", None),
    (None, None),
])
def test_parse_time(text, expected):
    """ISO 8601 as aware UTC, or None: out-of-range after the zone shift is None too."""
    assert formats.parse_time(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("8", 8), ("2147483647", 2**31 - 1),
    ("2147483648", None),  # past PostgreSQL's integer
    ("99999999999999999999", None), ("9" * 5000, None),  # int() would refuse past 4300
    ("-1", None), ("3.5", None), ("1e3", None), ("1_000", None), (" 7 ", None),
    ("\u0661\u0662", None), ("\u00b2", None), ("", None), (None, None),
])
def test_parse_int(text, expected):
    """ASCII decimal within 0..2**31-1 by default, else None."""
    assert formats.parse_int(text) == expected


def test_parse_int_takes_a_range():
    assert formats.parse_int("-5", low=-10, high=10) == -5
    assert formats.parse_int("11", low=-10, high=10) is None


@pytest.mark.parametrize("depth", [975, 5_000, 100_000])
def test_deep_json_is_a_value_error_not_a_recursion_error(depth):
    """Attributes nested 975 levels (under 2 KB) blew json.loads' recursion limit."""
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                 "[" * depth):
        with pytest.raises(ValueError):
            formats.load_json(text)


@pytest.mark.parametrize("text, expected", [
    ('{"autoReply": true}', {"autoReply": True}),
    ('["[[[[" , "{{{{"]', ["[[[[", "{{{{"]),  # brackets in strings do not count
    ('"' + "[" * 500 + '"', "[" * 500),
    ('["\\"[[[[[", 1]', ['"[[[[[', 1]),  # an escaped quote does not end the string
    ("[" + ",".join(["[]"] * 500) + "]", [[]] * 500),  # wide, not deep
])
def test_shallow_json_loads_whatever_its_brackets(text, expected):
    assert formats.load_json(text) == expected


def test_depth_counts_past_escaped_backslashes():
    """`\\\\"` is an escaped backslash, then the string's end: brackets after it count."""
    deep = formats.MAX_JSON_DEPTH + 1
    with pytest.raises(ValueError):
        formats.load_json('["\\\\", ' + "[" * deep + "]" * deep + "]")


def test_sid_pattern_agrees_with_is_sid():
    pattern = formats.sid_pattern("CH")
    for value in ("CH" + HEX, "CH" + HEX.upper(), "CH" + HEX + "\n", "IM" + HEX, "CH" + HEX[:-1]):
        assert bool(pattern.fullmatch(value)) is formats.is_sid(value, "CH")
