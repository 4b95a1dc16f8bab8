"""Replies as an operator looks for them: by status and time, failures grouped by
Twilio's error code (meaning, usual fix), and the queue (depth, oldest, sending pace)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, or_, select

from ..delivery import registry
from ..store import clock
from ..store.models import Reply, ReplyStatus, utcnow
from ..twilio.error_codes import describe, fix
from .conversations import attach_receipts, reply_record

REPLIES = Reply.__table__
PENDING = (ReplyStatus.QUEUED.value, ReplyStatus.SENDING.value)
DELIVERY_PROBLEMS = ("failed", "undelivered")
# What `search` filters by, the API's and the dashboard's choices alike: a reply's
# status, and its delivery (a receipt's status, or `problem` for either failure).
STATUSES = tuple(s.value for s in ReplyStatus)
DELIVERIES = ("sent", "delivered", "read", "failed", "undelivered", "problem")
# A reply that went wrong: Twilio refused it, or a participant's receipt failed.
WENT_WRONG = or_(REPLIES.c.status == ReplyStatus.FAILED,
                 REPLIES.c.delivery_status.in_(DELIVERY_PROBLEMS))


def search(conn: Connection, *, status: str | None = None, delivery: str | None = None,
           since: datetime | None = None, until: datetime | None = None,
           limit: int = 50, before_id: int | None = None) -> dict:
    """Replies newest first, filtered by status (STATUSES), delivery status (DELIVERIES:
    sent, delivered, read, failed, undelivered, or `problem` for either failure) and
    creation time; `next` is the `before_id` of the following page."""
    query = select(REPLIES).order_by(REPLIES.c.id.desc()).limit(limit + 1)
    if status:
        query = query.where(REPLIES.c.status == status)
    if delivery == "problem":
        query = query.where(REPLIES.c.delivery_status.in_(DELIVERY_PROBLEMS))
    elif delivery:
        query = query.where(REPLIES.c.delivery_status == delivery)
    if since is not None:
        query = query.where(REPLIES.c.created_at >= since)
    if until is not None:
        query = query.where(REPLIES.c.created_at < until)
    if before_id is not None:
        query = query.where(REPLIES.c.id < before_id)
    rows = conn.execute(query).all()
    replies = [reply_record(r) for r in rows[:limit]]
    attach_receipts(conn, replies)
    return {"replies": replies, "next": rows[limit - 1].id if len(rows) > limit else None}


def by_status(conn: Connection) -> dict[str, int]:
    """How many replies are in each status (those with none left out)."""
    return dict(conn.execute(select(REPLIES.c.status, func.count())
                             .group_by(REPLIES.c.status)).all())


def failures(conn: Connection, since: datetime, per_code: int = 20) -> list[dict]:
    """Replies that failed (Twilio refused them) or were not delivered (a receipt said
    failed or undelivered) since `since`, grouped by error code, most frequent first;
    each group with the code's meaning and usual fix and its newest replies."""
    code = func.coalesce(REPLIES.c.error_code, REPLIES.c.delivery_error_code)
    recent = and_(REPLIES.c.created_at >= since, WENT_WRONG)
    groups = conn.execute(select(code.label("code"), func.count().label("n"))
                          .where(recent).group_by(code).order_by(func.count().desc())).all()
    result = []
    for group in groups:
        rows = conn.execute(select(REPLIES).where(
            recent, code.is_(None) if group.code is None else code == group.code)
            .order_by(REPLIES.c.id.desc()).limit(per_code)).all()
        replies = [reply_record(r) for r in rows]
        attach_receipts(conn, replies)
        result.append({"code": group.code, "count": group.n, "meaning": describe(group.code),
                       "fix": fix(group.code), "replies": replies})
    return result


def queue(conn: Connection, lease_seconds: int) -> dict:
    """The reply queue: how many wait (queued or sending), since when, and how fast the
    live senders go (their adaptive limits, calls in flight, replies sent last minute)."""
    # One status per query: an equality is a range of ix_replies_due (an IN over both
    # made SQLite scan the table).
    depth, oldest = 0, None
    for status in PENDING:
        count, first = conn.execute(select(func.count(), func.min(REPLIES.c.created_at))
                                    .where(REPLIES.c.status == status)).one()
        depth += count
        oldest = min(filter(None, (oldest, first)), default=None)
    due = conn.execute(select(func.count()).where(
        REPLIES.c.status == ReplyStatus.QUEUED,
        REPLIES.c.next_attempt_at <= clock.now(conn.dialect.name))).scalar()
    live = registry.live(conn, stale=lease_seconds)
    now = utcnow()
    sent_last_minute = conn.execute(select(func.count()).where(
        REPLIES.c.sent_at >= now - timedelta(minutes=1))).scalar()
    return {
        "depth": depth, "due": due, "oldest_pending_at": oldest,
        "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else None,
        "senders": len(live), "concurrency": sum(s.concurrency for s in live),
        "in_flight": sum(s.in_flight for s in live),
        "sent_last_minute": sent_last_minute,
    }
