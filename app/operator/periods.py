"""A period as an operator writes it: '24h' (that long ago) or an ISO 8601 time; the
API's and the dashboard's `since`/`until`, checked the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from config import is_duration, parse_duration

from ..store.models import utcnow

MAX_PERIOD = timedelta(days=366)


def moment(text: str, now: datetime) -> datetime:
    """'24h' (that long ago), or an ISO 8601 time (UTC unless it says otherwise), as the
    database stores times: naive UTC. ValueError names what was wrong."""
    text = text.strip()
    if is_duration(text):
        return now - timedelta(seconds=parse_duration(text))  # at most 100 years back
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        raise ValueError(f"expected a duration like 24h or 7d, or an ISO 8601 time, "
                         f"got {text[:40]!r}") from None
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is in year 0 once in UTC
        raise ValueError(f"{text[:40]!r} is out of range once in UTC") from None
    return parsed


def period(since: str | None, until: str | None, default: str = "24h") -> tuple[datetime, datetime]:
    """The period [since, until) an operator asked for; ValueError when it is not one."""
    now = utcnow()
    start = _named("since", since or default, now)
    end = _named("until", until, now) if until else now
    if start >= end:
        raise ValueError("since must be before until")
    if end - start > MAX_PERIOD:
        raise ValueError("a period is at most 366 days")
    return start, end


def _named(name: str, text: str, now: datetime) -> datetime:
    try:
        return moment(text, now)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
