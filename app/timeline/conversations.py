"""One conversation as an operator reads it: its thread, each message with who wrote it
and what it said, the bot's decision, its reply and every participant's delivery
receipt (current status and full history); and the reads the overview (overview.py)
shares: a conversation's latest message, a message as a record, its preview.

Every read is bounded whatever the tables hold (1,000,000 events in bench/): a thread
is an index range, a page at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, exists, func, select

from ..pipeline.outcome import Kind
from ..store.models import (
    Conversation,
    DeliveryReceipt,
    OptOut,
    ProcessedEvent,
    ReceiptEvent,
    Reply,
)
from ..twilio.error_codes import describe, fix
from . import status
from .faq import matches_of

EVENTS = ProcessedEvent.__table__
REPLIES = Reply.__table__
RECEIPTS = DeliveryReceipt.__table__
HISTORY = ReceiptEvent.__table__
CONVERSATIONS = Conversation.__table__
OPT_OUTS = OptOut.__table__
MESSAGE = "onMessageAdded"
RECEIPT = "onDeliveryUpdated"
PREVIEW = 80  # characters of the last message shown in the overview
# A customer's or an agent's message (not our own reply coming back, not the REST API's).
SPOKEN = and_(EVENTS.c.reason.is_not(None), EVENTS.c.reason.not_in(("OWN_MESSAGE",
                                                                    "SYSTEM_MESSAGE")))
EVENT_COLUMNS = (EVENTS.c.id, EVENTS.c.event_type, EVENTS.c.conversation_sid,
                  EVENTS.c.message_sid, EVENTS.c.outcome, EVENTS.c.outcome_kind,
                  EVENTS.c.reason, EVENTS.c.rule, EVENTS.c.received_at, EVENTS.c.author,
                  EVENTS.c.channel, EVENTS.c.body, EVENTS.c.media_types)
# A conversation waiting for an agent, unless its customer (who asked: by address or
# participant) has opted out since, here or in another conversation (a 21610 updates only
# the conversation of the refusal): two primary-key probes of opt_outs each.
WAITING = and_(CONVERSATIONS.c.waiting_since.is_not(None), ~exists().where(
    OPT_OUTS.c.address.in_([CONVERSATIONS.c.waiting_address,
                            CONVERSATIONS.c.waiting_participant])))


def latest_message(conn: Connection, conversation_sid: str, *, customer: bool = False):
    """The conversation's latest message from a customer or an agent (`customer`: from a
    customer), as the overview reads it (EVENT_COLUMNS); None if there is none. One
    index probe."""
    query = select(*EVENT_COLUMNS).where(
        EVENTS.c.conversation_sid == conversation_sid, EVENTS.c.event_type == MESSAGE, SPOKEN)
    if customer:
        query = query.where(EVENTS.c.reason != "AGENT_MESSAGE")
    return conn.execute(query.order_by(EVENTS.c.received_at.desc()).limit(1)).first()


def thread_page(conn: Connection, anchor: str | None, limit: int) -> datetime | None:
    """The `before` cursor of the thread page that shows this anchor (m-IM... a message,
    r-<id> a reply, shown under its message); None: the newest page shows it."""
    if not anchor:
        return None
    kind, _, value = anchor.partition("-")
    if kind == "r":
        value = conn.execute(select(REPLIES.c.in_reply_to).where(
            REPLIES.c.id == int(value))).scalar()
    row = conn.execute(select(EVENTS.c.conversation_sid, EVENTS.c.received_at).where(
        EVENTS.c.key == f"message:{value}")).first() if value else None
    if row is None:
        return None
    newer = conn.execute(select(func.count()).select_from(
        select(EVENTS.c.id).where(EVENTS.c.conversation_sid == row.conversation_sid,
                                  EVENTS.c.event_type != RECEIPT,
                                  EVENTS.c.received_at > row.received_at)
        .limit(limit).subquery())).scalar()
    return row.received_at + timedelta(microseconds=1) if newer >= limit else None


def timeline(conn: Connection, conversation_sid: str, limit: int = 50,
             before: datetime | None = None) -> dict:
    """One conversation, newest first: each event with who wrote it and what, the
    decision (with the FAQ's match, when it was asked), its reply and the reply's
    receipts per participant, each receipt with its history. (The dashboard shows a page
    of it in time order.)"""
    query = (select(*EVENT_COLUMNS)
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
    faq = matches_of(conn, sids)
    items = []
    for row in rows:
        item = {**message_record(row), "event_type": row.event_type}
        item["reply"] = replies.get(row.message_sid)
        item["faq"] = faq.get(row.message_sid)
        items.append(item)
    return {"conversation_sid": conversation_sid, "events": items,
            "next": rows[-1].received_at if more else None}


def message(conn: Connection, message_sid: str) -> dict | None:
    """One message's decision and its reply (with receipts), as `why` prints it; None
    when neither is stored."""
    row = conn.execute(select(*EVENT_COLUMNS).where(
        EVENTS.c.key == f"message:{message_sid}")).first()
    [reply] = replies_for(conn, [message_sid]) or [None]
    if row is None and reply is None:
        return None
    return {"message": message_record(row) if row is not None else None, "reply": reply}


def replies_for(conn: Connection, in_reply_to: list[str], *,
                receipts: bool = True) -> list[dict]:
    """The replies to these messages, each with its receipts (per participant)."""
    if not in_reply_to:
        return []
    rows = conn.execute(select(REPLIES).where(REPLIES.c.in_reply_to.in_(in_reply_to))).all()
    replies = [reply_record(r) for r in rows]
    if receipts:
        attach_receipts(conn, replies)
    return replies


def reply_record(row) -> dict:
    """A reply as shown: its text (or template), its outcome (one meaning everywhere:
    status.py), attempts, Twilio's MessageSid, the last error with its meaning and usual
    fix, and the delivery summed up over its receipts."""
    outcome = status.reply_outcome(row.status, row.delivery_status, row.dry_run)
    return {
        "id": row.id, "conversation_sid": row.conversation_sid,
        "in_reply_to": row.in_reply_to, "status": row.status, "attempts": row.attempts,
        "outcome": outcome, "outcome_label": status.OUTCOME_LABELS[outcome],
        "dry_run": bool(row.dry_run),
        "message_sid": row.twilio_message_sid, "body": row.body,
        "content_sid": row.content_sid, "content_variables": row.content_variables,
        "media": row.media, "customer": row.customer, "channel": row.channel,
        "created_at": row.created_at, "sent_at": row.sent_at,
        "error": _error(row.error_code, row.error_message),
        "delivery": {"status": row.delivery_status,
                     "error": _error(row.delivery_error_code)},
        "requeueable": status.requeueable(row.status, row.error_code),
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


def preview(message: dict) -> str | None:
    """The message's first words, or what it carried when it has no text."""
    body = (message.get("body") or "").strip()
    if body:
        words = " ".join(body.split())
        return words if len(words) <= PREVIEW else words[:PREVIEW - 1].rstrip() + "…"
    media = message.get("media") or []
    if media:
        return f"[{len(media)} attachment{'s' if len(media) > 1 else ''}: {', '.join(media)}]"
    return None


def message_record(row) -> dict:
    """An event as shown: who, on which channel, what (text, media), and the decision."""
    return {"conversation_sid": row.conversation_sid, "message_sid": row.message_sid,
            "received_at": row.received_at, "outcome": row.outcome,
            "kind": _kind(row.outcome_kind), "reason": row.reason,
            "reason_text": status.reason_text(row.reason), "rule": row.rule,
            "author": row.author, "channel": row.channel, "body": row.body,
            "media": row.media_types.split(",") if row.media_types else [],
            "from": _speaker(row.reason)}


def _speaker(reason: str | None) -> str | None:
    """Who wrote a message: customer, agent, bot (our own) or system; None: no message."""
    if reason is None:
        return None
    return {"AGENT_MESSAGE": "agent", "OWN_MESSAGE": "bot",
            "SYSTEM_MESSAGE": "system"}.get(reason, "customer")


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
