"""Tables: processed events (the idempotency claims), replies (the outbox), receipts.

Times are naive UTC (`utcnow()`), the same on SQLite and PostgreSQL. The column sizes
and status names here are the one source: events check incoming fields against them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..twilio.media import MAX_SOURCE_CHARS

SID_LENGTH = 64  # Twilio's SIDs are 34 characters; room for what Twilio may add
STATUS_LENGTH = 16
AUTHOR_LENGTH = 256
OUTCOME_LENGTH = 200
KEY_LENGTH = 200
RULE_LENGTH = 64
CHANNEL_LENGTH = 16
MEDIA_LENGTH = MAX_SOURCE_CHARS  # a reply medium's path or URL, as the rules file checks it
REQUEST_ID_LENGTH = 64
FAQ_OFFERED_LENGTH = 200  # three FAQ ids of at most 60 characters, comma-separated
FAQ_TEXT_LENGTH = 4_096  # of a question kept for `faq gaps`
MEDIA_TYPES_LENGTH = 256


class ReplyStatus(StrEnum):
    """A reply's life: queued -> sending -> sent | failed (queued again on a transient
    error, or by an operator's requeue)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ReceiptStatus(StrEnum):
    """Twilio's delivery statuses. Receipts arrive out of order; `rank` only grows."""

    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"

    @property
    def rank(self) -> int:
        return _RECEIPT_RANK[self]


