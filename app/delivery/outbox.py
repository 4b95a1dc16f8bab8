"""Outbox: replies recorded in the event's transaction, leased and settled by senders.

Leasing is one atomic step per batch: `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL (each sender gets different rows, nobody waits), and on SQLite the
transaction itself holds the only write lock (BEGIN IMMEDIATE, see store/database.py).
A leased row is `sending` with the lease's end in `next_attempt_at`; a sender that dies
loses the lease and the row is taken over once it has expired. (An *event* is claimed,
once and for all; a *reply* is leased, for a while.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, bindparam, insert, select, update

from ..store.models import Reply, ReplyStatus, utcnow
from . import marker

QUEUED, SENDING, SENT, FAILED = (ReplyStatus.QUEUED, ReplyStatus.SENDING, ReplyStatus.SENT,
                                 ReplyStatus.FAILED)


@dataclass(frozen=True)
class LeasedReply:
    """A reply a sender holds under a lease: everything needed to send it, detached
    from the database."""

    id: int
    conversation_sid: str
    author: str
    body: str
    in_reply_to: str
    attempt: int

    @property
    def may_exist(self) -> bool:
        """Whether Twilio may already hold this reply: an earlier attempt timed out, got
        a 5xx, or its sender died after sending. Look before sending again."""
        return self.attempt > 1

    @property
    def attributes(self) -> str:
        """Message attributes that mark the reply as ours (loop guard, crash recovery)."""
        return marker.reply_attributes(self.in_reply_to)


_QUEUE = insert(Reply.__table__)


def queue_reply(conn: Connection, *, conversation_sid: str, in_reply_to: str,
                author: str, body: str) -> None:
    """Record a reply to send after the transaction commits."""
    now = utcnow()
    conn.execute(_QUEUE, {
        "conversation_sid": conversation_sid, "in_reply_to": in_reply_to, "author": author,
        "body": body, "status": QUEUED, "attempts": 0, "next_attempt_at": now,
        "created_at": now,
    })


REPLIES = Reply.__table__


def _due(status: str):
    # One status per query: then (status, next_attempt_at) is an index range already in
    # order, and LIMIT stops early however long the backlog (an IN over both statuses
    # would sort every queued row on each claim).
    return (
        select(REPLIES.c.id, REPLIES.c.conversation_sid, REPLIES.c.author, REPLIES.c.body,
               REPLIES.c.in_reply_to, REPLIES.c.attempts)
        .where(REPLIES.c.status == status, REPLIES.c.next_attempt_at <= bindparam("now"))
        .order_by(REPLIES.c.next_attempt_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


_DUE_QUEUED = _due(QUEUED)
_DUE_EXPIRED = _due(SENDING)  # a lease that ran out: its sender is gone
_TAKE = (
    update(REPLIES)
    .where(REPLIES.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=SENDING, attempts=REPLIES.c.attempts + 1,
            next_attempt_at=bindparam("lease_until"))
)
# Settle a reply only if this sender still holds it (same status and attempt).
_HELD = (REPLIES.c.id == bindparam("reply_id"), REPLIES.c.status == SENDING,
         REPLIES.c.attempts == bindparam("attempt"))
_SENT = update(REPLIES).where(*_HELD).values(
    status=SENT, twilio_message_sid=bindparam("message_sid"), sent_at=bindparam("now"),
    error_code=None, error_message=None)
_RETRY = update(REPLIES).where(*_HELD).values(
    status=QUEUED, error_code=bindparam("code"), error_message=bindparam("message"),
    next_attempt_at=bindparam("due"))
_FAILED = update(REPLIES).where(*_HELD).values(
    status=FAILED, error_code=bindparam("code"), error_message=bindparam("message"))


def lease_due(conn: Connection, limit: int, lease_seconds: float,
              *, expired: bool = True) -> list[LeasedReply]:
    """Take up to `limit` replies that are due, and (with `expired`) those whose
    holder's lease ran out. Leases run out rarely: a busy sender looks for them once
    per poll, not on every lease."""
    now = utcnow()
    rows = conn.execute(_DUE_EXPIRED, {"now": now, "limit": limit}).all() if expired else []
    if len(rows) < limit:
        rows += conn.execute(_DUE_QUEUED, {"now": now, "limit": limit - len(rows)}).all()
    if not rows:
        return []
    conn.execute(_TAKE, {"ids": [r.id for r in rows],
                         "lease_until": now + timedelta(seconds=lease_seconds)})
    return [
        LeasedReply(r.id, r.conversation_sid, r.author, r.body, r.in_reply_to,
                    attempt=r.attempts + 1)
        for r in rows
    ]


def _settle(conn: Connection, statement, leased: LeasedReply, **values) -> bool:
    """Run a settling update; return whether this sender still held the reply."""
    params = {"reply_id": leased.id, "attempt": leased.attempt, **values}
    return conn.execute(statement, params).rowcount == 1


def mark_sent(conn: Connection, leased: LeasedReply, message_sid: str) -> bool:
    return _settle(conn, _SENT, leased, message_sid=message_sid, now=utcnow())


def mark_retry(conn: Connection, leased: LeasedReply, delay: float,
               code: int | None, message: str) -> bool:
    return _settle(conn, _RETRY, leased, code=code, message=message[:2000],
                   due=utcnow() + timedelta(seconds=delay))


def mark_failed(conn: Connection, leased: LeasedReply, code: int | None, message: str) -> bool:
    return _settle(conn, _FAILED, leased, code=code, message=message[:2000])


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(cap, base * (2 ** min(attempt, 30))))


def requeue_failed(conn: Connection, reply_id: int | None = None) -> int:
    """Queue failed replies (one, or all) for sending again; return how many."""
    stmt = update(Reply).where(Reply.status == FAILED)
    if reply_id is not None:
        stmt = stmt.where(Reply.id == reply_id)
    result = conn.execute(stmt.values(status=QUEUED, attempts=0, next_attempt_at=utcnow()))
    return result.rowcount
