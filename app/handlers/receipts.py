"""Delivery receipts: one structured log line each, every one kept in the history, the
current status kept per receipt (message and participant), summed up on our reply.

Twilio sends `Status` (sent, delivered, read, failed, undelivered) and `ErrorCode`;
receipts can arrive out of order, so a status only replaces one of lower rank. A failure
is never hidden: a failed or undelivered receipt's error stays on the receipt even when
a later one (a `read`) moves its status on, and a reply whose receipt failed for any
participant says so, whatever the others got.
"""

from __future__ import annotations

import logging
from functools import cache, partial

from sqlalchemy import Connection, bindparam, case, insert, select

from .. import formats
from ..delivery import opt_outs
from ..delivery.receipts import PROBLEMS, RANK, summarize_reply
from ..logs import kv
from ..pipeline.events import Event
from ..pipeline.outcome import Kind, Outcome
from ..pipeline.router import Context, Router
from ..store.database import dialect_insert
from ..store.models import DeliveryReceipt, ReceiptEvent, Reply, utcnow
from ..twilio.error_codes import OPTED_OUT, describe

log = logging.getLogger(__name__)
router = Router()


RECEIPTS = DeliveryReceipt.__table__
HISTORY = ReceiptEvent.__table__
REPLIES = Reply.__table__
_APPEND = insert(HISTORY)
@cache
def _upsert_statement(dialect_name: str):
    """Insert a receipt, or raise its status if the new one ranks higher; a failed or
    undelivered receipt's error is kept whatever its rank. RETURNING the status kept."""
    stmt = dialect_insert(dialect_name)(RECEIPTS)
    new, old = stmt.excluded, RECEIPTS.c
    higher = old.status_rank < new.status_rank
    failure = new.error_status.is_not(None)
    return stmt.on_conflict_do_update(
        index_elements=["receipt_sid"],
        set_={"status": case((higher, new.status), else_=old.status),
              "status_rank": case((higher, new.status_rank), else_=old.status_rank),
              "error_code": case((failure, new.error_code), else_=old.error_code),
              "error_status": case((failure, new.error_status), else_=old.error_status),
              "updated_at": new.updated_at,
              "channel_message_sid": case((higher, new.channel_message_sid),
                                          else_=old.channel_message_sid)},
    ).returning(RECEIPTS.c.status)


@router.register("onDeliveryUpdated", requires=(
    "ConversationSid", "MessageSid", "DeliveryReceiptSid", "Status"))
def record_receipt(event: Event, ctx: Context) -> Outcome:
    """Store the receipt, sum up our reply's delivery, log it once stored."""
    status = event.require("Status").strip().lower()
    error_code = formats.parse_int(event.get("ErrorCode"))  # checked: see pipeline/fields.py
    fields = dict(  # named as Twilio names them, so a log search finds either
        ConversationSid=event.require("ConversationSid"), MessageSid=event.require("MessageSid"),
        ParticipantSid=event.get("ParticipantSid"),
        ChannelMessageSid=event.get("ChannelMessageSid"), Status=status,
        ErrorCode=error_code, meaning=describe(error_code),
    )
    source = "catch-up" if event.get("Source") == "catch-up" else "webhook"
    ctx.on_claim(partial(store_receipt, event.require("DeliveryReceiptSid"), fields,
                         source=source))
    problem = status in PROBLEMS
    ctx.after_commit(partial(log.log, logging.WARNING if problem else logging.INFO,
                             "delivery %s", kv(**fields)))
    return Outcome(Kind.RECEIPT, status)


def store_receipt(receipt_sid: str, fields: dict, conn: Connection, *,
                  source: str = "webhook") -> str | None:
    """Once claimed (webhook or catch-up alike): append the receipt to the history, keep
    its current status unless a later one is stored, and sum up our reply's delivery."""
    status = fields["Status"]
    problem = status in PROBLEMS
    now = utcnow()
    conn.execute(_APPEND, {
        "receipt_sid": receipt_sid, "message_sid": fields["MessageSid"],
        "conversation_sid": fields["ConversationSid"],
        "participant_sid": fields["ParticipantSid"], "status": status,
        "error_code": fields["ErrorCode"], "source": source, "received_at": now})
    kept = conn.execute(_upsert_statement(conn.dialect.name), {
        "receipt_sid": receipt_sid, "message_sid": fields["MessageSid"],
        "conversation_sid": fields["ConversationSid"],
        "participant_sid": fields["ParticipantSid"],
        "channel_message_sid": fields["ChannelMessageSid"], "status": status,
        "status_rank": RANK.get(status, 0), "error_code": fields["ErrorCode"],
        "error_status": status if problem else None, "updated_at": now,
    }).scalar()
    summarize_reply(conn, fields["MessageSid"])
    if fields["ErrorCode"] == OPTED_OUT and problem:  # not a delivered one's stray code
        record_opt_out(conn, fields)
    if kept == status:
        return None
    if problem:
        return f"status {kept} kept (a later one); the failure is recorded with its error"
    return "not stored: a later status was already recorded and is kept"


_REPLY_CUSTOMER = (select(REPLIES.c.customer, REPLIES.c.participant_sid)
                   .where(REPLIES.c.twilio_message_sid == bindparam("message_sid")))


def record_opt_out(conn: Connection, fields: dict) -> None:
    """Twilio refused our reply because its recipient opted out: the customer the reply
    answered (and the receipt's participant) get no automated reply until they opt in."""
    row = conn.execute(_REPLY_CUSTOMER, {"message_sid": fields["MessageSid"]}).first()
    addresses = [fields["ParticipantSid"]]
    # The reply's customer, when the receipt is theirs (in a group conversation another
    # participant's refusal says nothing about the customer who wrote).
    if row is not None and (not fields["ParticipantSid"] or not row.participant_sid
                            or row.participant_sid == fields["ParticipantSid"]):
        addresses += list(row)
        opt_outs.end_wait(conn, fields["ConversationSid"])  # nobody may write to them now
    opt_outs.record(conn, addresses, error_code=OPTED_OUT,
                    conversation_sid=fields["ConversationSid"])
