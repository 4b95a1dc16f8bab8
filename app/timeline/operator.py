"""What an operator asks for, the same from the API and the dashboard: a period in
plain words, and a failed reply sent again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from config import is_duration, parse_duration

from ..delivery import outbox
from ..logs import kv
from ..store.database import Database
from ..store.models import Reply, utcnow

log = logging.getLogger(__name__)
MAX_PERIOD = timedelta(days=366)
REPLIES = Reply.__table__


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


class NotRequeueable(Exception):
    """The reply does not exist, or it did not fail (only failed replies go again)."""


class NoSuchReply(NotRequeueable):
    """The reply does not exist (or was pruned)."""


def requeue(db: Database, reply_id: int, *, by: str, wake=None) -> None:
    """Queue a failed reply for a new round of attempts (the first looks for it at
    Twilio before sending); raise NotRequeueable with the reason otherwise."""
    with db.transaction() as conn:
        if outbox.requeue_failed(conn, reply_id) == 0:
            status = conn.execute(select(REPLIES.c.status)
                                  .where(REPLIES.c.id == reply_id)).scalar()
            if status is None:
                raise NoSuchReply(f"reply {reply_id} does not exist")
            raise NotRequeueable(f"reply {reply_id} is {status}, not failed: nothing to requeue")
    log.info("reply requeued %s", kv(reply_id=reply_id, by=by))
    if wake is not None:
        wake()
