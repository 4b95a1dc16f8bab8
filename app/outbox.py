"""Outbox: replies recorded in the event's transaction, claimed and settled by senders.

Claiming is one atomic step per batch: `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL (each sender gets different rows, nobody waits), and on SQLite the
transaction itself holds the only write lock (BEGIN IMMEDIATE, see db.py). A claimed
row is `sending` with a lease in `next_attempt_at`; a sender that dies loses the lease
and the row is taken over once it has expired.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from .models import Reply, utcnow

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"


@dataclass(frozen=True)
class Claimed:
    """A reply a sender now holds: everything needed to send it, detached from the DB."""

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
        return json.dumps({"autoReply": True, "inReplyTo": self.in_reply_to})


def queue_reply(session: Session, *, conversation_sid: str, in_reply_to: str,
                author: str, body: str) -> None:
    """Record a reply to send after the transaction commits."""
    session.execute(insert(Reply).values(
        conversation_sid=conversation_sid, in_reply_to=in_reply_to, author=author,
        body=body, status=QUEUED, attempts=0, next_attempt_at=utcnow(),
        created_at=utcnow(),
    ))


def claim_due(session: Session, limit: int, lease_seconds: float) -> list[Claimed]:
    """Take up to `limit` replies that are due (or whose holder's lease ran out)."""
    now = utcnow()
    rows = session.execute(
        select(Reply.id, Reply.conversation_sid, Reply.author, Reply.body,
               Reply.in_reply_to, Reply.attempts)
        .where(Reply.status.in_((QUEUED, SENDING)), Reply.next_attempt_at <= now)
        .order_by(Reply.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    session.execute(
        update(Reply)
        .where(Reply.id.in_([r.id for r in rows]))
        .values(status=SENDING, attempts=Reply.attempts + 1,
                next_attempt_at=now + timedelta(seconds=lease_seconds))
    )
    return [
        Claimed(r.id, r.conversation_sid, r.author, r.body, r.in_reply_to,
                attempt=r.attempts + 1)
        for r in rows
    ]


def _settle(session: Session, claimed: Claimed, **values) -> bool:
    """Update a reply only if this sender still holds it; return whether it did."""
    result = session.execute(
        update(Reply)
        .where(Reply.id == claimed.id, Reply.status == SENDING,
               Reply.attempts == claimed.attempt)
        .values(**values)
    )
    return result.rowcount == 1


def mark_sent(session: Session, claimed: Claimed, message_sid: str) -> bool:
    return _settle(session, claimed, status=SENT, twilio_message_sid=message_sid,
                   sent_at=utcnow(), error_code=None, error_message=None)


def mark_retry(session: Session, claimed: Claimed, delay: float,
               code: int | None, message: str) -> bool:
    return _settle(session, claimed, status=QUEUED, error_code=code,
                   error_message=message[:2000],
                   next_attempt_at=utcnow() + timedelta(seconds=delay))


def mark_failed(session: Session, claimed: Claimed, code: int | None, message: str) -> bool:
    return _settle(session, claimed, status=FAILED, error_code=code,
                   error_message=message[:2000])


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(cap, base * (2 ** min(attempt, 30))))


def requeue_failed(session: Session, reply_id: int | None = None) -> int:
    """Queue failed replies (one, or all) for sending again; return how many."""
    stmt = update(Reply).where(Reply.status == FAILED)
    if reply_id is not None:
        stmt = stmt.where(Reply.id == reply_id)
    result = session.execute(stmt.values(status=QUEUED, attempts=0, next_attempt_at=utcnow()))
    return result.rowcount


def next_due_at(session: Session) -> datetime | None:
    """When the earliest queued or leased reply becomes due."""
    return session.execute(
        select(func.min(Reply.next_attempt_at))
        .where(or_(Reply.status == QUEUED, Reply.status == SENDING))
    ).scalar()
