"""Delivery receipts: one structured log line each, the latest status kept per receipt.

Twilio sends `Status` (sent, delivered, read, failed, undelivered) and `ErrorCode`;
receipts can arrive out of order, so a status only replaces one of lower rank.
"""

from __future__ import annotations

import logging
from functools import cache, partial

from sqlalchemy import Connection, bindparam, case, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from ..error_codes import describe
from ..events import Event
from ..logs import kv
from ..models import DeliveryReceipt, Reply, utcnow
from ..router import Context, Router

log = logging.getLogger(__name__)
router = Router()

RANK = {"sent": 1, "delivered": 2, "undelivered": 3, "failed": 3, "read": 4}
PROBLEMS = {"failed", "undelivered"}


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
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = insert(RECEIPTS)
    return stmt.on_conflict_do_update(
        index_elements=["receipt_sid"],
        set_={"status": stmt.excluded.status, "status_rank": stmt.excluded.status_rank,
              "error_code": stmt.excluded.error_code, "updated_at": stmt.excluded.updated_at,
              "channel_message_sid": stmt.excluded.channel_message_sid},
        where=RECEIPTS.c.status_rank < stmt.excluded.status_rank,
    ).returning(RECEIPTS.c.id)


@router.register("onDeliveryUpdated", requires=(
    "ConversationSid", "MessageSid", "DeliveryReceiptSid", "Status"))
def record_receipt(event: Event, ctx: Context) -> str:
    """Log the receipt, store it, and move our reply's delivery status forward."""
    status = event.require("Status").strip().lower()
    error_code = parse_error_code(event.get("ErrorCode"))
    fields = dict(  # named as Twilio names them, so a log search finds either
        ConversationSid=event.require("ConversationSid"), MessageSid=event.require("MessageSid"),
        ParticipantSid=event.get("ParticipantSid"),
        ChannelMessageSid=event.get("ChannelMessageSid"), Status=status,
        ErrorCode=error_code, meaning=describe(error_code),
    )
    ctx.on_claim(partial(store_receipt, event.require("DeliveryReceiptSid"), fields))
    return f"receipt {status}"


def store_receipt(receipt_sid: str, fields: dict, conn: Connection) -> str | None:
    """Once claimed: log the receipt and keep its status unless a later one is stored."""
    status = fields["Status"]
    log.log(logging.WARNING if status in PROBLEMS else logging.INFO,
            "delivery %s", kv(**fields))
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
    return None if changed else "not stored: a later status was already recorded and is kept"


def parse_error_code(raw: str | None) -> int | None:
    """Twilio's error codes are small integers; anything else is not an error code."""
    try:
        code = int(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return code if code is not None and 0 <= code < 2**31 else None
