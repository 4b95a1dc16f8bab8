"""Outbox: replies recorded in the event's transaction, leased and settled by senders.

Leasing is one atomic step per batch: `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL (each sender gets different rows, nobody waits), and on SQLite the
transaction itself holds the only write lock (BEGIN IMMEDIATE, see store/database.py).
A leased row is `sending` with the lease's end in `next_attempt_at`; a sender that dies
loses the lease and the row is taken over once it has expired. (An *event* is claimed,
once and for all; a *reply* is leased, for a while.) Leases and due times are the
database's time (store/clock.py): hosts' clocks disagree, the database's is one.

`attempts` counts every attempt ever made; `retry_from` is where the current round
began (an operator's requeue starts a new round of SEND_MAX_ATTEMPTS without forgetting
the earlier ones, so the next attempt still looks for the reply at Twilio first).

`unsure_at` is the latest moment a create whose outcome is unknown may have begun: set
by a sender whose create timed out, lost its connection, got a 500, 502 or 504, or was
stopped mid-call (the create's start, in the database's clock), and by taking over a
lost lease (the lease's end: its holder began no call after it). SET expressions read the row as it was, on
PostgreSQL and SQLite alike, so one UPDATE both reads the old lease and writes the new.

Order within a conversation: its replies go out one at a time, in the order they were
queued (by id). A reply is due only if no earlier reply of its conversation is still
queued or sending (a retry waiting for its backoff holds the later ones back; a failed
reply does not) and no other is `sending` under a live lease (an operator's requeue of
an earlier reply waits for the later one in flight). So of a conversation only its
earliest unsettled reply can be due, and a batch never holds two of one conversation.
The check is one probe of ix_replies_conversation per candidate row.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Connection, and_, bindparam, literal_column, or_, select, update

from ..logs import kv
from ..observability import metrics
from ..store import clock
from ..store.database import dialect_insert
from ..store.driver import Statement
from ..store.leasing import taken_once
from ..store.models import Reply, ReplyStatus, utcnow
from ..twilio import marker
from ..twilio.error_codes import HOPELESS, OPTED_OUT
from . import opt_outs, receipts

log = logging.getLogger(__name__)
QUEUED, SENDING, SENT, FAILED = (ReplyStatus.QUEUED, ReplyStatus.SENDING, ReplyStatus.SENT,
                                 ReplyStatus.FAILED)


@dataclass(frozen=True)
class NewReply:
    """A reply to queue, as one value: what to send, and to whom.

    The reply is a text (`body`) or an approved Content template (`content_sid`, with
    `content_variables` as a JSON string), with `media` (a file path or URL from the
    rules file, uploaded by MediaLibrary) when it has one. `customer` (the author
    answered), `participant_sid`, `channel` (the message's Source) and `message_at`
    (naive UTC) let the sender record an opt-out and respect WhatsApp's 24-hour window.
    `request_id` (the webhook request's) follows the reply into the sender's log lines.
    """

    conversation_sid: str
    in_reply_to: str  # the MessageSid answered: one reply per message
    author: str
    body: str | None
    content_sid: str | None = None
    content_variables: str | None = None
    media: str | None = None
    customer: str | None = None
    participant_sid: str | None = None
    channel: str | None = None
    message_at: datetime | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class LeasedReply:
    """A reply a sender holds under a lease: everything needed to send it, detached
    from the database."""

    id: int
    conversation_sid: str
    author: str
    body: str | None  # None when the reply is a Content template
    in_reply_to: str
    attempt: int  # counts every attempt ever made, this one included
    retry_from: int = 0  # attempts made before the current round (an operator's requeue)
    content_sid: str | None = None  # an approved Content template (HX...)
    content_variables: str | None = None  # its variables, a JSON object as a string
    customer: str | None = None  # the author of the message answered
    participant_sid: str | None = None  # and their participant (MB...)
    channel: str | None = None  # the answered message's Source: SMS, WHATSAPP, ...
    message_at: datetime | None = None  # when the answered message was written (UTC)
    leased_at: datetime | None = None  # the database's time when this lease was taken
    media: str | None = None  # a file or URL from the rules file, sent as media
    request_id: str | None = None  # the webhook request that queued the reply
    queued_at: datetime | None = None  # when it was queued (naive UTC)
    # The latest moment an earlier create whose outcome is unknown may have begun (the
    # database's time; None: there was none): no resend until it has had time to land.
    unsure_at: datetime | None = None

    @property
    def may_exist(self) -> bool:
        """Whether Twilio may already hold this reply: an earlier attempt (in this round
        or an earlier one) timed out, got a 5xx, or its sender died after sending. Look
        before sending again."""
        return self.attempt > 1

    @property
    def attempt_in_round(self) -> int:
        """Which attempt of the current round this is (1 for the first)."""
        return self.attempt - self.retry_from

    @property
    def addresses(self) -> tuple[str | None, str | None]:
        """Who the reply goes to, as opt-outs are recorded: the address and the participant."""
        return self.customer, self.participant_sid

    @property
    def attributes(self) -> str:
        """Message attributes that mark the reply as ours (loop guard, crash recovery)."""
        return marker.reply_attributes(self.in_reply_to)


REPLIES = Reply.__table__


@cache
def _queue_statement(dialect_name: str):
    # One reply per message: a replay whose event was pruned while its reply was kept
    # (failed replies are never pruned) claims the event again, and inserts nothing.
    return Statement(dialect_insert(dialect_name)(REPLIES)
                     .values(next_attempt_at=clock.now(dialect_name))
                     .on_conflict_do_nothing(index_elements=["in_reply_to"])
                     .returning(REPLIES.c.id))  # the id, or nothing (rowcount: -1 on PG)


_EXISTING = select(REPLIES.c.status).where(REPLIES.c.in_reply_to == bindparam("in_reply_to"))


def queue_reply(conn: Connection, reply: NewReply) -> str | None:
    """Record a reply to send after the transaction commits; if the message has a reply
    already, queue nothing and return a note saying so."""
    reply_id = _queue_statement(conn.dialect.name).scalar(conn, {
        **vars(reply), "status": QUEUED, "attempts": 0, "retry_from": 0,
        "created_at": utcnow(),
    })
    if reply_id is not None:
        return None
    status = conn.execute(_EXISTING, {"in_reply_to": reply.in_reply_to}).scalar()
    return f"a reply to this message exists already ({status}): not queued again"


_OTHER = REPLIES.alias("other")
# Twilio takes at most 30 message creates per second per conversation: the next reply
# of a conversation waits this long after the last one was sent.
PACE_SECONDS = 1 / 30 + 0.005
_LEASED = (REPLIES.c.id, REPLIES.c.conversation_sid, REPLIES.c.author, REPLIES.c.body,
           REPLIES.c.in_reply_to, REPLIES.c.attempts, REPLIES.c.retry_from,
           REPLIES.c.content_sid, REPLIES.c.content_variables, REPLIES.c.customer,
           REPLIES.c.participant_sid, REPLIES.c.channel, REPLIES.c.message_at,
           REPLIES.c.media, REPLIES.c.request_id, REPLIES.c.created_at, REPLIES.c.unsure_at)


@cache
def _lease(dialect_name: str, status: str):
    # One statement per batch: UPDATE ... WHERE id IN (the due rows) RETURNING them.
    # One status per query: then (status, next_attempt_at) is an index range already in
    # order, and LIMIT stops early however long the backlog (an IN over both statuses
    # would sort every queued row on each claim). The conversation's turn is a NOT
    # EXISTS on ix_replies_conversation: one index probe per candidate, a row or two.
    now = clock.now(dialect_name)
    other = _OTHER
    waits = (select(literal_column("1")).where(
        other.c.conversation_sid == REPLIES.c.conversation_sid,
        other.c.id != REPLIES.c.id,
        or_(and_(other.c.id < REPLIES.c.id,  # an earlier reply not yet settled
                 or_(other.c.status == QUEUED, other.c.status == SENDING)),
            and_(other.c.status == SENDING, other.c.next_attempt_at > now),  # in flight
            and_(other.c.status == SENT,  # sent a moment ago: Twilio's pace
                 other.c.sent_at > clock.later(dialect_name, "pace"))),
    ).exists())
    due = (select(REPLIES.c.id)
           .where(REPLIES.c.status == status, REPLIES.c.next_attempt_at <= now, ~waits)
           .order_by(REPLIES.c.next_attempt_at)
           .limit(bindparam("limit"))
           .with_for_update(skip_locked=True))
    # Taking over a lost lease: its holder may have died with a create in flight, begun
    # before its lease ended (the old next_attempt_at, read before this SET replaces it).
    taken_over = {"unsure_at": REPLIES.c.next_attempt_at} if status == SENDING else {}
    return (update(REPLIES)
            .where(REPLIES.c.id.in_(taken_once(due, dialect_name)))
            .values(status=SENDING, attempts=REPLIES.c.attempts + 1,
                    next_attempt_at=clock.later(dialect_name, "lease_seconds"), **taken_over)
            .returning(*_LEASED, now.label("leased_at")))


@cache
def _sent(dialect_name: str):
    # sent_at is the database's time: the pace above compares it with the database's.
    return update(REPLIES).where(*_HELD).values(
        status=SENT, twilio_message_sid=bindparam("message_sid"),
        sent_at=clock.now(dialect_name), error_code=None, error_message=None,
        dry_run=bindparam("dry_run"))


# Settle a reply only if this sender still holds it (same status and attempt).
_HELD = (REPLIES.c.id == bindparam("reply_id"), REPLIES.c.status == SENDING,
         REPLIES.c.attempts == bindparam("attempt"))


def _unsure(dialect_name: str, unknown: bool) -> dict:
    # The create began `began` seconds ago (< 0): in the database's clock, now + began.
    return {"unsure_at": clock.later(dialect_name, "began")} if unknown else {}


@cache
def _retry(dialect_name: str, unknown: bool = False):
    return update(REPLIES).where(*_HELD).values(
        status=QUEUED, error_code=bindparam("code"), error_message=bindparam("message"),
        next_attempt_at=clock.later(dialect_name, "delay"), **_unsure(dialect_name, unknown))


@cache
def _untried(dialect_name: str):
    # Throttled (429): Twilio did nothing, so the attempt does not count (and the next
    # one needs no look at Twilio first); the error stays visible until then.
    return update(REPLIES).where(*_HELD).values(
        status=QUEUED, attempts=REPLIES.c.attempts - 1, error_code=bindparam("code"),
        error_message=bindparam("message"), next_attempt_at=clock.later(dialect_name, "delay"))


@cache
def _settling(dialect_name: str):
    # Not found at Twilio while an unknown create may still land: look again later.
    # Like a 429 the attempt does not count (nothing was sent); the error stays.
    return update(REPLIES).where(*_HELD).values(
        status=QUEUED, attempts=REPLIES.c.attempts - 1,
        next_attempt_at=clock.later(dialect_name, "delay"))


@cache
def _failed(dialect_name: str, unknown: bool = False):
    return update(REPLIES).where(*_HELD).values(
        status=FAILED, error_code=bindparam("code"), error_message=bindparam("message"),
        **_unsure(dialect_name, unknown))


def lease_due(conn: Connection, limit: int, lease_seconds: float,
              *, expired: bool = True, pace: float = PACE_SECONDS) -> list[LeasedReply]:
    """Take up to `limit` replies that are due, and (with `expired`) those whose
    holder's lease ran out; of a conversation, only its earliest unsettled reply, and
    not within PACE_SECONDS of its last one. Leases run out rarely: a busy sender looks
    for them once per poll, not on every lease."""
    dialect = conn.dialect.name
    params = {"lease_seconds": float(lease_seconds), "pace": -float(pace)}
    rows = (conn.execute(_lease(dialect, SENDING), {**params, "limit": limit}).all()
            if expired else [])  # lost leases first
    if len(rows) < limit:
        rows += conn.execute(_lease(dialect, QUEUED), {**params, "limit": limit - len(rows)}).all()
    return [
        LeasedReply(r.id, r.conversation_sid, r.author, r.body, r.in_reply_to,
                    attempt=r.attempts, retry_from=r.retry_from,
                    content_sid=r.content_sid, content_variables=r.content_variables,
                    customer=r.customer, participant_sid=r.participant_sid,
                    channel=r.channel, message_at=r.message_at, leased_at=r.leased_at,
                    media=r.media, request_id=r.request_id, queued_at=r.created_at,
                    unsure_at=r.unsure_at)
        for r in sorted(rows, key=lambda r: r.id)
    ]


def _settle(conn: Connection, statement, leased: LeasedReply, **values) -> bool:
    """Run a settling update; return whether this sender still held the reply."""
    params = {"reply_id": leased.id, "attempt": leased.attempt, **values}
    return conn.execute(statement, params).rowcount == 1


def mark_sent(conn: Connection, leased: LeasedReply, message_sid: str, *,
              dry_run: bool = False) -> bool:
    """Sent: Twilio took it (or, `dry_run`, a dry-run client logged it instead); a
    receipt that came before this (Twilio is fast) is summed up on it now."""
    kept = _settle(conn, _sent(conn.dialect.name), leased, message_sid=message_sid,
                   dry_run=bool(dry_run))
    if kept and receipts.summarize_early_receipts(conn, message_sid) and \
            receipts.early_opt_out(conn, message_sid, leased.participant_sid):
        # Its 21610 came first: the customer is known only now.
        opt_outs.end_wait(conn, leased.conversation_sid)
        opt_outs.record(conn, leased.addresses, error_code=OPTED_OUT,
                        conversation_sid=leased.conversation_sid)
    return kept


def mark_retry(conn: Connection, leased: LeasedReply, delay: float,
               code: int | None, message: str, *, unsure_since: float | None = None) -> bool:
    """Queue the reply again after `delay`. `unsure_since`: the host's monotonic time
    when a create whose outcome is unknown began (recorded as `unsure_at`)."""
    return _settle(conn, _retry(conn.dialect.name, unsure_since is not None), leased,
                   code=code, message=message[:2000], delay=float(delay),
                   **_began(unsure_since))


def mark_untried(conn: Connection, leased: LeasedReply, delay: float,
                 code: int | None, message: str) -> bool:
    """Queue the reply again after `delay` without counting this attempt (a 429)."""
    return _settle(conn, _untried(conn.dialect.name), leased, code=code,
                   message=message[:2000], delay=float(delay))


def mark_settling(conn: Connection, leased: LeasedReply, delay: float) -> bool:
    """Queue the reply again after `delay` without counting this attempt: it was not
    found at Twilio, but an earlier create whose outcome is unknown may still land."""
    return _settle(conn, _settling(conn.dialect.name), leased, delay=float(delay))


def mark_failed(conn: Connection, leased: LeasedReply, code: int | None, message: str,
                *, unsure_since: float | None = None) -> bool:
    return _settle(conn, _failed(conn.dialect.name, unsure_since is not None), leased,
                   code=code, message=message[:2000], **_began(unsure_since))


def _began(unsure_since: float | None) -> dict:
    """How long ago the unknown create began, measured now, as the statement runs (a
    database outage may delay it): a moment in the database's clock, not the host's."""
    if unsure_since is None:
        return {}
    return {"began": -max(0.0, time.monotonic() - unsure_since)}


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(cap, base * (2 ** min(attempt, 30))))


_CANCEL = update(REPLIES).where(
    REPLIES.c.conversation_sid == bindparam("sid"), REPLIES.c.status == QUEUED,
    # Never tried, or tried with a known outcome: one whose earlier create may have
    # reached Twilio is left for the sender to look up (sent, or failed, as it finds).
    REPLIES.c.unsure_at.is_(None), REPLIES.c.attempts <= REPLIES.c.retry_from,
    # To the customer who opted out (a group conversation's other customers still listen).
    or_(REPLIES.c.customer.in_(bindparam("addresses", expanding=True)),
        REPLIES.c.participant_sid.in_(bindparam("addresses", expanding=True))),
).values(status=FAILED, error_code=OPTED_OUT, error_message=bindparam("message")).returning(
    REPLIES.c.id)


def cancel_queued(conn: Connection, conversation_sid: str, addresses: list[str],
                  why: str) -> int:
    """The replies to these addresses (the customer who sent STOP) in this conversation
    not yet sent, and never tried with an unknown outcome, will never be: failed as
    Twilio would fail them (21610, which no requeue sends again), each logged and counted
    as a failed reply. One in flight at this moment, or being looked up at Twilio after
    an unknown outcome, is not stopped. Returns how many."""
    if not addresses:
        return 0
    ids = conn.execute(_CANCEL, {"sid": conversation_sid, "addresses": addresses,
                                 "message": why}).scalars().all()
    for reply_id in ids:
        log.info("reply failed %s", kv(reply_id=reply_id, conversation=conversation_sid,
                                       code=OPTED_OUT, reason=why))
        metrics.reply_failed(OPTED_OUT)
    return len(ids)


def requeue_failed(conn: Connection, reply_id: int | None = None) -> int:
    """Queue failed replies (one, or all) for a new round of attempts; return how many.
    A reply that failed with an error sending again cannot fix (HOPELESS) stays failed.

    `attempts` is kept: the next attempt is not a first one, and looks for the reply at
    Twilio before sending (an attempt that timed out may have reached Twilio).
    """
    stmt = update(REPLIES).where(
        REPLIES.c.status == FAILED,
        # Not what cannot go through again: the customer opted out (21610), WhatsApp's
        # window or template (63016), a number that cannot take messages, ...
        or_(REPLIES.c.error_code.is_(None), REPLIES.c.error_code.not_in(sorted(HOPELESS))))
    if reply_id is not None:
        stmt = stmt.where(REPLIES.c.id == reply_id)
    result = conn.execute(stmt.values(status=QUEUED, retry_from=REPLIES.c.attempts,
                                      next_attempt_at=clock.now(conn.dialect.name)))
    return result.rowcount
