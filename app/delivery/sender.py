"""Sender: sends queued replies after the webhook has been answered, at Twilio's pace.

Runs inside each web process (default) or in its own process (`flask --app wsgi
sender`), in both cases as a loop the process's supervisor (jobs/supervisor.py) starts
and restarts. The loop is asyncio in one thread: every call to Twilio is a coroutine
on one aiohttp connection pool (app/twilio/async_client.py), so a process holds its
whole share of TWILIO_CONCURRENCY_LIMIT in flight without a thread per call; the
database work (leases in batches, settling each reply) runs on a few threads beside it.

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
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from config import SenderSettings

from ..logs import kv, log_context
from ..store.database import Database
from . import outbox, registry
from .attempt import Attempts, Result
from .pacing import Window

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 20.0  # under the supervisor's 25 s and gunicorn's graceful_timeout
DB_THREADS = 4
# Replies leased ahead of a free slot wait at most this long, far inside their lease (a
# Retry-After pause can outlast it): older, they are queued again, the attempt uncounted.
READY_MAX_AGE = 2.0


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
        # Leased ahead: (when leased, monotonic; the reply), started as a slot frees.
        self._ready: deque[tuple[float, outbox.LeasedReply]] = deque()
        self._api = None
        self._sends: set[asyncio.Task] = set()
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
        self._ready.clear()
        api = self._api = self.make_api()
        sends = self._sends = set()
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
                want = self._to_lease()
                leased = await self._lease_async(want) if want > 0 else []
                now = time.monotonic()
                self._ready.extend((now, item) for item in leased)
                self._start_ready()
                if not leased or self._free_slots() <= 0:
                    await self._sleep()
        finally:
            await self._unlease(self._take_ready())
            await self._finish(sends)  # beating on: the calls in flight hold their share
            beats.cancel()
            await api.close()
            await self._leave()
            self._beat_pool.shutdown(wait=False)
            self._loop = None

    def _fenced(self) -> bool:
        """Our beats fail: the others may count us dead and take our share."""
        return time.monotonic() - self._last_beat > registry.FENCE_SECONDS

    def _free_slots(self) -> int:
        return 0 if self._fenced() else self._window.limit - self._in_flight

    def _to_lease(self) -> int:
        """How many replies to lease now: the free slots, plus a few ahead (a quarter of
        the window), so that a slot freed by a call that ended starts the next reply at
        once instead of after a lease's turn at the database (under load, tens of ms of
        every 300 ms call). While every free slot has a reply leased ahead, the lead is
        topped up only once half of it is used: leases in batches, not one per reply
        sent (a lease is a transaction)."""
        limit = self._window.limit
        if limit <= 0 or self._fenced():
            return 0
        lead, free, ready = max(1, limit // 4), self._free_slots(), len(self._ready)
        want = free + lead - ready
        if free <= ready and want < (lead + 1) // 2:
            return 0
        return max(0, want)

    def _start_ready(self) -> None:
        """Start leased replies while slots are free; queue again those leased too long ago."""
        stale = []
        now = time.monotonic()
        while self._ready and now - self._ready[0][0] > READY_MAX_AGE:  # oldest first
            stale.append(self._ready.popleft()[1])
        while self._ready and self._free_slots() > 0 and not self._stopping.is_set():
            _, item = self._ready.popleft()
            self._in_flight += 1
            task = asyncio.create_task(self._send_and_release(self._api, item))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        if stale:
            task = asyncio.create_task(self._unlease(stale))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _take_ready(self) -> list[outbox.LeasedReply]:
        items = [item for _, item in self._ready]
        self._ready.clear()
        return items

    async def _unlease(self, items: list[outbox.LeasedReply]) -> None:
        """Queue leased replies that were never tried again now, the attempt uncounted
        (nothing was sent; if this fails, their leases run out and others take them)."""
        if not items:
            return

        def unlease():
            with self.db.transaction() as conn:
                for item in items:
                    outbox.mark_settling(conn, item, 0.0)
        try:
            await asyncio.to_thread(unlease)
        except SQLAlchemyError as exc:
            log.warning("could not queue %d leased replies again (database: %s); their "
                        "leases will run out", len(items), exc.__class__.__name__)

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
        """Send one reply; its slot is free again as soon as Twilio has answered, not
        once the outcome is recorded: under load, waiting for the database's turn would
        keep a slot idle that many milliseconds of every call (the outbox, not the
        slot, keeps a conversation's next reply back until this one is settled)."""
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight -= 1
                self._start_ready()
                if self._wakeup is not None:
                    self._wakeup.set()

        try:
            with log_context(conversation_sid=item.conversation_sid,
                             message_sid=item.in_reply_to, request_id=item.request_id):
                await self._send(api, item, release)
        except asyncio.CancelledError:  # stopping: the attempt queued its reply again
            pass
        except SQLAlchemyError as exc:
            log.warning("could not record the outcome of reply %s (database: %s); it will be "
                        "taken over when its lease ends", item.id, exc.__class__.__name__)
        except Exception:  # nobody awaits this task: log, the lease brings it back
            log.exception("sending reply %s failed unexpectedly", item.id)
        finally:
            release()

    async def _send(self, api, item: outbox.LeasedReply, answered=lambda: None) -> Result:
        result = await self.attempts.send(api, item, self._window, self._stopping, answered)
        if result.sent:
            self.sent += 1
            if self._loop is not None:  # the conversation's next reply is due in a moment
                self._loop.call_later(outbox.PACE_SECONDS, self._wake_loop)
        return result
