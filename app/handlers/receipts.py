"""Delivery receipts: one structured log line each, the latest status kept per receipt.

Twilio sends `Status` (sent, delivered, read, failed, undelivered) and `ErrorCode`;
receipts can arrive out of order, so a status only replaces one of lower rank.
"""

from __future__ import annotations

import logging
from functools import cache, partial

from sqlalchemy import Connection, bindparam, case, or_, select, update

from ..delivery import opt_outs
from ..delivery.error_codes import describe
from ..logs import kv
from ..pipeline.events import Event
from ..pipeline.outcome import Kind, Outcome
from ..pipeline.router import Context, Router
from ..store.database import dialect_insert
from ..store.models import DeliveryReceipt, ReceiptStatus, Reply, utcnow

log = logging.getLogger(__name__)
router = Router()

RANK = {status.value: status.rank for status in ReceiptStatus}


RECEIPTS = DeliveryReceipt.__table__
REPLIES = Reply.__table__
# Our reply's delivery status only moves forward too.
_ADVANCE_REPLY = (
    update(REPLIES)
    .where(REPLIES.c.twilio_message_sid == bindparam("receipt_message_sid"),
           or_(REPLIES.c.delivery_status.is_(None),
               case(RANK, value=REPLIES.c.delivery_status, else_=0) < bindparam("new_rank")))
    .values(delivery_status=bindparam("new_status"))
)


@cache
def _upsert_statement(dialect_name: str):
    """Insert a receipt, or raise its status if the new one ranks higher."""
    stmt = dialect_insert(dialect_name)(RECEIPTS)
    return stmt.on_conflict_do_update(
        index_elements=["receipt_sid"],
        set_={"status": stmt.excluded.status, "status_rank": stmt.excluded.status_rank,
              "error_code": stmt.excluded.error_code, "updated_at": stmt.excluded.updated_at,
              "channel_message_sid": stmt.excluded.channel_message_sid},
        where=RECEIPTS.c.status_rank < stmt.excluded.status_rank,
    ).returning(RECEIPTS.c.id)


@router.register("onDeliveryUpdated", requires=(
    "ConversationSid", "MessageSid", "DeliveryReceiptSid", "Status"))
def record_receipt(event: Event, ctx: Context) -> Outcome:
    """Store the receipt, move our reply's delivery status forward, log it once stored."""
    status = event.require("Status").strip().lower()
    error_code = parse_error_code(event.get("ErrorCode"))
    fields = dict(  # named as Twilio names them, so a log search finds either
        ConversationSid=event.require("ConversationSid"), MessageSid=event.require("MessageSid"),
        ParticipantSid=event.get("ParticipantSid"),
        ChannelMessageSid=event.get("ChannelMessageSid"), Status=status,
        ErrorCode=error_code, meaning=describe(error_code),
    )
    ctx.on_claim(partial(store_receipt, event.require("DeliveryReceiptSid"), fields))
    problem = status in (ReceiptStatus.FAILED, ReceiptStatus.UNDELIVERED)
    ctx.after_commit(partial(log.log, logging.WARNING if problem else logging.INFO,
                             "delivery %s", kv(**fields)))
    return Outcome(Kind.RECEIPT, status)


def store_receipt(receipt_sid: str, fields: dict, conn: Connection) -> str | None:
    """Once claimed: keep the receipt's status unless a later one is stored."""
    status = fields["Status"]
    rank = RANK.get(status, 0)
    changed = conn.execute(_upsert_statement(conn.dialect.name), {
        "receipt_sid": receipt_sid, "message_sid": fields["MessageSid"],
        "conversation_sid": fields["ConversationSid"],
        "participant_sid": fields["ParticipantSid"],
        "channel_message_sid": fields["ChannelMessageSid"], "status": status,
        "status_rank": rank, "error_code": fields["ErrorCode"], "updated_at": utcnow(),
    }).scalar() is not None
    conn.execute(_ADVANCE_REPLY, {"receipt_message_sid": fields["MessageSid"],
                                  "new_status": status, "new_rank": rank})
    if fields["ErrorCode"] == OPTED_OUT_ERROR:
        record_opt_out(conn, fields)
    return None if changed else "not stored: a later status was already recorded and is kept"


OPTED_OUT_ERROR = 21610  # the recipient replied STOP: do not message again
_REPLY_CUSTOMER = (select(REPLIES.c.customer, REPLIES.c.participant_sid)
                   .where(REPLIES.c.twilio_message_sid == bindparam("message_sid")))


def record_opt_out(conn: Connection, fields: dict) -> None:
    """Twilio refused our reply because its recipient opted out: the customer the reply
    answered (and the receipt's participant) get no automated reply until they opt in."""
    row = conn.execute(_REPLY_CUSTOMER, {"message_sid": fields["MessageSid"]}).first()
    addresses = [fields["ParticipantSid"], *(row or ())]
    opt_outs.record(conn, addresses, error_code=OPTED_OUT_ERROR,
                    conversation_sid=fields["ConversationSid"])


def parse_error_code(raw: str | None) -> int | None:
    """Twilio's error codes are small integers; anything else is not an error code."""
    try:
        code = int(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return code if code is not None and 0 <= code < 2**31 else None
