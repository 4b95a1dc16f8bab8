"""Pending compositions: the customer messages a decision waits for, one row per
conversation, recorded in each message's claim transaction and leased once due.

A message that is deferred upserts its conversation's row: a new burst (the row idle)
starts with its text, a running one appends it, and either way `due_at` moves to
AUTO_REPLY_DEBOUNCE from now (the database's time, store/clock.py) and `version` grows.
A composer leases due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's one writer
on SQLite), composes outside any transaction, then settles the row in the transaction
that queues the reply, only if `version` is still the one it leased: a message that
arrived meanwhile means the conversation was not quiet, so that composition is dropped
and the whole burst is composed again once due. A composer that dies loses its lease
and the row is taken over when `lease_until` has passed. So each burst gets one
decision and at most one reply (the outbox keeps one reply per answered message too),
whatever the workers, instances and restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Connection, and_, bindparam, case, func, literal, or_, select, update

from ..store import clock
from ..store.database import dialect_insert
from ..store.leasing import taken_once
from ..store.models import ComposeStatus, Composition, utcnow

COMPOSITIONS = Composition.__table__
IDLE, PENDING, COMPOSING = ComposeStatus.IDLE, ComposeStatus.PENDING, ComposeStatus.COMPOSING
MAX_BODY = 16_000  # a burst's stored text past this starts again from its newest message
DECIDED_TEXT = 1_000  # what a decision reads of a burst: its newest lines within this


@dataclass(frozen=True)
class Leased:
    """A due composition a composer holds: the burst and the message to answer."""

    conversation_sid: str
    version: int
    body: str
    messages: int  # how many customer messages the burst holds
    message_sid: str  # the latest: the reply answers it
    author: str
    participant_sid: str | None
    channel: str | None
    received_at: datetime  # the latest message's DateCreated (naive UTC)
    request_id: str | None
    attempts: int


@cache
def _defer(dialect_name: str):
    stmt = dialect_insert(dialect_name)(COMPOSITIONS).values(
        due_at=clock.later(dialect_name, "delay"))
    c, new = COMPOSITIONS.c, stmt.excluded
    idle = c.status == IDLE
    return stmt.on_conflict_do_update(index_elements=["conversation_sid"], set_={
        "body": case((idle, new.body), (func.length(c.body) > MAX_BODY, new.body),
                     else_=c.body + literal("\n") + new.body),
        "messages": case((idle, 1), else_=c.messages + 1),
        "status": PENDING, "version": c.version + 1, "due_at": new.due_at,
        **{name: new[name] for name in ("message_sid", "author", "participant_sid",
                                         "channel", "received_at", "request_id",
                                         "updated_at")},
    })


def decided_text(body: str) -> str:
    """The burst as one text for its decision: its newest lines (one per message, unless
    a message had several) within DECIDED_TEXT characters, the newest whole however long.
    A long first message must not push the question after it past what the rules, the
    handoff phrases and the FAQ read (each reads a text's beginning)."""
    lines = body.split("\n")
    kept = [lines.pop()]
    size = len(kept[0])
    while lines and size + 1 + len(lines[-1]) <= DECIDED_TEXT:
        size += 1 + len(lines[-1])
        kept.append(lines.pop())
    return "\n".join(reversed(kept))


def defer(conn: Connection, *, conversation_sid: str, message_sid: str, body: str,
          author: str, participant_sid: str | None, channel: str | None,
          received_at: datetime, request_id: str | None, delay_seconds: float) -> None:
    """Add a customer's message to its conversation's burst, due `delay_seconds` from now."""
    conn.execute(_defer(conn.dialect.name), {
        "conversation_sid": conversation_sid, "status": PENDING, "version": 1,
        "body": body[:MAX_BODY], "messages": 1, "message_sid": message_sid,
        "author": author, "participant_sid": participant_sid, "channel": channel,
        "received_at": received_at, "request_id": request_id, "lease_until": None,
        "attempts": 0, "updated_at": utcnow(), "delay": float(delay_seconds)})


_LEASED = (COMPOSITIONS.c.conversation_sid, COMPOSITIONS.c.version, COMPOSITIONS.c.body,
           COMPOSITIONS.c.messages, COMPOSITIONS.c.message_sid, COMPOSITIONS.c.author,
           COMPOSITIONS.c.participant_sid, COMPOSITIONS.c.channel,
           COMPOSITIONS.c.received_at, COMPOSITIONS.c.request_id, COMPOSITIONS.c.attempts)


@cache
def _lease(dialect_name: str):
    c = COMPOSITIONS.c
    due_by = clock.later(dialect_name, "ahead")
    now = clock.now(dialect_name)
    due = (select(c.conversation_sid)
           .where(or_(and_(c.status == PENDING, c.due_at <= due_by),
                      and_(c.status == COMPOSING, c.lease_until <= now)))
           .order_by(c.due_at)
           .limit(bindparam("limit"))
           .with_for_update(skip_locked=True))
    return (update(COMPOSITIONS).where(c.conversation_sid.in_(taken_once(due, dialect_name)))
            .values(status=COMPOSING, attempts=c.attempts + 1,
                    lease_until=clock.later(dialect_name, "lease_seconds"))
            .returning(*_LEASED))


def lease_due(conn: Connection, limit: int, lease_seconds: float, *,
              ahead: float = 0.0) -> list[Leased]:
    """Take up to `limit` compositions that are due (`ahead`: due within that many
    seconds, for tests and `compose --now`), and those whose composer's lease ran out."""
    rows = conn.execute(_lease(conn.dialect.name), {
        "limit": limit, "lease_seconds": float(lease_seconds), "ahead": float(ahead)}).all()
    return [Leased(r.conversation_sid, r.version, r.body or "", r.messages, r.message_sid,
                   r.author, r.participant_sid, r.channel, r.received_at, r.request_id,
                   r.attempts) for r in rows]


_HELD = (COMPOSITIONS.c.conversation_sid == bindparam("sid"),
         COMPOSITIONS.c.version == bindparam("leased_version"),
         COMPOSITIONS.c.status == COMPOSING)
_SETTLE = update(COMPOSITIONS).where(*_HELD).values(
    status=IDLE, body=None, messages=0, lease_until=None, attempts=0,
    updated_at=bindparam("now"))


def settle(conn: Connection, leased: Leased) -> bool:
    """Close the burst, if no message joined it since it was leased (then the caller
    records its decision in this transaction); False: drop this composition."""
    return conn.execute(_SETTLE, {"sid": leased.conversation_sid,
                                  "leased_version": leased.version,
                                  "now": utcnow()}).rowcount == 1


@cache
def _retry(dialect_name: str):
    return update(COMPOSITIONS).where(*_HELD).values(
        status=PENDING, lease_until=None, due_at=clock.later(dialect_name, "delay"))


def retry_later(conn: Connection, leased: Leased, delay: float) -> bool:
    """Give the lease back after a failure: due again in `delay` seconds."""
    return conn.execute(_retry(conn.dialect.name), {
        "sid": leased.conversation_sid, "leased_version": leased.version,
        "delay": float(delay)}).rowcount == 1


_DROP = update(COMPOSITIONS).where(
    COMPOSITIONS.c.conversation_sid == bindparam("sid"), COMPOSITIONS.c.status != IDLE,
).values(status=IDLE, body=None, messages=0, lease_until=None, attempts=0,
         version=COMPOSITIONS.c.version + 1, updated_at=bindparam("now"))


def drop(conn: Connection, conversation_sid: str) -> bool:
    """Forget the conversation's waiting burst (the customer opted out meanwhile): a
    composer holding it finds the version moved and drops its composition."""
    return conn.execute(_DROP, {"sid": conversation_sid, "now": utcnow()}).rowcount == 1


def pending_count(conn: Connection) -> int:
    """Bursts waiting to be composed (pending or being composed)."""
    return conn.execute(select(func.count()).where(COMPOSITIONS.c.status != IDLE)).scalar()
