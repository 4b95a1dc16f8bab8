"""Business hours: wall-clock spans in a named zone, across DST changes, minus holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.autoreply.hours import BusinessHours, HolidayCalendar, Span, parse_span

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = (Span(time(9), time(17)),)


def week(weekdays=NINE_TO_FIVE, saturday=(), sunday=()):
    return (weekdays,) * 5 + (saturday, sunday)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


OFFICE = BusinessHours(zone=BERLIN, week=week())


@pytest.mark.parametrize(("now", "expected"), [
    # Winter (CET, UTC+1): 09:00-17:00 Berlin is 08:00-16:00 UTC.
    (utc(2026, 3, 27, 7, 59), False),  # Fri 08:59 CET
    (utc(2026, 3, 27, 8, 0), True),  # Fri 09:00 CET
    (utc(2026, 3, 27, 15, 59), True),  # Fri 16:59 CET
    (utc(2026, 3, 27, 16, 0), False),  # Fri 17:00 CET: the end is exclusive
    # Summer after the last Sunday of March (CEST, UTC+2): 07:00-15:00 UTC.
    (utc(2026, 3, 30, 7, 0), True),  # Mon 09:00 CEST (in winter this would be 08:00)
    (utc(2026, 3, 30, 6, 59), False),
    (utc(2026, 3, 30, 15, 0), False),  # Mon 17:00 CEST
    # Back to winter after the last Sunday of October.
    (utc(2026, 10, 23, 7, 30), True),  # Fri 09:30 CEST
    (utc(2026, 10, 26, 7, 30), False),  # Mon 08:30 CET
    (utc(2026, 10, 26, 8, 0), True),  # Mon 09:00 CET
    # The weekend is closed; a Saturday evening in UTC can be Sunday in Berlin.
    (utc(2026, 3, 28, 10, 0), False),
    (utc(2026, 6, 5, 22, 30), False),  # Sat 00:30 CEST although Friday in UTC
])
def test_berlin_office_across_dst(now, expected):
    """09:00-17:00 means Berlin's wall clock, in winter and in summer time."""
    assert OFFICE.is_open(now) is expected


NIGHT_SUNDAY = BusinessHours(zone=BERLIN, week=week(
    sunday=(Span(time(1), time(4)), Span(time(2, 30), time(3)))))


@pytest.mark.parametrize(("now", "expected"), [
    # Spring forward, Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    (utc(2026, 3, 29, 0, 30), True),  # 01:30 CET
    (utc(2026, 3, 29, 1, 30), True),  # 03:30 CEST (the hour 02:00-03:00 never happens)
    (utc(2026, 3, 29, 2, 0), False),  # 04:00 CEST: closed, after two hours open, not three
    # Fall back, Sunday 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:40 happens twice.
    (utc(2026, 10, 24, 23, 30), True),  # 01:30 CEST
    (utc(2026, 10, 25, 0, 40), True),  # 02:40 CEST
    (utc(2026, 10, 25, 1, 40), True),  # 02:40 CET, the second time
    (utc(2026, 10, 25, 2, 59), True),  # 03:59 CET: four hours open on this night
    (utc(2026, 10, 25, 3, 0), False),  # 04:00 CET
])
def test_wall_clock_on_dst_nights(now, expected):
    """Spans on the nights the clocks change follow the wall clock, as a person would."""
    assert NIGHT_SUNDAY.is_open(now) is expected


