"""One attempt at one leased reply: look for it at Twilio when an earlier attempt may
have reached it, send it (with its media as a MediaSid), and settle the outcome.

Settled here: sent; a 429 (the window halves, the reply comes back after Retry-After,
the attempt does not count); a transient failure (retried with backoff, up to
SEND_MAX_ATTEMPTS a round); a permanent one. Two refusals too: WhatsApp free text more
than 24 hours after the customer wrote fails without asking Twilio (it would refuse it,
63016); a send Twilio refuses because the customer replied STOP (21610) fails with the
customer's opt-out recorded in the same transaction, so that no rule answers them again
until they opt in.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from config import SenderSettings

from ..logs import kv
from ..observability import metrics
from ..store.database import Database
from ..store.models import utcnow
from . import marker, opt_outs, outbox
from .async_client import Throttled
from .client import ApiError
from .error_codes import describe
from .pacing import Window

log = logging.getLogger(__name__)

# https://www.twilio.com/docs/api/errors/21610 and /63016
OPTED_OUT = 21610  # the recipient replied STOP: record it, never retry
OUTSIDE_WINDOW = 63016  # WhatsApp free text more than 24 h after the customer wrote
WHATSAPP = "WHATSAPP"
WHATSAPP_WINDOW = timedelta(hours=24)


class Attempts:
    """Sends and settles leased replies (no state of its own between replies)."""

    def __init__(self, db: Database, settings: SenderSettings, media=None):
        self.db = db
        self.media = media  # media.MediaLibrary: a reply's media as a MediaSid
        self.max_attempts = settings.max_attempts
        self.backoff_base = settings.backoff_seconds
        self.backoff_cap = settings.backoff_max_seconds
        self.lease_seconds = settings.lease_seconds
        # Uploads block (fetch, upload: each up to TWILIO_HTTP_TIMEOUT): on threads of
        # their own, never the ones that lease and settle.
        self._media_pool = ThreadPoolExecutor(2, thread_name_prefix="send-media")

    async def send(self, api, item: outbox.LeasedReply, window: Window,
                   stopping: threading.Event) -> bool:
        """Send one leased reply and record the outcome; return whether it went out."""
        started = time.monotonic()
        try:
            sid = await self._already_sent(api, item) if item.may_exist else None
            if sid is None and outside_whatsapp_window(item):
                await self._refuse_free_text(item, stopping)
                return False
            if sid is None:
                media_sid = (await asyncio.get_running_loop().run_in_executor(
                    self._media_pool, self.media.resolve, item.media)
                    if item.media and self.media else None)
                sid = await api.send_message(
                    item.conversation_sid, author=item.author, body=item.body,
                    attributes=item.attributes, content_sid=item.content_sid,
                    content_variables=item.content_variables, media_sid=media_sid)
        except Throttled as exc:
            await self._throttled(item, exc, started, window, stopping)
            return False
        except ApiError as exc:
            await self._record_failure(item, exc, stopping)
            return False
        window.succeeded()
        kept = await self._record(stopping, outbox.mark_sent, item, sid)
        if item.queued_at is not None:
            metrics.reply_sent(max(0.0, (utcnow() - item.queued_at).total_seconds()))
        log.info("reply sent %s", kv(
            reply_id=item.id, conversation=item.conversation_sid, in_reply_to=item.in_reply_to,
            message_sid=sid, attempt=item.attempt, content_sid=item.content_sid,
            dry_run=api.dry_run or None,
            note=None if kept else "another sender took the reply over meanwhile"))
        return True

    async def _record(self, stopping: threading.Event, settle, item: outbox.LeasedReply,
                      *args) -> bool:
        """Record a send's outcome, riding out a short database outage within the lease.

        Twilio has the reply already: if recording gave up at once, the reply would sit
        until its lease ends. Raises the last error if the database stays away.
        """
        deadline = time.monotonic() + self.lease_seconds / 2
        delay = 0.2
        while True:
            try:
                return await asyncio.to_thread(
                    self.db.group_commit.run, lambda conn: settle(conn, item, *args))
            except SQLAlchemyError:
                if time.monotonic() + delay > deadline or stopping.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _already_sent(self, api, item: outbox.LeasedReply) -> str | None:
        """Find the reply among the conversation's newest messages, if Twilio has it already.

        Closes the at-least-once window: a timeout, a 5xx or a dead sender can hide that
        Twilio accepted the reply; the reply's `inReplyTo` attribute identifies it.
        """
        for message in await api.recent_messages(item.conversation_sid, limit=50):
            if marker.replied_to(message.attributes) == item.in_reply_to:
                log.info("reply found already sent %s", kv(
                    reply_id=item.id, message_sid=message.sid))
                return message.sid
        return None

    async def _throttled(self, item: outbox.LeasedReply, exc: Throttled, started: float,
                         window: Window, stopping: threading.Event) -> None:
        """429: fewer calls at once, and this reply again after Retry-After (or a first
        retry's backoff); the attempt does not count, since Twilio did nothing."""
        window.throttled(started, exc.retry_after)
        delay = exc.retry_after or outbox.backoff(1, self.backoff_base, self.backoff_cap)
        await self._record(stopping, outbox.mark_untried, item, delay, exc.code, exc.message)
        metrics.reply_retried()
        log.warning("reply throttled by Twilio, will retry %s", kv(
            reply_id=item.id, conversation=item.conversation_sid, code=exc.code,
            retry_in=f"{delay:.2f}s", concurrency=window.limit))

    async def release(self, item: outbox.LeasedReply, stopping: threading.Event) -> None:
        """Stopping mid-call: queue the reply again now (the next attempt looks at Twilio
        first, since this one may have reached it)."""
        try:
            await self._record(stopping, outbox.mark_retry, item, 0.0, None,
                               "sender stopped while the call was in flight")
            log.warning("reply released by a stopping sender %s", kv(reply_id=item.id))
        except SQLAlchemyError:
            pass  # its lease runs out and another sender takes it over

    async def _record_failure(self, item: outbox.LeasedReply, exc: ApiError,
                              stopping: threading.Event) -> None:
        fields = dict(reply_id=item.id, conversation=item.conversation_sid,
                      in_reply_to=item.in_reply_to, attempt=item.attempt,
                      status=exc.status, code=exc.code, error=exc.message)
        if item.retry_from:  # requeued: say which attempt of the new round this was
            fields["attempt_in_round"] = item.attempt_in_round
        # A round is SEND_MAX_ATTEMPTS attempts; an operator's requeue starts another.
        if exc.transient and item.attempt_in_round < self.max_attempts:
            delay = outbox.backoff(item.attempt_in_round, self.backoff_base, self.backoff_cap)
            await self._record(stopping, outbox.mark_retry, item, delay, exc.code, exc.message)
            metrics.reply_retried()
            log.warning("reply send failed, will retry %s", kv(**fields, retry_in=f"{delay:.2f}s"))
            return
        if exc.code == OPTED_OUT:
            await self._record(stopping, _failed_and_opted_out, item, exc.code, exc.message)
            fields["opted_out"] = ",".join(a for a in item.addresses if a) or None
        else:
            await self._record(stopping, outbox.mark_failed, item, exc.code, exc.message)
        metrics.reply_failed(exc.code)
        reason = "gave up after retries" if exc.transient else "permanent error"
        log.error("reply failed %s", kv(**fields, reason=reason, meaning=describe(exc.code)))

    async def _refuse_free_text(self, item: outbox.LeasedReply,
                                stopping: threading.Event) -> None:
        """Fail a WhatsApp text reply that is too late: Twilio would refuse it (63016)."""
        message = (f"outside WhatsApp's 24-hour window: free text not sent (the customer "
                   f"wrote at {item.message_at:%Y-%m-%d %H:%M:%S} UTC; only an approved "
                   f"template may go out now)")
        await self._record(stopping, outbox.mark_failed, item, OUTSIDE_WINDOW, message)
        metrics.reply_failed(OUTSIDE_WINDOW)
        log.error("reply failed %s", kv(
            reply_id=item.id, conversation=item.conversation_sid, in_reply_to=item.in_reply_to,
            attempt=item.attempt, code=OUTSIDE_WINDOW, reason="outside WhatsApp's 24-hour window",
            meaning=describe(OUTSIDE_WINDOW)))


def outside_whatsapp_window(item: outbox.LeasedReply) -> bool:
    """Whether the reply is WhatsApp free text more than 24 h after the customer wrote.

    "Now" is the database's clock when the reply was leased (`leased_at`), a moment
    before this send: the sender host's clock may be off, the database's is the one
    every host shares (store/clock.py). A template (`content_sid`) may go out any time.
    """
    if item.content_sid or item.message_at is None or item.leased_at is None:
        return False
    if (item.channel or "").upper() != WHATSAPP:
        return False
    return item.leased_at - item.message_at > WHATSAPP_WINDOW


def _failed_and_opted_out(conn, item: outbox.LeasedReply, code: int, message: str) -> bool:
    """Mark the reply failed and record its customer's opt-out, in one transaction."""
    kept = outbox.mark_failed(conn, item, code, message)
    # Recorded even if another sender took the reply over: Twilio's refusal is a fact.
    opt_outs.record(conn, item.addresses, error_code=code,
                    conversation_sid=item.conversation_sid)
    return kept
