"""Statistics over a period, and delivered versus failed per hour, from indexed ranges:
replies by `created_at`, decisions by `received_at`, per-hour counts by their hour. A
period of a day costs a range scan of that day's rows, whatever the table holds."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Float, func, literal_column, select, type_coerce

from ..store.models import HourlyCount, ProcessedEvent, Reply
from ..twilio.error_codes import describe
from .counters import DUPLICATES, SIGNATURE_FAILURES, hour_of
from .status import FAILURES, OUTCOME, OUTCOMES

REPLIES = Reply.__table__
EVENTS = ProcessedEvent.__table__
COUNTS = HourlyCount.__table__
PERCENTILES = (50, 90, 99)
LATENCY_SAMPLE = 100_000  # sent replies whose latency a period's percentiles use at most



def period(conn: Connection, since: datetime, until: datetime) -> dict:
    """Everything an operator asks about a period: replies by outcome (status.py),
    failures by code
    (with meaning), reply latency percentiles, decisions by reason, duplicates dropped
    and signature failures."""
    in_period = (REPLIES.c.created_at >= since, REPLIES.c.created_at < until)
    outcomes = dict(conn.execute(select(OUTCOME, func.count()).where(*in_period)
                                 .group_by(OUTCOME)).all())
    code = func.coalesce(REPLIES.c.error_code, REPLIES.c.delivery_error_code)
    failed = OUTCOME.in_(FAILURES)
    by_code = conn.execute(select(code, func.count()).where(*in_period, failed)
                           .group_by(code).order_by(func.count().desc())).all()
    reasons = conn.execute(
        select(EVENTS.c.reason, func.count())
        .where(EVENTS.c.received_at >= since, EVENTS.c.received_at < until,
               EVENTS.c.reason.is_not(None))
        .group_by(EVENTS.c.reason).order_by(func.count().desc())).all()
    counts = dict(conn.execute(
        select(COUNTS.c.name, func.sum(COUNTS.c.count))
        .where(COUNTS.c.hour >= hour_of(since), COUNTS.c.hour < until)
        .group_by(COUNTS.c.name)).all())
    return {
        "since": since, "until": until,
        "replies": {name: outcomes.get(name, 0) for name in OUTCOMES},
        "failures_by_code": [{"code": c, "count": n, "meaning": describe(c)}
                             for c, n in by_code],
        "reply_latency_seconds": latency(conn, since, until),
        "decisions_by_reason": {reason: n for reason, n in reasons},
        "duplicates_dropped": int(counts.get(DUPLICATES) or 0),
        "signature_failures": int(counts.get(SIGNATURE_FAILURES) or 0),
    }


def events_by_kind(conn: Connection, since: datetime,
                   until: datetime | None = None) -> dict[str | None, int]:
    """Webhooks processed since `since` (and before `until`) by their outcome's kind
    (REPLY_QUEUED, IGNORED, RECEIPT, ...; None for rows stored before kinds were
    recorded)."""
    query = select(EVENTS.c.outcome_kind, func.count()).where(EVENTS.c.received_at >= since)
    if until is not None:
        query = query.where(EVENTS.c.received_at < until)
    return dict(conn.execute(query.group_by(EVENTS.c.outcome_kind)).all())


def latency(conn: Connection, since: datetime, until: datetime) -> dict:
    """Seconds from the message's webhook (the reply queued) to Twilio accepting the
    reply, for replies sent in the period: percentiles, nearest rank (SQLite: of at most
    LATENCY_SAMPLE replies)."""
    seconds = _seconds_between(conn.dialect.name, REPLIES.c.created_at, REPLIES.c.sent_at)
    sent = (REPLIES.c.sent_at >= since, REPLIES.c.sent_at < until)
    if conn.dialect.name == "postgresql":  # computed where the rows are
        row = conn.execute(select(func.count(), *(
            func.percentile_disc(p / 100).within_group(seconds) for p in PERCENTILES))
            .where(*sent)).one()
        return {"count": row[0], **{f"p{p}": None if v is None else round(float(v), 3)
                                    for p, v in zip(PERCENTILES, row[1:], strict=True)}}
    values = sorted(conn.execute(select(seconds).where(*sent).limit(LATENCY_SAMPLE)).scalars())
    result = {"count": len(values)}
    for p in PERCENTILES:
        result[f"p{p}"] = (round(values[min(len(values) - 1, len(values) * p // 100)], 3)
                           if values else None)
    return result


def hourly(conn: Connection, hours: int, now: datetime) -> list[dict]:
    """Replies created in each of the last `hours` hours, by outcome, oldest first."""
    start = hour_of(now) - timedelta(hours=hours - 1)
    bucket = _hour(conn.dialect.name, REPLIES.c.created_at)
    rows = conn.execute(select(bucket, OUTCOME, func.count())
                        .where(REPLIES.c.created_at >= start)
                        .group_by(bucket, OUTCOME)).all()
    counts: dict[str, dict[str, int]] = {}
    for hour, outcome, n in rows:
        counts.setdefault(str(hour)[:13], {})[outcome] = n
    series = []
    for i in range(hours):
        hour = start + timedelta(hours=i)
        got = counts.get(hour.strftime("%Y-%m-%d %H"), {})
        series.append({"hour": hour, "delivered": got.get("delivered", 0),
                       "failed": got.get("failed", 0) + got.get("undelivered", 0),
                       "other": got.get("sent", 0) + got.get("queued", 0)
                       + got.get("dry_run", 0)})
    return series


def _hour(dialect_name: str, column):
    if dialect_name == "postgresql":
        return func.to_char(column, literal_column("'YYYY-MM-DD HH24'"))
    return func.strftime(literal_column("'%Y-%m-%d %H'"), column)


def _seconds_between(dialect_name: str, start, end):
    if dialect_name == "postgresql":
        return type_coerce(func.extract("epoch", end - start), Float)
    return type_coerce((func.julianday(end) - func.julianday(start)) * 86400.0, Float)
