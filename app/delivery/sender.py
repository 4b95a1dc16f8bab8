"""Sender: sends queued replies after the webhook has been answered.

Runs inside each web process (default) or in its own process (`flask --app wsgi
sender`), in both cases as a loop the process's supervisor (jobs/supervisor.py) starts
and restarts. It wakes at once when a reply is queued in this process, and polls every
SENDER_POLL_SECONDS for the rest (retries that became due, replies queued by other
processes, leases left by a sender that died). Sends run on a small thread pool
because Twilio's latency, not our CPU, bounds a sender.

Two refusals are settled here. WhatsApp free text more than 24 hours after the customer
wrote fails without asking Twilio (it would refuse it, 63016). A send Twilio refuses
because the customer replied STOP (21610) fails with the customer's opt-out recorded in
the same transaction, so that no rule answers them again until they opt in.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from config import SenderSettings

from ..logs import kv
from ..store.database import Database
from . import marker, opt_outs, outbox
from .client import ApiError
from .error_codes import describe

log = logging.getLogger(__name__)

# https://www.twilio.com/docs/api/errors/21610 and /63016
OPTED_OUT = 21610  # the recipient replied STOP: record it, never retry
OUTSIDE_WINDOW = 63016  # WhatsApp free text more than 24 h after the customer wrote
WHATSAPP = "WHATSAPP"
WHATSAPP_WINDOW = timedelta(hours=24)


class Sender:
    name = "sender"

    def __init__(self, db: Database, client, settings: SenderSettings):
        self.db = db
        self.client = client
        self.concurrency = settings.concurrency
        self.poll_seconds = settings.poll_seconds
        self.max_attempts = settings.max_attempts
        self.backoff_base = settings.backoff_seconds
        self.backoff_cap = settings.backoff_max_seconds
        self.lease_seconds = settings.lease_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._inflight = 0
        self._next_lease_check = 0.0  # monotonic time of the next look for lost leases
        self._pool: ThreadPoolExecutor | None = None

    def wake(self) -> None:
        """A reply was queued: lease it now, unless every slot is busy (a finishing send
        wakes the loop anyway, so waking it now would only cost a thread switch)."""
        if self._inflight < self.concurrency:
            self._wake.set()

    def interrupt(self) -> None:
        """Wake the loop whatever it is doing: its supervisor is stopping it."""
        self._wake.set()

    def run(self, stopping: threading.Event) -> None:
        """Send until `stopping` is set, then let the sends in flight finish."""
        self._stopping = stopping
        self._inflight = 0
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="send")
        try:
            self._loop()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=False)

    # -- the loop -----------------------------------------------------------------

    def _loop(self) -> None:
        """Lease due replies while there are free slots; sleep until woken or polled."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                leased = self._lease(self._free_slots())
            except SQLAlchemyError as exc:
                log.warning("sender cannot reach the database: %s", exc.__class__.__name__)
                leased = []
            with self._lock:
                self._inflight += len(leased)
            for item in leased:
                self._pool.submit(self._send_and_release, item)
            if not leased or self._free_slots() == 0:
                self._wake.wait(self.poll_seconds)

    def run_until_idle(self) -> int:
        """Send everything due now in this thread, one by one; return how many were tried."""
        tried = 0
        while leased := self._lease(self.concurrency, expired=True):
            for item in leased:
                self.send(item)
                tried += 1
        return tried

    def _free_slots(self) -> int:
        with self._lock:
            return self.concurrency - self._inflight

    def _lease(self, limit: int, *, expired: bool | None = None) -> list[outbox.LeasedReply]:
        """Lease up to `limit` due replies; look for lost leases when told, or once per poll."""
        if limit <= 0:
            return []
        now = time.monotonic()
        if expired is None:
            expired = now >= self._next_lease_check
        if expired:
            self._next_lease_check = now + self.poll_seconds
        with self.db.transaction() as conn:
            return outbox.lease_due(conn, limit, self.lease_seconds, expired=expired)

    def _send_and_release(self, item: outbox.LeasedReply) -> None:
        try:
            self.send(item)
        except SQLAlchemyError as exc:
            log.warning("could not record the outcome of reply %s (database: %s); it will be "
                        "taken over when its lease ends", item.id, exc.__class__.__name__)
        except Exception:  # nobody awaits this thread: log, the lease brings it back
            log.exception("sending reply %s failed unexpectedly", item.id)
        finally:
            with self._lock:
                self._inflight -= 1
            self._wake.set()

    # -- one reply ----------------------------------------------------------------

    def send(self, item: outbox.LeasedReply) -> None:
        """Send one leased reply and record the outcome."""
        try:
            sid = self._already_sent(item) if item.may_exist else None
            if sid is None and outside_whatsapp_window(item):
                self._refuse_free_text(item)
                return
            if sid is None:
                sid = self.client.send_message(
                    item.conversation_sid, author=item.author, body=item.body,
                    attributes=item.attributes, content_sid=item.content_sid,
                    content_variables=item.content_variables)
        except ApiError as exc:
            self._record_failure(item, exc)
            return
        kept = self._record(outbox.mark_sent, item, sid)
        log.info("reply sent %s", kv(
            reply_id=item.id, conversation=item.conversation_sid, in_reply_to=item.in_reply_to,
            message_sid=sid, attempt=item.attempt, content_sid=item.content_sid,
            dry_run=self.client.dry_run or None,
            note=None if kept else "another sender took the reply over meanwhile"))

    def _record(self, settle, item: outbox.LeasedReply, *args) -> bool:
        """Record a send's outcome, riding out a short database outage within the lease.

        Twilio has the reply already: if recording gave up at once, the reply would sit
        until its lease ends. Raises the last error if the database stays away.
        """
        deadline = time.monotonic() + self.lease_seconds / 2
        delay = 0.2
        while True:
            try:
                return self.db.group_commit.run(lambda conn: settle(conn, item, *args))
            except SQLAlchemyError:
                if time.monotonic() + delay > deadline or self._stopping.is_set():
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _already_sent(self, item: outbox.LeasedReply) -> str | None:
        """Find the reply among the conversation's newest messages, if Twilio has it already.

        Closes the at-least-once window: a timeout, a 5xx or a dead sender can hide that
        Twilio accepted the reply; the reply's `inReplyTo` attribute identifies it.
        """
        for message in self.client.recent_messages(item.conversation_sid, limit=50):
            if marker.replied_to(message.attributes) == item.in_reply_to:
                log.info("reply found already sent %s", kv(
                    reply_id=item.id, message_sid=message.sid))
                return message.sid
        return None

    def _record_failure(self, item: outbox.LeasedReply, exc: ApiError) -> None:
        fields = dict(reply_id=item.id, conversation=item.conversation_sid,
                      in_reply_to=item.in_reply_to, attempt=item.attempt,
                      status=exc.status, code=exc.code, error=exc.message)
        if item.retry_from:  # requeued: say which attempt of the new round this was
            fields["attempt_in_round"] = item.attempt_in_round
        # A round is SEND_MAX_ATTEMPTS attempts; an operator's requeue starts another.
        if exc.transient and item.attempt_in_round < self.max_attempts:
            delay = outbox.backoff(item.attempt_in_round, self.backoff_base, self.backoff_cap)
            self._record(outbox.mark_retry, item, delay, exc.code, exc.message)
            log.warning("reply send failed, will retry %s", kv(**fields, retry_in=f"{delay:.2f}s"))
            return
        if exc.code == OPTED_OUT:
            self._record(_failed_and_opted_out, item, exc.code, exc.message)
            fields["opted_out"] = ",".join(a for a in item.addresses if a) or None
        else:
            self._record(outbox.mark_failed, item, exc.code, exc.message)
        reason = "gave up after retries" if exc.transient else "permanent error"
        log.error("reply failed %s", kv(**fields, reason=reason, meaning=describe(exc.code)))

    def _refuse_free_text(self, item: outbox.LeasedReply) -> None:
        """Fail a WhatsApp text reply that is too late: Twilio would refuse it (63016)."""
        message = (f"outside WhatsApp's 24-hour window: free text not sent (the customer "
                   f"wrote at {item.message_at:%Y-%m-%d %H:%M:%S} UTC; only an approved "
                   f"template may go out now)")
        self._record(outbox.mark_failed, item, OUTSIDE_WINDOW, message)
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
