"""Retention: delete processed events, receipts (and their history), sent replies, FAQ
matches (with the questions' texts), answer model calls (with their raw outputs), idle
compositions and hourly counts older than RETENTION.

Deletes run in batches of short transactions on indexed timestamps, so pruning
millions of rows never holds a long lock on the tables webhooks write to. Failed and
unsent replies are kept whatever their age: they are for an operator to see.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select

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


def prune(db: Database, cutoff: datetime) -> dict[str, int]:
    """Delete rows older than `cutoff`; return how many of each kind went."""
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
    with db.transaction() as conn:  # a row per hour and counter: a small table
        counts["hourly_counts"] = conn.execute(
            delete(HourlyCount).where(HourlyCount.hour < cutoff)).rowcount
    with db.transaction() as conn:  # a row per conversation, its burst long answered
        counts["compositions"] = conn.execute(delete(Composition).where(
            Composition.status == ComposeStatus.IDLE,
            Composition.updated_at < cutoff)).rowcount
    return counts
