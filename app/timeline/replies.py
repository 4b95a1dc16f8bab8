"""Replies as an operator looks for them: by status and time, failures grouped by
Twilio's error code (meaning, usual fix), and the queue (depth, oldest, sending pace)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, func, literal_column, select

from ..delivery import registry
from ..store import clock
from ..store.models import Reply, ReplyStatus, utcnow
from ..twilio.error_codes import describe, fix
from .conversations import attach_receipts, reply_record
from .status import DELIVERY_PROBLEMS, OUTCOME, WENT_WRONG, requeueable
from .status import OUTCOMES as STATUS_OUTCOMES

REPLIES = Reply.__table__
PENDING = (ReplyStatus.QUEUED.value, ReplyStatus.SENDING.value)
WENT_WRONG_NAME = "went_wrong"  # the `outcome` filter for failed or undelivered
# What `search` filters by, the API's and the dashboard's choices alike: a reply's
# status, its delivery (a receipt's status, or `problem` for either failure), and its
# one outcome (status.OUTCOMES, or `went_wrong`).
STATUSES = tuple(s.value for s in ReplyStatus)
DELIVERIES = ("sent", "delivered", "read", "failed", "undelivered", "problem")
OUTCOMES = (*STATUS_OUTCOMES, WENT_WRONG_NAME)


def search(conn: Connection, *, status: str | None = None, delivery: str | None = None,
           outcome: str | None = None, since: datetime | None = None,
           until: datetime | None = None, limit: int = 50,
           before_id: int | None = None) -> dict:
    """Replies newest first, filtered by status (STATUSES), delivery status (DELIVERIES),
    outcome (OUTCOMES: `went_wrong` is failed or undelivered, as the Failures page and
    `replies failed` count them) and creation time; `next` is the `before_id` of the
    following page."""
    query = select(REPLIES).order_by(REPLIES.c.id.desc()).limit(limit + 1)
    if status:
        query = query.where(REPLIES.c.status == status)
    if outcome == WENT_WRONG_NAME:
        query = query.where(WENT_WRONG)
    elif outcome:
        query = query.where(OUTCOME == outcome)
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


def by_outcome(conn: Connection) -> dict[str, int]:
    """How many replies have each outcome (status.OUTCOMES; those with none left out):
    the meaning the dashboard, the API and `why` give a reply."""
    return dict(conn.execute(select(OUTCOME, func.count()).group_by(OUTCOME)).all())


def failures(conn: Connection, since: datetime, per_code: int = 20) -> list[dict]:
    """Replies that failed (Twilio refused them) or were not delivered (a receipt said
    failed or undelivered) since `since`, grouped by error code: first the groups an
    operator can act on (replies a requeue may get out), then by count; each group with
    the code's meaning and usual fix, its newest replies and their conversations."""
    code = func.coalesce(REPLIES.c.error_code, REPLIES.c.delivery_error_code)
    recent = and_(REPLIES.c.created_at >= since, WENT_WRONG)
    failed = func.sum(case((REPLIES.c.status == ReplyStatus.FAILED, 1), else_=0))
    groups = conn.execute(select(code.label("code"), func.count().label("n"),
                                 failed.label("failed"))
                          .where(recent).group_by(code)).all()
    result = []
    for group in groups:
        rows = conn.execute(select(REPLIES).where(
            recent, code.is_(None) if group.code is None else code == group.code)
            .order_by(REPLIES.c.id.desc()).limit(per_code)).all()
        replies = [reply_record(r) for r in rows]
        attach_receipts(conn, replies)
        refused = int(group.failed or 0)  # by Twilio; the rest were not delivered
        can_requeue = refused if requeueable("failed", group.code) else 0
        result.append({"code": group.code, "count": group.n, "meaning": describe(group.code),
                       "fix": fix(group.code), "requeueable": can_requeue,
                       "refused": refused, "undelivered": group.n - refused,
                       "conversations": [{"conversation_sid": sid, "customer": customer}
                                         for sid, customer in dict.fromkeys(
                                             (r["conversation_sid"], r["customer"])
                                             for r in replies)],
                       "replies": replies})
    result.sort(key=lambda g: (g["requeueable"] == 0, -g["count"], g["code"] or 0))
    return result


def _rare(conn: Connection, condition):
    """A condition few rows meet, said so to SQLite's planner (likelihood())."""
    if conn.dialect.name == "sqlite":
        return func.likelihood(condition, literal_column("0.001"))
    return condition


def queue(conn: Connection, lease_seconds: int) -> dict:
    """The reply queue: how many wait (queued or sending), since when, and how fast the
    live senders go (their adaptive limits, calls in flight, replies sent last minute)."""
    # One status per query: an equality is a range of ix_replies_due (an IN over both
    # made SQLite scan the table). SQLite's statistics see two statuses in a table of
    # sent replies and would scan the covering ix_replies_created: told it is rare.
    depth, oldest = 0, None
    for status in PENDING:
        count, first = conn.execute(select(func.count(), func.min(REPLIES.c.created_at))
                                    .where(_rare(conn, REPLIES.c.status == status))).one()
        depth += count
        oldest = min(filter(None, (oldest, first)), default=None)
    due = conn.execute(select(func.count()).where(
        REPLIES.c.status == ReplyStatus.QUEUED,
        REPLIES.c.next_attempt_at <= clock.now(conn.dialect.name))).scalar()
    live = registry.live(conn, stale=lease_seconds)
    now = utcnow()
    sent_last_minute = conn.execute(select(func.count()).where(  # dry runs were not sent
        REPLIES.c.sent_at >= now - timedelta(minutes=1), REPLIES.c.dry_run.is_(False))).scalar()
    return {
        "depth": depth, "due": due, "oldest_pending_at": oldest,
        "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else None,
        "senders": len(live), "concurrency": sum(s.concurrency for s in live),
        "in_flight": sum(s.in_flight for s in live),
        "sent_last_minute": sent_last_minute,
    }
