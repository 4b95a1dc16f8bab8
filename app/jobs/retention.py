"""Retention: delete processed events, receipts (and their history), sent replies, FAQ
matches (with the questions' texts), answer model calls (with their raw outputs), idle
compositions and hourly counts older than RETENTION; clear the texts of messages (what
customers and agents wrote), of sent replies and of FAQ questions older than
MESSAGE_TEXT_RETENTION, keeping the rest of their rows (who, when, which channel, what
was decided and delivered).

Deletes run in batches of short transactions on indexed timestamps, so pruning
millions of rows never holds a long lock on the tables webhooks write to. Failed and
unsent replies are kept whatever their age: they are for an operator to see.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select, update

from ..store.database import Database
from ..store.models import (
    ComposeStatus,
    Composition,
    DeliveryReceipt,
    FaqMatch,
    HourlyCount,
    ModelCall,
    ProcessedEvent,
    ReceiptEvent,
    Reply,
    ReplyStatus,
)

log = logging.getLogger(__name__)
BATCH = 5000


def prune(db: Database, cutoff: datetime, text_cutoff: datetime | None = None) -> dict[str, int]:
    """Delete rows older than `cutoff`, clear texts older than `text_cutoff` (None: as
    `cutoff`); return how many of each kind went."""
    targets = {
        "events": (ProcessedEvent, ProcessedEvent.received_at < cutoff),
        "receipts": (DeliveryReceipt, DeliveryReceipt.updated_at < cutoff),
        "replies": (Reply, (Reply.created_at < cutoff) & (Reply.status == ReplyStatus.SENT)),
        "receipt_history": (ReceiptEvent, ReceiptEvent.received_at < cutoff),
        "faq_matches": (FaqMatch, FaqMatch.created_at < cutoff),  # customers' questions too
        "model_calls": (ModelCall, ModelCall.called_at < cutoff),  # and what the model said
    }
    counts = {}
    for name, (model, condition) in targets.items():
        counts[name] = 0
        while True:
            with db.transaction() as conn:
                ids = select(model.id).where(condition).limit(BATCH).scalar_subquery()
                deleted = conn.execute(delete(model).where(model.id.in_(ids))).rowcount
            counts[name] += deleted
            if deleted < BATCH:
                break
    counts.update(clear_texts(db, text_cutoff or cutoff))
    with db.transaction() as conn:  # a row per hour and counter: a small table
        counts["hourly_counts"] = conn.execute(
            delete(HourlyCount).where(HourlyCount.hour < cutoff)).rowcount
    with db.transaction() as conn:  # a row per conversation, its burst long answered
        counts["compositions"] = conn.execute(delete(Composition).where(
            Composition.status == ComposeStatus.IDLE,
            Composition.updated_at < cutoff)).rowcount
    return counts


def clear_texts(db: Database, cutoff: datetime) -> dict[str, int]:
    """Clear messages' texts (ix_processed_events_text: only rows that still have one)
    and sent replies' texts and template variables older than `cutoff`. A reply not sent
    yet (or failed: it may be requeued) keeps its text: it is what will be sent."""
    targets = {
        "message_texts": (ProcessedEvent, (ProcessedEvent.received_at < cutoff)
                          & ProcessedEvent.body.is_not(None), {"body": None}),
        "reply_texts": (Reply, (Reply.created_at < cutoff) & (Reply.status == ReplyStatus.SENT)
                        & (Reply.body.is_not(None) | Reply.content_variables.is_not(None)),
                        {"body": None, "content_variables": None}),
        # the question an FAQ match keeps for `faq gaps`: a customer's text too
        "faq_texts": (FaqMatch, (FaqMatch.created_at < cutoff) & (FaqMatch.text != ""),
                      {"text": ""}),
    }
    counts = {}
    for name, (model, condition, values) in targets.items():
        counts[name] = 0
        while True:
            with db.transaction() as conn:
                ids = select(model.id).where(condition).limit(BATCH).scalar_subquery()
                changed = conn.execute(update(model).where(model.id.in_(ids))
                                       .values(**values)).rowcount
            counts[name] += changed
            if changed < BATCH:
                break
    return counts
