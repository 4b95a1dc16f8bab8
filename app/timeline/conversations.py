"""Conversations as an operator reads them: the latest decisions, and one conversation's
timeline, each inbound message linked to its decision, its reply and every
participant's delivery receipt (current status and full history)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from ..pipeline.outcome import Kind
from ..store.models import DeliveryReceipt, ProcessedEvent, ReceiptEvent, Reply
from ..twilio.error_codes import describe, fix

EVENTS = ProcessedEvent.__table__
REPLIES = Reply.__table__
RECEIPTS = DeliveryReceipt.__table__
HISTORY = ReceiptEvent.__table__
MESSAGE = "onMessageAdded"
RECEIPT = "onDeliveryUpdated"
SCAN = 500  # newest message events read per page of recent conversations


def recent(conn: Connection, limit: int = 25, before: datetime | None = None) -> dict:
    """The newest conversations by their latest message, each with what the bot decided
    and why; `next` is the cursor of the following page (None on the last)."""
    query = (select(EVENTS.c.conversation_sid, EVENTS.c.message_sid, EVENTS.c.outcome,
                    EVENTS.c.outcome_kind, EVENTS.c.reason, EVENTS.c.rule,
                    EVENTS.c.received_at)
             .where(EVENTS.c.event_type == MESSAGE)
             .order_by(EVENTS.c.received_at.desc()).limit(SCAN))
    if before is not None:
        query = query.where(EVENTS.c.received_at < before)
    rows = conn.execute(query).all()
    items: dict[str, dict] = {}
    cursor = last = None
    for row in rows:
        if row.conversation_sid not in items and len(items) == limit:
            cursor = last  # the page is full: the next one starts after the last row taken
            break
        entry = items.setdefault(row.conversation_sid, {**_decision(row), "messages": 0})
        entry["messages"] += 1  # its messages on this page
        last = row.received_at
    else:
        cursor = last if len(rows) == SCAN else None
    return {"conversations": list(items.values()), "next": cursor}


def timeline(conn: Connection, conversation_sid: str, limit: int = 50,
             before: datetime | None = None) -> dict:
    """One conversation, newest first: each event with its decision, its reply and the
    reply's receipts per participant, each receipt with its history."""
    query = (select(EVENTS.c.event_type, EVENTS.c.conversation_sid, EVENTS.c.message_sid,
                    EVENTS.c.outcome, EVENTS.c.outcome_kind, EVENTS.c.reason,
                    EVENTS.c.rule, EVENTS.c.received_at)
             .where(EVENTS.c.conversation_sid == conversation_sid,
                    EVENTS.c.event_type != RECEIPT)  # receipts show under their reply
             .order_by(EVENTS.c.received_at.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(EVENTS.c.received_at < before)
    rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    sids = [r.message_sid for r in rows if r.message_sid]
    replies = {r["in_reply_to"]: r for r in replies_for(conn, sids)}
    items = []
    for row in rows:
        item = {**_decision(row), "event_type": row.event_type}
        item["reply"] = replies.get(row.message_sid)
        items.append(item)
    return {"conversation_sid": conversation_sid, "events": items,
            "next": rows[-1].received_at if more else None}


def replies_for(conn: Connection, in_reply_to: list[str]) -> list[dict]:
    """The replies to these messages, each with its receipts (per participant)."""
    if not in_reply_to:
        return []
    rows = conn.execute(select(REPLIES).where(REPLIES.c.in_reply_to.in_(in_reply_to))).all()
    replies = [reply_record(r) for r in rows]
    attach_receipts(conn, replies)
    return replies


def reply_record(row) -> dict:
    """A reply as shown: its status, attempts, Twilio's MessageSid, the last error with
    its meaning and usual fix, and the delivery summed up over its receipts."""
    return {
        "id": row.id, "conversation_sid": row.conversation_sid,
        "in_reply_to": row.in_reply_to, "status": row.status, "attempts": row.attempts,
        "message_sid": row.twilio_message_sid, "body": row.body,
        "content_sid": row.content_sid, "created_at": row.created_at, "sent_at": row.sent_at,
        "error": _error(row.error_code, row.error_message),
        "delivery": {"status": row.delivery_status,
                     "error": _error(row.delivery_error_code)},
        "requeueable": row.status == "failed",
        "receipts": [],
    }


def attach_receipts(conn: Connection, replies: list[dict]) -> None:
    """Add each reply's receipts (current status per participant) and their history."""
    by_sid = {r["message_sid"]: r for r in replies if r["message_sid"]}
    if not by_sid:
        return
    sids = list(by_sid)
    receipts = {}
    for row in conn.execute(select(RECEIPTS).where(RECEIPTS.c.message_sid.in_(sids))
                            .order_by(RECEIPTS.c.id)):
        receipts[row.receipt_sid] = {
            "receipt_sid": row.receipt_sid, "participant_sid": row.participant_sid,
            "status": row.status, "updated_at": row.updated_at,
            "error": _error(row.error_code) if row.error_status else None,
            "failed_as": row.error_status, "history": []}
        by_sid[row.message_sid]["receipts"].append(receipts[row.receipt_sid])
    for row in conn.execute(select(HISTORY).where(HISTORY.c.message_sid.in_(sids))
                            .order_by(HISTORY.c.id)):
        if row.receipt_sid in receipts:
            receipts[row.receipt_sid]["history"].append({
                "status": row.status, "error_code": row.error_code or None,
                "source": row.source, "received_at": row.received_at})


def _decision(row) -> dict:
    return {"conversation_sid": row.conversation_sid, "message_sid": row.message_sid,
            "received_at": row.received_at, "outcome": row.outcome,
            "kind": _kind(row.outcome_kind), "reason": row.reason,
            "rule": row.rule}


def _kind(name: str | None) -> str | None:
    """The outcome's kind as people read it ('reply queued'); stored by its name."""
    if not name:
        return None
    return Kind[name].value if name in Kind.__members__ else name.lower()


def _error(code: int | None, message: str | None = None) -> dict | None:
    if not code and not message:
        return None
    return {"code": code or None, "meaning": describe(code), "fix": fix(code),
            "message": message}
