"""Sender: sends queued replies after the webhook has been answered, at Twilio's pace.

Runs inside each web process (default) or in its own process (`flask --app wsgi
sender`), in both cases as a loop the process's supervisor (jobs/supervisor.py) starts
and restarts. The loop is asyncio in one thread: every call to Twilio is a coroutine
on one aiohttp connection pool (async_client.py), so a process holds its whole share
of TWILIO_CONCURRENCY_LIMIT in flight without a thread per call; the database work
(leases in batches, settling each reply) runs on a few threads beside it.

How many calls are in flight: the registry (registry.py) gives each live sender its
share of TWILIO_CONCURRENCY_LIMIT; within it the window (pacing.py) halves on a 429 and
grows back on success; SENDER_CONCURRENCY, when set, caps a process. A 429 costs no
attempt (Twilio did nothing): the reply is queued again after Retry-After. The outbox
keeps one reply of a conversation in flight at a time, in order, at most 30 a second.

It wakes at once when a reply is queued in this process, and polls every
SENDER_POLL_SECONDS for the rest (retries that became due, replies queued by other
processes, leases left by a sender that died). Stopping, it lets the calls in flight
finish for up to STOP_GRACE_SECONDS and releases the replies of those that do not.
One reply's attempt, and how each outcome is settled, is attempt.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from config import SenderSettings

from ..logs import kv
from ..observability.logs import log_context
from ..store.database import Database
from . import outbox, registry
from .attempt import Attempts, Result
from .pacing import Window

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 20.0  # under the supervisor's 25 s and gunicorn's graceful_timeout
DB_THREADS = 4


class Sender:
    name = "sender"

    def __init__(self, db: Database, client, settings: SenderSettings, make_api, media=None):
        self.db = db
        self.attempts = Attempts(db, settings, media)
        self.client = client  # the blocking client (lookups, tools); sends use make_api()
        self.make_api = make_api  # a new async client, made inside the running loop
        self.limit = settings.concurrency_limit
        self.bound = settings.max_per_process
        self.poll_seconds = settings.poll_seconds
        self.lease_seconds = settings.lease_seconds
        # Silent this long, a sender is dead: past the fence plus any call it began before
        # (a call ends within TWILIO_HTTP_TIMEOUT, and the lease is 2 x that + 30 s).
        self.stale_seconds = registry.FENCE_SECONDS + settings.lease_seconds / 2
        self._beat_pool: ThreadPoolExecutor | None = None
        self.id = registry.new_id()
        self.sent = 0
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._window = Window(0, bound=self.bound)
        self._in_flight = 0
        self._last_beat = float("-inf")  # monotonic time of the last successful beat
        self._next_lease_check = 0.0  # monotonic time of the next look for lost leases

    # -- from other threads -------------------------------------------------------

    def wake(self) -> None:
        """A reply was queued: lease it now, unless every slot is busy (a finishing send
        wakes the loop anyway, so waking it now would only cost a thread switch)."""
        if self._in_flight < self._window.limit:
            self._wake_loop()

    def interrupt(self) -> None:
        """Wake the loop whatever it is doing: its supervisor is stopping it."""
        self._wake_loop()

    def _wake_loop(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or wakeup.is_set():
            return
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # the loop has just closed
            pass

    def run(self, stopping: threading.Event) -> None:
        """Send until `stopping` is set, then let the sends in flight finish."""
        self._stopping = stopping
        asyncio.run(self._main())

    # -- the loop -----------------------------------------------------------------

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(DB_THREADS, thread_name_prefix="send-db"))
        self._wakeup = asyncio.Event()
        self._loop = loop
        self._in_flight = 0
        self._window = Window(0, bound=self.bound)
        api = self.make_api()
        sends: set[asyncio.Task] = set()
        self._beat_pool = ThreadPoolExecutor(1, thread_name_prefix="send-beat")
        beats = asyncio.create_task(self._beat_forever())
        try:
            try:
                await self._beat()
            except SQLAlchemyError as exc:  # no share until a beat succeeds: nothing is sent
                log.warning("sender heartbeat failed (database: %s); retrying every %gs",
                            exc.__class__.__name__, registry.HEARTBEAT_SECONDS)
            while not self._stopping.is_set():
                self._wakeup.clear()
                free = self._free_slots()
                leased = await self._lease_async(free) if free > 0 else []
                for item in leased:
                    self._in_flight += 1
                    task = asyncio.create_task(self._send_and_release(api, item))
                    sends.add(task)
                    task.add_done_callback(sends.discard)
                if not leased or self._free_slots() <= 0:
                    await self._sleep()
        finally:
            await self._finish(sends)  # beating on: the calls in flight hold their share
            beats.cancel()
            await api.close()
            await self._leave()
            self._beat_pool.shutdown(wait=False)
            self._loop = None

    def _free_slots(self) -> int:
        if time.monotonic() - self._last_beat > registry.FENCE_SECONDS:
            return 0  # our beats fail: the others may count us dead and take our share
        return self._window.limit - self._in_flight

    async def _sleep(self) -> None:
        """Until woken, the next poll, or the end of a Retry-After pause."""
        timeout = self.poll_seconds
        paused = self._window.paused_until - time.monotonic()
        if paused > 0:
            timeout = min(timeout, paused)
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            pass

    async def _lease_async(self, limit: int) -> list[outbox.LeasedReply]:
        try:
            return await asyncio.to_thread(self._lease, limit)
        except SQLAlchemyError as exc:
            log.warning("sender cannot reach the database: %s", exc.__class__.__name__)
            return []

    def _lease(self, limit: int) -> list[outbox.LeasedReply]:
        """Lease up to `limit` due replies; look for lost leases once per poll."""
        if limit <= 0:
            return []
        now = time.monotonic()
        expired = now >= self._next_lease_check
        if expired:
            self._next_lease_check = now + self.poll_seconds
        with self.db.transaction() as conn:
            return outbox.lease_due(conn, limit, self.lease_seconds, expired=expired,
                                    pace=outbox.PACE_SECONDS)

    async def _finish(self, sends: set[asyncio.Task]) -> None:
        """Stopping: let the calls in flight finish; release the replies of the rest."""
        if not sends:
            return
        log.info("sender stopping %s", kv(in_flight=len(sends)))
        _, late = await asyncio.wait(set(sends), timeout=STOP_GRACE_SECONDS)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5.0)

    # -- the registry ---------------------------------------------------------------

    async def _beat_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(registry.HEARTBEAT_SECONDS)
            try:
                await self._beat()
                failing = False
            except SQLAlchemyError as exc:
                if not failing:
                    log.warning("sender heartbeat failed (database: %s); no new sends after "
                                "%gs without one", exc.__class__.__name__, registry.FENCE_SECONDS)
                failing = True
            except Exception:  # a bug: keep beating, or the fence stops every send for good
                log.exception("sender heartbeat failed")

    async def _beat(self) -> None:
        window = self._window
        # On a thread of its own: sends settling or uploading media never delay a beat.
        beat = await asyncio.get_running_loop().run_in_executor(
            self._beat_pool, self._beat_in_db, window.share, self._in_flight, window.limit,
            self.sent)
        self._last_beat = time.monotonic()
        grew = beat.share > window.share
        window.resize(beat.share, beat.live, beat.peers_window)
        if grew:
            self._wakeup.set()

    def _beat_in_db(self, held: int, in_flight: int, concurrency: int, sent: int):
        with self.db.transaction() as conn:
            return registry.beat(conn, self.id, limit=self.limit, held=held,
                                 in_flight=in_flight, concurrency=concurrency, sent=sent,
                                 stale=self.stale_seconds)

    async def _leave(self) -> None:
        def leave():
            with self.db.transaction() as conn:
                registry.leave(conn, self.id)
        try:
            await asyncio.to_thread(leave)
        except SQLAlchemyError:
            pass  # its row goes stale and its share returns all the same

    # -- one reply ----------------------------------------------------------------

    async def _send_and_release(self, api, item: outbox.LeasedReply) -> None:
        try:
            with log_context(conversation_sid=item.conversation_sid,
                             message_sid=item.in_reply_to, request_id=item.request_id):
                await self._send(api, item)
        except asyncio.CancelledError:  # stopping: the attempt queued its reply again
            pass
        except SQLAlchemyError as exc:
            log.warning("could not record the outcome of reply %s (database: %s); it will be "
                        "taken over when its lease ends", item.id, exc.__class__.__name__)
        except Exception:  # nobody awaits this task: log, the lease brings it back
            log.exception("sending reply %s failed unexpectedly", item.id)
        finally:
            self._in_flight -= 1
            if self._wakeup is not None:
                self._wakeup.set()

    async def _send(self, api, item: outbox.LeasedReply) -> Result:
        result = await self.attempts.send(api, item, self._window, self._stopping)
        if result.sent:
            self.sent += 1
            if self._loop is not None:  # the conversation's next reply is due in a moment
                self._loop.call_later(outbox.PACE_SECONDS, self._wake_loop)
        return result