_RECEIPT_RANK = {"sent": 1, "delivered": 2, "undelivered": 3, "failed": 3, "read": 4}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ProcessedEvent(Base):
    """One webhook that was claimed and handled; its key makes replays no-ops."""

    __tablename__ = "processed_events"
    __table_args__ = (
        Index("ix_processed_events_conversation", "conversation_sid", "received_at"),
        # Pruning by age, and a period's outcomes and decisions from the index alone.
        Index("ix_processed_events_received", "received_at", "outcome_kind", "reason"),
        # The dashboard's search by the customer's address (only messages have one).
        Index("ix_processed_events_author", "author", "received_at",
              sqlite_where=text("author IS NOT NULL"),
              postgresql_where=text("author IS NOT NULL")),
        # Texts past MESSAGE_TEXT_RETENTION, found without reading the rows already cleared.
        Index("ix_processed_events_text", "received_at",
              sqlite_where=text("body IS NOT NULL"), postgresql_where=text("body IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    conversation_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    message_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    outcome: Mapped[str] = mapped_column(String(OUTCOME_LENGTH), default="")
    outcome_kind: Mapped[str | None] = mapped_column(String(32))
    # An inbound message's auto-reply decision: its reason code and the rule that fired.
    reason: Mapped[str | None] = mapped_column(String(32))
    rule: Mapped[str | None] = mapped_column(String(RULE_LENGTH))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A message as the operator reads it (onMessageAdded only): who wrote it (the
    # customer's address, or an agent's identity), on which channel (Source), its text
    # (cleared after MESSAGE_TEXT_RETENTION; never stored when that is 0) and its media's
    # content types, comma-separated (their count is the media count).
    author: Mapped[str | None] = mapped_column(String(AUTHOR_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    body: Mapped[str | None] = mapped_column(Text)
    media_types: Mapped[str | None] = mapped_column(String(MEDIA_TYPES_LENGTH))


UNCONFIRMED = text(
    "status = 'sent' AND delivery_status IS NULL AND receipts_checked_at IS NULL")


class Reply(Base):
    """An auto-reply to send: recorded with its event's claim, sent after the 2xx.

    status: see ReplyStatus. While `sending`, `next_attempt_at` is the sender's lease:
    past it, the sender is presumed dead and another may take the row over. `attempts`
    counts every attempt ever made (an attempt after the first looks for the reply at
    Twilio before sending); `retry_from` is where the current round of attempts began
    (an operator's requeue starts a new round without forgetting the earlier ones).
    `unsure_at` is the latest moment a create whose outcome is unknown may have begun
    (a timeout, a dropped connection, a 500/502/504, a sender dead or stopped mid-call):
    no resend until SEND_SETTLE_SECONDS after it (delivery/attempt.py).
    """

    __tablename__ = "replies"
    __table_args__ = (
        Index("ix_replies_due", "status", "next_attempt_at"),
        Index("ix_replies_conversation", "conversation_sid", "created_at"),
        # Catch-up's receipt back-fill: sent, no receipt yet, not yet checked. Partial, so
        # queueing a reply (the webhook's hot path) never touches it.
        Index("ix_replies_receipt_backfill", "sent_at",
              sqlite_where=UNCONFIRMED, postgresql_where=UNCONFIRMED),
        # The sending pace and a period's reply latency, from the index alone.
        Index("ix_replies_sent", "sent_at", "created_at"),
        # Pruning by age, and a period's outcomes (and failures) from the index alone.
        Index("ix_replies_created", "created_at", "status", "delivery_status", "dry_run"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    in_reply_to: Mapped[str] = mapped_column(String(SID_LENGTH), unique=True)
    conversation_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    author: Mapped[str] = mapped_column(String(AUTHOR_LENGTH))
    body: Mapped[str | None] = mapped_column(Text)
    content_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))  # an approved template
    content_variables: Mapped[str | None] = mapped_column(Text)
    # Whom the reply answers, and when they wrote: for opt-outs (error 21610) and
    # WhatsApp's 24-hour window at send time.
    customer: Mapped[str | None] = mapped_column(String(AUTHOR_LENGTH))
    participant_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    message_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A file or URL from the rules file, sent as media (uploaded once: MediaUpload).
    media: Mapped[str | None] = mapped_column(String(MEDIA_LENGTH))
    # The webhook request that queued the reply: follows it into the sender's log lines.
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH), default=ReplyStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_from: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    unsure_at: Mapped[datetime | None] = mapped_column(DateTime)  # the database's time
    twilio_message_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH), index=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(String(STATUS_LENGTH))
    # The error of a receipt that failed (any participant's), kept even when another
    # participant's receipt, or a later one, says delivered or read.
    delivery_error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Sent by a dry-run server: logged, never given to Twilio (status `sent` all the same,
    # so nothing tries it again); shown and counted as "dry run (not sent)".
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    receipts_checked_at: Mapped[datetime | None] = mapped_column(DateTime)


class DeliveryReceipt(Base):
    """The latest status of one delivery receipt (one per message and participant)."""

    __tablename__ = "delivery_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_sid: Mapped[str] = mapped_column(String(SID_LENGTH), unique=True)
    message_sid: Mapped[str] = mapped_column(String(SID_LENGTH), index=True)
    conversation_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    participant_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    channel_message_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    status_rank: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[int | None] = mapped_column(Integer)
    # failed or undelivered, once such a receipt arrived: with error_code, it stays even
    # when a later receipt (e.g. read) moves the status on. A failure is never hidden.
    error_status: Mapped[str | None] = mapped_column(String(STATUS_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Conversation(Base):
    """What the bot remembers of one conversation; its row is the conversation's lock
    while a message of it is decided and recorded."""

    __tablename__ = "conversations"

    sid: Mapped[str] = mapped_column(String(SID_LENGTH), primary_key=True)
    inbound_count: Mapped[int] = mapped_column(Integer, default=0)
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_agent_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_reply_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Handoff (autoreply/handoff.py): when the bot last said its handoff message (silent
    # for HANDOFF_WINDOW after it), and since when the customer waits for an agent (kept
    # until an agent writes: the dashboard lists these, oldest first).
    handoff_at: Mapped[datetime | None] = mapped_column(DateTime)
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # Who waits (the customer who asked, by address and participant): they leave the
    # waiting list once they opt out, in any conversation (opt_outs), not when someone
    # else in a group conversation does.
    waiting_address: Mapped[str | None] = mapped_column(String(AUTHOR_LENGTH))
    waiting_participant: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    # The FAQ ids our last reply offered by number ("Did you mean: 1) ... 2) ...?"),
    # comma-separated, until the customer's next message.
    faq_offered: Mapped[str | None] = mapped_column(String(FAQ_OFFERED_LENGTH))


class FaqMatch(Base):
    """The knowledge base's match for one customer message: the decision's record (outcome,
    entry, candidates with scores) and the learning loop's (`faq gaps`): the question's
    text, and whether an operator marked the decision wrong."""

    __tablename__ = "faq_matches"
    __table_args__ = (Index("ix_faq_matches_created", "created_at", "outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(SID_LENGTH), unique=True)
    conversation_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    outcome: Mapped[str] = mapped_column(String(STATUS_LENGTH))  # answer, clarify, decline
    faq_id: Mapped[str | None] = mapped_column(String(RULE_LENGTH))
    candidates: Mapped[str] = mapped_column(Text, default="[]")  # [{"faq_id", "score"}]
    text: Mapped[str] = mapped_column(Text, default="")  # the customer's message
    wrong_at: Mapped[datetime | None] = mapped_column(DateTime)  # marked wrong by an operator
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OptOut(Base):
    """A customer (address or participant) Twilio refused to message (error 21610)."""

    __tablename__ = "opt_outs"

    address: Mapped[str] = mapped_column(String(AUTHOR_LENGTH), primary_key=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    conversation_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    opted_out_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Switch(Base):
    """A runtime switch every instance obeys (e.g. auto-reply on/off)."""

    __tablename__ = "switches"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JobRun(Base):
    """When a periodic job last ran: lets one process of many take each turn."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime)


class SenderHeartbeat(Base):
    """A sender process's heartbeat (one row per process; the process is
    delivery/sender.py's Sender): it claims a share of TWILIO_CONCURRENCY_LIMIT. A sender
    whose heartbeat is older than a lease is dead and its share returns."""

    __tablename__ = "senders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # host:pid:random
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    share: Mapped[int] = mapped_column(Integer, default=0)  # calls it may hold in flight
    concurrency: Mapped[int] = mapped_column(Integer, default=0)  # its adaptive limit now
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)  # replies sent since it started


class MediaUpload(Base):
    """A file uploaded to Twilio's Media Content Service: its MediaSid, reused for every
    reply that sends the same content to the same conversation service."""

    __tablename__ = "media_uploads"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)  # service + sha256
    service_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    media_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    source: Mapped[str] = mapped_column(String(MEDIA_LENGTH))  # the path or URL configured
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReceiptEvent(Base):
    """Every delivery receipt as it arrived, append-only (webhook or catch-up): the
    history behind DeliveryReceipt's current status."""

    __tablename__ = "receipt_events"
    __table_args__ = (Index("ix_receipt_events_message", "message_sid", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    message_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    conversation_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    participant_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    error_code: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))  # webhook, catch-up
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class HourlyCount(Base):
    """Counts of what leaves no row (duplicates dropped, signature failures), per hour:
    each process adds what it counted every few seconds."""

    __tablename__ = "hourly_counts"

    hour: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AdminSession(Base):
    """A dashboard login. The cookie carries a random id, this row its SHA-256 (the
    table gives no usable cookie): logging out deletes it, so every copy of the cookie
    is refused on every instance; a session made under another ADMIN_TOKEN (another
    fingerprint) or past `expires_at` (the database's time) no longer counts."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class AuthFailure(Base):
    """Wrong ADMIN_TOKENs from one client address (or '*': from every address) since
    `first_at`, the database's time: the token throttle's counts, shared by every worker
    and instance (app/web/throttle.py). Rows older than the throttle's period are pruned
    as new ones come."""

    __tablename__ = "auth_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(DateTime)


class ComposeStatus(StrEnum):
    """A conversation's pending composition: idle (nothing to answer) -> pending (due at
    `due_at`) -> composing (leased until `lease_until`) -> idle; a message arriving
    meanwhile makes it pending again with a new `version`."""

    IDLE = "idle"
    PENDING = "pending"
    COMPOSING = "composing"


class Composition(Base):
    """The customer messages a decision waits for (AUTO_REPLY_DEBOUNCE, the answer
    model): one row per conversation, recorded with each message's claim, composed by
    whichever process leases it once due (app/compose/). The reply answers the latest
    message (`message_sid`), so the outbox's one-reply-per-message holds here too."""

    __tablename__ = "compositions"
    __table_args__ = (Index("ix_compositions_due", "status", "due_at"),)

    conversation_sid: Mapped[str] = mapped_column(String(SID_LENGTH), primary_key=True)
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH), default=ComposeStatus.PENDING)
    version: Mapped[int] = mapped_column(Integer, default=1)  # +1 per message
    body: Mapped[str | None] = mapped_column(Text)  # the burst's texts, one per line
    messages: Mapped[int] = mapped_column(Integer, default=1)  # how many in the burst
    # The latest message, which the reply answers, as the decision sees it.
    message_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    author: Mapped[str] = mapped_column(String(AUTHOR_LENGTH))
    participant_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    received_at: Mapped[datetime] = mapped_column(DateTime)  # its DateCreated (naive UTC)
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_LENGTH))
    due_at: Mapped[datetime] = mapped_column(DateTime)  # the database's time
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ModelCall(Base):
    """One call to the answer model (ANSWER_MODEL_URL): what it returned, verbatim, and
    what the guardrails made of it. Counted for the per-conversation and per-day caps."""

    __tablename__ = "model_calls"
    __table_args__ = (Index("ix_model_calls_conversation", "conversation_sid", "called_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    message_sid: Mapped[str] = mapped_column(String(SID_LENGTH), index=True)
    called_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    model: Mapped[str] = mapped_column(String(128))
    # answer | clarify | decline (as the guardrails let it), or rejected | error
    verdict: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    detail: Mapped[str | None] = mapped_column(Text)  # why rejected, or the error
    cited: Mapped[str | None] = mapped_column(String(OUTCOME_LENGTH))  # entry ids, comma-separated
    raw_output: Mapped[str | None] = mapped_column(Text)  # the model's message, verbatim
    elapsed_ms: Mapped[int | None] = mapped_column(Integer)
