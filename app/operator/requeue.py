"""A failed reply sent again: one reply, or every failed one. Logged with who asked,
and the sender of this process woken, so the reply goes out now, not at its next poll
(a sender in another process finds it at its next poll: SENDER_POLL_SECONDS)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from ..delivery import outbox
from ..logs import kv
from ..services import Services
from ..store.models import Reply, ReplyStatus
from ..twilio.error_codes import describe

log = logging.getLogger(__name__)
REPLIES = Reply.__table__


class NotRequeueable(Exception):
    """The reply does not exist, or it did not fail (only failed replies go again)."""


class NoSuchReply(NotRequeueable):
    """The reply does not exist (or was pruned): the API's 404."""


def requeue(bot: Services, reply_id: int | None, *, by: str) -> int:
    """Queue failed reply `reply_id` (None: every failed reply) for a new round of
    attempts, the first of which looks for it at Twilio before sending; return how many.
    Raise NotRequeueable with the reason when reply `reply_id` cannot go again."""
    with bot.db.transaction() as conn:
        count = outbox.requeue_failed(conn, reply_id)
        if reply_id is not None and count == 0:
            status = conn.execute(select(REPLIES.c.status)
                                  .where(REPLIES.c.id == reply_id)).scalar()
            if status is None:
                raise NoSuchReply(f"reply {reply_id} does not exist")
            code, delivery, delivery_code = conn.execute(
                select(REPLIES.c.error_code, REPLIES.c.delivery_status,
                       REPLIES.c.delivery_error_code).where(REPLIES.c.id == reply_id)).one()
            if status == ReplyStatus.FAILED:  # with an error sending again cannot fix
                raise NotRequeueable(f"reply {reply_id} failed with error {code} "
                                     f"({describe(code)}): sending it again cannot help")
            if delivery in ("failed", "undelivered"):
                raise NotRequeueable(
                    f"reply {reply_id} was sent, then {delivery} (error {delivery_code}): "
                    "sending it again is a new message to the customer, an agent's call; "
                    "nothing to requeue")
            raise NotRequeueable(f"reply {reply_id} is {status}, not failed: nothing to requeue")
    if reply_id is not None:
        log.info("reply requeued %s", kv(reply_id=reply_id, by=by))
    else:
        log.info("failed replies requeued %s", kv(count=count, by=by))
    if count:
        bot.sender.wake()
    return count
