"""Tables: processed events (the idempotency claims), replies (the outbox), receipts.

Times are naive UTC (`utcnow()`), the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ProcessedEvent(Base):
    """One webhook that was claimed and handled; its key makes replays no-ops."""

    __tablename__ = "processed_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    conversation_sid: Mapped[str | None] = mapped_column(String(64))
    message_sid: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(200), default="")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Reply(Base):
    """An auto-reply to send: recorded with its event's claim, sent after the 2xx.

    status: queued -> sending -> sent | failed (queued again on a transient error).
    While `sending`, `next_attempt_at` is the lease: past it, the sender is presumed
    dead and another may take the row over.
    """

    __tablename__ = "replies"
    __table_args__ = (Index("ix_replies_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    in_reply_to: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_sid: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    twilio_message_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class DeliveryReceipt(Base):
    """The latest status of one delivery receipt (one per message and participant)."""

    __tablename__ = "delivery_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_sid: Mapped[str] = mapped_column(String(64), unique=True)
    message_sid: Mapped[str] = mapped_column(String(64), index=True)
    conversation_sid: Mapped[str] = mapped_column(String(64))
    participant_sid: Mapped[str | None] = mapped_column(String(64))
    channel_message_sid: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_rank: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class JobRun(Base):
    """When a periodic job last ran: lets one process of many take each turn."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime)
