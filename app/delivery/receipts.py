"""A reply's delivery summed up over its receipts (every participant's), for the
receipts handler and for the sender: a receipt may arrive before the sender has
recorded the MessageSid Twilio gave it, and must not be lost on the reply."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, or_, select, update

from ..store.models import DeliveryReceipt, ReceiptStatus, Reply
from ..twilio.error_codes import OPTED_OUT

RANK = {status.value: status.rank for status in ReceiptStatus}
PROBLEMS = (ReceiptStatus.FAILED.value, ReceiptStatus.UNDELIVERED.value)
RECEIPTS = DeliveryReceipt.__table__
REPLIES = Reply.__table__
# The reply's row is its receipts' lock: two receipts of one reply committing at once
# each see the other's before summing up (FOR UPDATE; SQLite has one writer anyway).
_LOCK_REPLY = (select(REPLIES.c.id).where(REPLIES.c.twilio_message_sid == bindparam("m"))
               .with_for_update())
_RECEIPTS_OF = (select(RECEIPTS.c.status, RECEIPTS.c.error_status, RECEIPTS.c.error_code)
                .where(RECEIPTS.c.message_sid == bindparam("m")))
_ANY_RECEIPT = select(RECEIPTS.c.id).where(RECEIPTS.c.message_sid == bindparam("m")).limit(1)
_SUMMARY = (update(REPLIES).where(REPLIES.c.id == bindparam("reply_id"))
            .values(delivery_status=bindparam("new_status"),
                    delivery_error_code=bindparam("new_code")))


def summarize_reply(conn: Connection, message_sid: str) -> None:
    """Our reply's delivery, over every participant's receipt: failed or undelivered if
    any one's current status is, else the furthest status; its error code is that of a
    receipt that failed (now, else earlier), so `read` never hides another's `failed`."""
    reply_id = conn.execute(_LOCK_REPLY, {"m": message_sid}).scalar()
    if reply_id is None:  # not one of our replies (an agent's message, say)
        return
    rows = conn.execute(_RECEIPTS_OF, {"m": message_sid}).all()
    failing = [r for r in rows if r.status in PROBLEMS]
    erred = failing or [r for r in rows if r.error_status]
    if failing:
        status = min(r.status for r in failing)  # "failed" before "undelivered"
    else:
        status = max((r.status for r in rows), key=lambda s: RANK.get(s, 0), default=None)
    code = next((r.error_code for r in erred if r.error_code), None)
    conn.execute(_SUMMARY, {"reply_id": reply_id, "new_status": status, "new_code": code})


def summarize_early_receipts(conn: Connection, message_sid: str) -> bool:
    """Once a reply's MessageSid is recorded: sum up receipts that came before it (one
    indexed probe when, as almost always, there are none). Whether there were any."""
    if conn.execute(_ANY_RECEIPT, {"m": message_sid}).first() is None:
        return False
    summarize_reply(conn, message_sid)
    return True


def early_opt_out(conn: Connection, message_sid: str, participant_sid: str | None) -> bool:
    """Whether a receipt that came before the reply's MessageSid was recorded said 21610
    for the reply's customer (their participant, or any when it is not known): the
    receipt could not name the customer then."""
    query = select(RECEIPTS.c.id).where(RECEIPTS.c.message_sid == message_sid,
                                        RECEIPTS.c.error_code == OPTED_OUT)
    if participant_sid:
        query = query.where(or_(RECEIPTS.c.participant_sid == participant_sid,
                                RECEIPTS.c.participant_sid.is_(None)))
    return conn.execute(query.limit(1)).first() is not None
