"""Sender: sends queued replies after the webhook has been answered.

Runs as threads inside each web process (default) or as its own process
(`flask --app wsgi sender`). It wakes at once when a reply is queued in this process,
and polls every SENDER_POLL_SECONDS for the rest (retries that became due, replies
queued by other processes, leases left by a sender that died). Sends run on a small
thread pool because Twilio's latency, not our CPU, bounds a sender.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from . import outbox
from .conversations import ApiError
from .db import Database
from .error_codes import describe
from .logs import kv

log = logging.getLogger(__name__)


class Sender:
    def __init__(self, db: Database, client, settings: dict, jobs=None):
        self.db = db
        self.jobs = jobs  # periodic jobs run beside every sender
        self.client = client
        self.concurrency = settings["SENDER_CONCURRENCY"]
        self.poll_seconds = settings["SENDER_POLL_SECONDS"]
        self.max_attempts = settings["SEND_MAX_ATTEMPTS"]
        self.backoff_base = settings["SEND_BACKOFF_SECONDS"]
        self.backoff_cap = settings["SEND_BACKOFF_MAX_SECONDS"]
        self.lease_seconds = settings["SEND_LEASE_SECONDS"]
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._inflight = 0
        self._next_lease_check = 0.0  # monotonic time of the next look for lost leases
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the background threads once per process (a forked child starts its own)."""
        if self._pid == os.getpid():  # the common case, on every request: no lock
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stopping.clear()
            self._inflight = 0
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="send")
            self._thread = threading.Thread(target=self.run, name="sender", daemon=True)
            self._thread.start()
            if self.jobs:
                self.jobs.start()
        log.info("sender started %s", kv(pid=self._pid, concurrency=self.concurrency))

    def stop(self, timeout: float = 25.0) -> None:
        """Stop claiming, and wait for sends in flight (bounded) so none is cut off."""
        if self._pid != os.getpid() or self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        if self.jobs:
            self.jobs.stop()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._pid = None
        log.info("sender stopped")

    def wake(self) -> None:
        """A reply was queued: claim it now, unless every slot is busy (a finishing send
        wakes the loop anyway, so waking it now would only cost a thread switch)."""
        if self._inflight < self.concurrency:
            self._wake.set()

    def serve_forever(self) -> None:
        """Run in the foreground until SIGTERM or SIGINT, then stop gracefully."""
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.start()
        while not stop.wait(1.0):
            if not self.running:  # the loop died: exit non-zero so a supervisor restarts us
                raise SystemExit("sender loop stopped unexpectedly")
        self.stop()

    @property
    def running(self) -> bool:
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    # -- the loop -----------------------------------------------------------------

    def run(self) -> None:
        """Claim due replies while there are free slots; sleep until woken or polled."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                claimed = self._claim(self._free_slots())
            except SQLAlchemyError as exc:
                log.warning("sender cannot reach the database: %s", exc.__class__.__name__)
                claimed = []
            with self._lock:
                self._inflight += len(claimed)
            for item in claimed:
                self._pool.submit(self._send_and_release, item)
            if not claimed or self._free_slots() == 0:
                self._wake.wait(self.poll_seconds)

    def run_until_idle(self) -> int:
        """Send everything due now in this thread, one by one; return how many were tried."""
        tried = 0
        while claimed := self._claim(self.concurrency, expired=True):
            for item in claimed:
                self.send(item)
                tried += 1
        return tried

    def _free_slots(self) -> int:
        with self._lock:
            return self.concurrency - self._inflight

    def _claim(self, limit: int, *, expired: bool | None = None) -> list[outbox.Claimed]:
        """Claim up to `limit` due replies; look for lost leases when told, or once per poll."""
        if limit <= 0:
            return []
        now = time.monotonic()
        if expired is None:
            expired = now >= self._next_lease_check
        if expired:
            self._next_lease_check = now + self.poll_seconds
        with self.db.transaction() as conn:
            return outbox.claim_due(conn, limit, self.lease_seconds, expired=expired)

    def _send_and_release(self, item: outbox.Claimed) -> None:
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

    def send(self, item: outbox.Claimed) -> None:
        """Send one claimed reply and record the outcome."""
        try:
            sid = self._already_sent(item) if item.may_exist else None
            if sid is None:
                sid = self.client.send_message(
                    item.conversation_sid, author=item.author, body=item.body,
                    attributes=item.attributes)
        except ApiError as exc:
            self._record_failure(item, exc)
            return
        kept = self._record(outbox.mark_sent, item, sid)
        log.info("reply sent %s", kv(
            reply_id=item.id, conversation=item.conversation_sid, in_reply_to=item.in_reply_to,
            message_sid=sid, attempt=item.attempt, dry_run=self.client.dry_run or None,
            note=None if kept else "another sender took the reply over meanwhile"))

    def _record(self, settle, item: outbox.Claimed, *args) -> bool:
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

    def _already_sent(self, item: outbox.Claimed) -> str | None:
        """Find the reply among the conversation's newest messages, if Twilio has it already.

        Closes the at-least-once window: a timeout, a 5xx or a dead sender can hide that
        Twilio accepted the reply; the reply's `inReplyTo` attribute identifies it.
        """
        for message in self.client.recent_messages(item.conversation_sid, limit=50):
            try:
                attributes = json.loads(message.attributes or "{}")
            except ValueError:
                continue
            if isinstance(attributes, dict) and attributes.get("inReplyTo") == item.in_reply_to:
                log.info("reply found already sent %s", kv(
                    reply_id=item.id, message_sid=message.sid))
                return message.sid
        return None

    def _record_failure(self, item: outbox.Claimed, exc: ApiError) -> None:
        fields = dict(reply_id=item.id, conversation=item.conversation_sid,
                      in_reply_to=item.in_reply_to, attempt=item.attempt,
                      status=exc.status, code=exc.code, error=exc.message)
        if exc.transient and item.attempt < self.max_attempts:
            delay = outbox.backoff(item.attempt, self.backoff_base, self.backoff_cap)
            self._record(outbox.mark_retry, item, delay, exc.code, exc.message)
            log.warning("reply send failed, will retry %s", kv(**fields, retry_in=f"{delay:.2f}s"))
            return
        self._record(outbox.mark_failed, item, exc.code, exc.message)
        reason = "gave up after retries" if exc.transient else "permanent error"
        log.error("reply failed %s", kv(**fields, reason=reason, meaning=describe(exc.code)))
