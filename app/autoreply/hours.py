"""Business hours: whether the team is in, and when it is back, in the team's own time zone.

Opening ranges are wall-clock times per weekday in a named `zoneinfo` zone, so they follow
daylight saving time: "09:00-17:00" in Europe/Berlin is 08:00-16:00 UTC in winter and
07:00-15:00 UTC in summer. A range cannot cross midnight (write 22:00-24:00 and 00:00-02:00
on the next day). A holiday, an explicit date or one of a country's public holidays from the
`holidays` package, closes the whole day.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from operator import attrgetter
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# How far ahead next_open looks: a year of holidays and closed weekdays is plenty.
_HORIZON_DAYS = 400
_DEFAULT_FORMAT = "%A %d %B at %H:%M %Z"


@dataclass(frozen=True)
class Span:
    """One opening range on a weekday, wall clock; `end` may be 24:00 (end of the day)."""

    start: time
    end: time | None  # None: midnight at the end of the day (24:00)

    def contains(self, moment: time) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{'24:00' if self.end is None else f'{self.end:%H:%M}'}"


def parse_span(text: str) -> Span:
    """Parse '09:00-17:30' (end may be '24:00'); ValueError says what is wrong."""
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start = time.fromisoformat(start_text)
        end = None if end_text == "24:00" else time.fromisoformat(end_text)
    except ValueError:
        raise ValueError(f"expected a time range like 09:00-17:00, got {text!r}") from None
    if start.tzinfo is not None or (end is not None and end.tzinfo is not None):
        raise ValueError(f"times are the wall clock of [hours]'s timezone, without an offset "
                         f"or Z, got {text!r}")
    if start.second or start.microsecond or (end and (end.second or end.microsecond)):
        raise ValueError(f"times are hours and minutes (HH:MM), got {text!r}")
    if end is not None and end <= start:
        raise ValueError(
            f"bad time range {text!r}: the end must be after the start on the same day "
            f"(split a range past midnight over two days, ending the first at 24:00)")
    return Span(start, end)


class HolidayCalendar:
    """A country's public holidays, computed per year on first use (thread-safe)."""

    def __init__(self, country: str, subdivision: str | None = None):
        self.country = country
        self.subdivision = subdivision
        self._years: dict[int, frozenset[date]] = {}
        self._lock = threading.Lock()
        # An unknown country or subdivision raises NotImplementedError here, at load time.
        holiday_calendars.country_holidays(country, subdiv=subdivision)

    def _dates(self, year: int) -> frozenset[date]:
        with self._lock:
            if year not in self._years:
                calendar = holiday_calendars.country_holidays(
                    self.country, subdiv=self.subdivision, years=year)
                self._years[year] = frozenset(calendar)
            return self._years[year]

    def __contains__(self, day: date) -> bool:
        return day in self._dates(day.year)

    def __repr__(self) -> str:
        sub = f"-{self.subdivision}" if self.subdivision else ""
        return f"HolidayCalendar({self.country}{sub})"


def _same(a: datetime, b: datetime) -> bool:
    """The same instant: `==` alone calls two datetimes of one zone equal when their wall
    clocks are (01:30 EDT and 01:30 EST on the night clocks go back), fold ignored."""
    return a == b and a.utcoffset() == b.utcoffset()


@dataclass(frozen=True)
class BusinessHours:
    """When the team answers: weekly wall-clock spans in `zone`, minus holidays."""

    zone: ZoneInfo
    week: tuple[tuple[Span, ...], ...]  # seven entries, Monday first; () is a closed day
    dates_closed: frozenset[date] = frozenset()
    calendar: HolidayCalendar | None = field(default=None, compare=False)
    next_open_format: str = _DEFAULT_FORMAT  # strftime, in `zone`
    # (since, opening): the last next_open found while closed. For a closed `now` between
    # the two, the first opening after it is that one too (no span starts in between):
    # every message of a closed night asks the same question; one walk answers them all.
    _closed: list = field(default_factory=lambda: [None], compare=False, repr=False)
    # The last moment each of is_open, next_open and format was asked about, with its
    # answer: one decision asks about the same `now` up to three times (the rules' `when`,
    # the after-hours detail, the template's next_open). A tuple swapped whole: threads
    # see one pair or another, never half of each.
    _last: list = field(default_factory=lambda: [None, None, None], compare=False,
                        repr=False)

    def __post_init__(self):  # each day's spans in time order: the first found is the first
        object.__setattr__(self, "week", tuple(tuple(sorted(spans, key=attrgetter("start")))
                                               for spans in self.week))

    def is_holiday(self, day: date) -> bool:
        return day in self.dates_closed or (self.calendar is not None and day in self.calendar)

    def is_open(self, now: datetime) -> bool:
        """Whether `now` (aware) falls in an opening span on a working day, local time."""
        last = self._last[0]
        if last is not None and _same(last[0], now):
            return last[1]
        local = now.astimezone(self.zone)
        if self.is_holiday(local.date()):
            found = False
        else:
            moment = local.time().replace(tzinfo=None)
            found = any(span.contains(moment) for span in self.week[local.weekday()])
        self._last[0] = (now, found)
        return found

    def next_open(self, now: datetime) -> datetime | None:
        """The first moment at or after `now` when the team is in (aware, in `zone`).

        None if no opening within the horizon (every day closed or a holiday).
        """
        last = self._last[1]
        if last is not None and _same(last[0], now):
            return last[1]
        found = self._next_open(now)
        self._last[1] = (now, found)
        return found

    def _next_open(self, now: datetime) -> datetime | None:
        if self.is_open(now):
            return now.astimezone(self.zone)
        known = self._closed[0]
        if known is not None and known[0] <= now < known[1]:
            return known[1]
        local = now.astimezone(self.zone)
        for offset in range(_HORIZON_DAYS):
            day = local.date() + timedelta(days=offset)
            if self.is_holiday(day):
                continue
            for span in self.week[day.weekday()]:
                opening = _wall(day, span.start, self.zone)
                if opening > local:
                    self._closed[0] = (now, opening)  # closed from now until then
                    return opening
        return None

    def format(self, moment: datetime | None) -> str:
        """A moment as the templates' `next_open` shows it, in the team's zone."""
        if moment is None:
            return "soon"
        last = self._last[2]
        if last is not None and _same(last[0], moment):
            return last[1]
        text = moment.astimezone(self.zone).strftime(self.next_open_format)
        self._last[2] = (moment, text)
        return text

    def describe(self) -> str:
        """One line per weekday, for `rules check`."""
        days = [f"{name[:3]} {' '.join(map(str, spans)) or 'closed'}"
                for name, spans in zip(WEEKDAYS, self.week, strict=True)]
        return f"{self.zone.key}: " + ", ".join(days)


def _wall(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a day in `zone`, aware; a time skipped by DST moves forward.

    zoneinfo reads a skipped time (02:30 on the spring-forward night) with the offset
    before the change; the round trip through UTC turns it into the real instant (03:30).
    """
    naive = datetime.combine(day, moment, tzinfo=zone)
    return naive.astimezone(ZoneInfo("UTC")).astimezone(zone)