@pytest.mark.parametrize(("hours", "now", "expected"), [
    # Friday after closing: back on Monday, which is in summer time.
    (OFFICE, utc(2026, 3, 27, 17, 0), utc(2026, 3, 30, 7, 0)),
    # Friday after closing in October: back on Monday, now in winter time.
    (OFFICE, utc(2026, 10, 23, 16, 0), utc(2026, 10, 26, 8, 0)),
    # Early morning: later the same day.
    (OFFICE, utc(2026, 6, 10, 5, 0), utc(2026, 6, 10, 7, 0)),
    # While open, next_open is now.
    (OFFICE, utc(2026, 6, 10, 9, 0), utc(2026, 6, 10, 9, 0)),
    # Between two spans of one day: the second span.
    (BusinessHours(zone=BERLIN, week=week(weekdays=(Span(time(9), time(12)),
                                                    Span(time(13), time(17))))),
     utc(2026, 6, 10, 10, 30), utc(2026, 6, 10, 11, 0)),
    # An opening at 02:30 on the spring-forward night does not exist: it is 03:30 CEST.
    (BusinessHours(zone=BERLIN, week=week(weekdays=(), sunday=(Span(time(2, 30), None),))),
     utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 30)),
    # New York changes on the second Sunday of March, three weeks before Berlin.
    (BusinessHours(zone=NEW_YORK, week=week()), utc(2026, 3, 6, 23, 0), utc(2026, 3, 9, 13, 0)),
    (BusinessHours(zone=NEW_YORK, week=week()), utc(2026, 3, 5, 23, 0), utc(2026, 3, 6, 14, 0)),
])
def test_next_open(hours, now, expected):
    """next_open is the next opening moment, an aware datetime in the team's zone."""
    found = hours.next_open(now)
    assert found == expected
    assert found.tzinfo is hours.zone


@pytest.mark.parametrize(("hours", "now", "expected"), [
    # An explicit date: Christmas Eve 2026 is a Thursday.
    (BusinessHours(zone=BERLIN, week=week(), dates_closed=frozenset({date(2026, 12, 24)})),
     utc(2026, 12, 24, 10, 0), False),
    (BusinessHours(zone=BERLIN, week=week(), dates_closed=frozenset({date(2026, 12, 24)})),
     utc(2026, 12, 23, 10, 0), True),
    # The holiday is Berlin's date: 23:30 UTC on the 23rd is already the 24th there.
    (BusinessHours(zone=BERLIN, week=week(weekdays=(Span(time(0), None),)),
                   dates_closed=frozenset({date(2026, 12, 24)})),
     utc(2026, 12, 23, 23, 30), False),
    # Germany's calendar: Good Friday and Easter Monday 2026.
    (BusinessHours(zone=BERLIN, week=week(), calendar=HolidayCalendar("DE")),
     utc(2026, 4, 3, 10, 0), False),
    (BusinessHours(zone=BERLIN, week=week(), calendar=HolidayCalendar("DE")),
     utc(2026, 4, 6, 10, 0), False),
    (BusinessHours(zone=BERLIN, week=week(), calendar=HolidayCalendar("DE")),
     utc(2026, 4, 7, 10, 0), True),
    # A subdivision's own holiday: International Women's Day is a holiday in Berlin only
    # (2027-03-08 is a Monday).
    (BusinessHours(zone=BERLIN, week=week(), calendar=HolidayCalendar("DE", "BE")),
     utc(2027, 3, 8, 10, 0), False),
    (BusinessHours(zone=BERLIN, week=week(), calendar=HolidayCalendar("DE", "BY")),
     utc(2027, 3, 8, 10, 0), True),
    # The US calendar: Thanksgiving 2026.
    (BusinessHours(zone=NEW_YORK, week=week(), calendar=HolidayCalendar("US")),
     utc(2026, 11, 26, 16, 0), False),
])
def test_holidays_close_the_day(hours, now, expected):
    """Explicit dates and a country's calendar close whole days, in the team's zone."""
    assert hours.is_open(now) is expected


def test_next_open_skips_holidays():
    """After Maundy Thursday the team is back on the Tuesday after Easter Monday."""
    hours = BusinessHours(zone=BERLIN, week=week(), calendar=HolidayCalendar("DE"),
                          dates_closed=frozenset({date(2026, 4, 7)}))
    assert hours.next_open(utc(2026, 4, 2, 16, 0)) == utc(2026, 4, 8, 7, 0)


