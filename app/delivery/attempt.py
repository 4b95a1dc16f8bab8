"""One attempt at one leased reply: look for it at Twilio when an earlier attempt may
have reached it, send it (with its media as a MediaSid), and settle the outcome.

An earlier create whose outcome is unknown (it timed out, its connection dropped, it got
a 500, 502 or 504, its sender died or stopped mid-call; see app/twilio/errors.py) may still land at
Twilio after the look-up: then the reply is not sent again until SEND_SETTLE_SECONDS
after that create began. Until then the attempt looks every LOOK_AGAIN_SECONDS and, not
finding it, is queued again without counting; found, it is recorded sent.

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
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from config import SenderSettings

from ..logs import kv
from ..observability import metrics
from ..store.database import Database
from ..store.models import utcnow
from ..twilio import marker
from ..twilio.error_codes import OPTED_OUT, describe
from ..twilio.errors import ApiError, Throttled
from . import opt_outs, outbox
from .pacing import Window

log = logging.getLogger(__name__)

# https://www.twilio.com/docs/api/errors/63016
OUTSIDE_WINDOW = 63016  # WhatsApp free text more than 24 h after the customer wrote
WHATSAPP = "WHATSAPP"
WHATSAPP_WINDOW = timedelta(hours=24)
# While an unknown create may still land: how often to look for it at Twilio.
LOOK_AGAIN_SECONDS = 5.0


@dataclass(frozen=True)
class Result:
    """What became of one leased reply. `look_again_in`: not found at Twilio while an
    earlier create may still land; queued again, due in that many seconds."""

    sent: bool
    look_again_in: float | None = None


class Attempts:
    """Sends and settles leased replies (no state of its own between replies)."""

    def __init__(self, db: Database, settings: SenderSettings, media=None):
        self.db = db
        self.media = media  # media.MediaLibrary: a reply's media as a MediaSid
        self.max_attempts = settings.max_attempts
        self.backoff_base = settings.backoff_seconds
        self.backoff_cap = settings.backoff_max_seconds
        self.lease_seconds = settings.lease_seconds
        self.settle_seconds = settings.settle_seconds
        # Uploads block (fetch, upload: each up to TWILIO_HTTP_TIMEOUT): on threads of
        # their own, never the ones that lease and settle.
        self._media_pool = ThreadPoolExecutor(2, thread_name_prefix="send-media")

    async def send(self, api, item: outbox.LeasedReply, window: Window,
                   stopping: threading.Event, answered=lambda: None) -> Result:
        """Send one leased reply and record the outcome. `answered()` is called once the
        calls to Twilio are over, before the outcome is recorded: from then on the reply
        holds no share of TWILIO_CONCURRENCY_LIMIT."""
        started = time.monotonic()
        creating = None  # when the create began (monotonic): its outcome may be unknown
        try:
            try:
                sid = await self._already_sent(api, item) if item.may_exist else None
            except ApiError as exc:
                if not exc.transient or isinstance(exc, Throttled):
                    raise
                answered()
                return await self._look_up_failed(item, exc, stopping)
            if sid is None and (left := settle_left(item, self.settle_seconds)) > 0:
                return await self._look_again_later(item, left, stopping)
            if sid is None and outside_whatsapp_window(item):
                await self._refuse_free_text(item, stopping)
                return Result(sent=False)
            if sid is None:
                media_sid = (await asyncio.get_running_loop().run_in_executor(
                    self._media_pool, self.media.resolve, item.media)
                    if item.media and self.media else None)
                creating = time.monotonic()
                sid = await api.send_message(
                    item.conversation_sid, author=item.author, body=item.body,
                    attributes=item.attributes, content_sid=item.content_sid,
                    content_variables=item.content_variables, media_sid=media_sid)
        except Throttled as exc:
            answered()
            await self._throttled(item, exc, started, window, stopping)
            return Result(sent=False)
        except ApiError as exc:
            answered()
            await self._record_failure(item, exc, stopping,
                                       unsure_since=creating if exc.unknown else None)
            return Result(sent=False)
        except asyncio.CancelledError:  # stopping, and the call outlived the grace period
            await self._release(item, stopping, creating)
            raise
        answered()
        window.succeeded()
        dry_run = bool(getattr(api, "dry_run", False))
        kept = await self._record(stopping, outbox.mark_sent, item, sid, dry_run=dry_run)
        if item.queued_at is not None:
            metrics.reply_sent(max(0.0, (utcnow() - item.queued_at).total_seconds()),
                               dry_run=dry_run)
        log.info("reply sent %s", kv(
            reply_id=item.id, conversation=item.conversation_sid, in_reply_to=item.in_reply_to,
            message_sid=sid, attempt=item.attempt, content_sid=item.content_sid,
            dry_run=api.dry_run or None,
            note=None if kept else "another sender took the reply over meanwhile"))
        return Result(sent=True)

    async def _record(self, stopping: threading.Event, settle, item: outbox.LeasedReply,
                      *args, **kwargs) -> bool:
        """Record a send's outcome, riding out a short database outage within the lease.

        Twilio has the reply already: if recording gave up at once, the reply would sit
        until its lease ends. Raises the last error if the database stays away.
        """
        deadline = time.monotonic() + self.lease_seconds / 2
        delay = 0.2
        while True:
            try:
                # Ordered by the conversation, like the webhooks' units: an opt-out
                # updates its row (its wait for an agent ends).
                return await asyncio.to_thread(
                    self.db.group_commit.run, lambda conn: settle(conn, item, *args, **kwargs),
                    item.conversation_sid or "")
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
                # How long after an unknown create began it was found: near
                # SEND_SETTLE_SECONDS, creates come close to outlasting the settle time.
                after = (f"{(item.leased_at - item.unsure_at).total_seconds():.1f}s"
                         if item.unsure_at and item.leased_at else None)
                log.info("reply found already sent %s", kv(
                    reply_id=item.id, in_reply_to=item.in_reply_to, message_sid=message.sid,
                    after=after))
                return message.sid
        return None

    async def _look_up_failed(self, item: outbox.LeasedReply, exc: ApiError,
                              stopping: threading.Event) -> Result:
        """The look for an earlier attempt's reply at Twilio failed (a timeout, a 5xx):
        nothing was sent, and whether Twilio has the reply is still unknown. Look again
        after a backoff; like a 429 the attempt does not count, so a slow Twilio cannot
        use up a reply's attempts and leave one it did deliver marked failed."""
        delay = outbox.backoff(max(1, item.attempt_in_round), self.backoff_base,
                               self.backoff_cap)
        await self._record(stopping, outbox.mark_untried, item, delay, exc.code,
                           f"could not look for it at Twilio: {exc.message}")
        metrics.reply_retried()
        log.warning("reply not looked up at Twilio, will look again %s", kv(
            reply_id=item.id, conversation=item.conversation_sid, status=exc.status,
            error=exc.message, retry_in=f"{delay:.2f}s"))
        return Result(sent=False)

    async def _look_again_later(self, item: outbox.LeasedReply, left: float,
                                stopping: threading.Event) -> Result:
        """Not found, but an earlier create may still land: no resend yet. Look again in
        a few seconds, and once more when the settle time is over (then, not found, it
        is sent); the attempt does not count."""
        delay = min(LOOK_AGAIN_SECONDS, left)
        await self._record(stopping, outbox.mark_settling, item, delay)
        log.info("reply not found at Twilio yet, not sending it again while an earlier "
                 "attempt may still land %s", kv(
                     reply_id=item.id, conversation=item.conversation_sid,
                     in_reply_to=item.in_reply_to, unsure_since=f"{item.unsure_at:%H:%M:%S.%f}",
                     settle=f"{self.settle_seconds:g}s", left=f"{left:.2f}s",
                     look_again_in=f"{delay:.2f}s"))
        return Result(sent=False, look_again_in=delay)

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

    async def _release(self, item: outbox.LeasedReply, stopping: threading.Event,
                       creating: float | None) -> None:
        """Stopping mid-call: queue the reply again now. Stopped during the create, its
        outcome is unknown: the next attempt looks at Twilio first and waits the settle
        time before sending again."""
        try:
            await self._record(stopping, outbox.mark_retry, item, 0.0, None,
                               "sender stopped while the call was in flight",
                               unsure_since=creating)
            log.warning("reply released by a stopping sender %s", kv(
                reply_id=item.id, unknown_outcome=creating is not None))
        except SQLAlchemyError:
            pass  # its lease runs out and another sender takes it over

    async def _record_failure(self, item: outbox.LeasedReply, exc: ApiError,
                              stopping: threading.Event, *,
                              unsure_since: float | None = None) -> None:
        fields = dict(reply_id=item.id, conversation=item.conversation_sid,
                      in_reply_to=item.in_reply_to, attempt=item.attempt,
                      status=exc.status, code=exc.code, error=exc.message)
        if item.retry_from:  # requeued: say which attempt of the new round this was
            fields["attempt_in_round"] = item.attempt_in_round
        # A round is SEND_MAX_ATTEMPTS attempts; an operator's requeue starts another.
        if exc.transient and item.attempt_in_round < self.max_attempts:
            delay = outbox.backoff(item.attempt_in_round, self.backoff_base, self.backoff_cap)
            await self._record(stopping, outbox.mark_retry, item, delay, exc.code, exc.message,
                               unsure_since=unsure_since)
            metrics.reply_retried()
            log.warning("reply send failed, will retry %s", kv(**fields, retry_in=f"{delay:.2f}s"))
            return
        if exc.code == OPTED_OUT:
            await self._record(stopping, _failed_and_opted_out, item, exc.code, exc.message)
            fields["opted_out"] = ",".join(a for a in item.addresses if a) or None
        else:
            await self._record(stopping, outbox.mark_failed, item, exc.code, exc.message,
                               unsure_since=unsure_since)
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


def settle_left(item: outbox.LeasedReply, settle_seconds: float) -> float:
    """Seconds before the reply, not found at Twilio, may be sent again (0: now).

    An earlier create whose outcome is unknown, begun at `unsure_at`, may land until
    `settle_seconds` after it. "Now" is the database's clock when the reply was leased
    (`leased_at`), a moment before the look-up: so once this is 0, the look-up that
    found nothing came after the settle time.
    """
    if item.unsure_at is None or item.leased_at is None:
        return 0.0
    settled = item.unsure_at + timedelta(seconds=settle_seconds)
    return max(0.0, (settled - item.leased_at).total_seconds())


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
    opt_outs.end_wait(conn, item.conversation_sid)  # nobody may write to them now
    # Recorded even if another sender took the reply over: Twilio's refusal is a fact.
    opt_outs.record(conn, item.addresses, error_code=code,
                    conversation_sid=item.conversation_sid)
    return kept