@pytest.mark.parametrize(("zone", "days", "start"), [
    (BERLIN, week(), utc(2026, 4, 2, 16, 0)),  # Maundy Thursday 18:00 to past Tuesday
    # Spans written out of order: the morning opens first all the same.
    (BERLIN, week(weekdays=(Span(time(14), time(18)), Span(time(9), time(12)))),
     utc(2026, 6, 8, 5, 0)),
    # An opening at 02:30 on New York's spring-forward night, which has no 02:30.
    (NEW_YORK, week(weekdays=(), sunday=(Span(time(2, 30), time(5)),)), utc(2024, 3, 10, 5, 0)),
], ids=["holidays", "spans out of order", "DST gap"])
def test_one_hours_object_answers_a_night_of_messages_like_a_fresh_one(zone, days, start):
    """What one message's next_open found serves the next ones, and one decision asking
    about the same moment again gets the same answers: those of an object that never
    answered before, in any order, up to the opening and past it."""
    calendar = HolidayCalendar("DE") if zone is BERLIN else None  # its own cache is not at issue
    remembering = BusinessHours(zone=zone, week=days, calendar=calendar)
    moments = [start + timedelta(minutes=13) * k for k in range(800)]  # a week, 13 min apart
    for now in moments + moments[::-1] + [m for m in moments for _ in (1, 2)]:
        fresh = BusinessHours(zone=zone, week=days, calendar=calendar)
        assert remembering.is_open(now) is fresh.is_open(now), now
        assert remembering.next_open(now) == fresh.next_open(now), now
        assert remembering.format(remembering.next_open(now)) == fresh.format(
            fresh.next_open(now)), now


def test_spans_out_of_order_open_at_the_first():
    hours = BusinessHours(zone=BERLIN, week=week(weekdays=(Span(time(14), time(18)),
                                                           Span(time(9), time(12)))))
    assert hours.next_open(utc(2026, 6, 8, 5, 0)) == utc(2026, 6, 8, 7, 0)  # Monday 09:00


def test_format_in_team_zone():
    """next_open reads in the team's zone with its own strftime format."""
    assert OFFICE.format(utc(2026, 3, 30, 7, 0)) == "Monday 30 March at 09:00 CEST"
    custom = BusinessHours(zone=BERLIN, week=week(), next_open_format="%d.%m. %H:%M")
    assert custom.format(utc(2026, 1, 5, 8, 0)) == "05.01. 09:00"
    assert OFFICE.format(None) == "soon"


def test_the_hour_clocks_go_back_is_told_apart():
    """01:30 EDT and 01:30 EST (New York, 1 November 2026) are an hour apart though their
    wall clocks match: asked one after the other, each reads as itself, not as the one
    remembered (open all Sunday, so next_open is the moment itself)."""
    hours = BusinessHours(zone=NEW_YORK, week=week(sunday=(Span(time(0), time(23, 59)),)))
    first, second = utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)
    assert hours.format(hours.next_open(first)) == "Sunday 01 November at 01:30 EDT"
    assert hours.format(hours.next_open(second)) == "Sunday 01 November at 01:30 EST"
    assert hours.next_open(second).timestamp() == second.timestamp()  # (== is False: PEP 495)


@pytest.mark.parametrize(("text", "expected"), [
    ("09:00-17:00", Span(time(9), time(17))),
    (" 9:00 - 17:30 ", None),  # hours need two digits
    ("22:00-24:00", Span(time(22), None)),
    ("00:00-24:00", Span(time(0), None)),
])
def test_parse_span(text, expected):
    """A span is HH:MM-HH:MM on one day; 24:00 ends the day."""
    if expected is None:
        with pytest.raises(ValueError):
            parse_span(text)
    else:
        assert parse_span(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("17:00-09:00", "bad time range"),
    ("09:00-09:00", "bad time range"),
    ("22:00-02:00", "past midnight"),
    ("9-5", "expected a time range"),
    ("25:00-26:00", "expected a time range"),
    ("09:00", "expected a time range"),
    ("09:00-10:00-11:00", "expected a time range"),
    ("09:00:30-10:00", "hours and minutes"),
    ("09:00Z-17:00Z", "without an offset"),  # once passed, then every decision failed
    ("09:00+0100-17:00", "without an offset"),  # once a TypeError at start-up
    ("09:00-17:00+02:00", "without an offset"),
])
def test_parse_span_refuses(text, message):
    """A range that ends before it starts, or is not HH:MM-HH:MM, is an error that says so."""
    with pytest.raises(ValueError, match=message):
        parse_span(text)


def test_unknown_calendar():
    """An unknown country or subdivision fails when the calendar is made, not on first use."""
    with pytest.raises(NotImplementedError):
        HolidayCalendar("XX")
    with pytest.raises(NotImplementedError):
        HolidayCalendar("DE", "ZZ")
