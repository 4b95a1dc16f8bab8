"""Group commit: many short write transactions from many threads, committed together.

Under load, every webhook's claim is one tiny transaction, and SQLite admits one writer
at a time: the lock, BEGIN and COMMIT, not the work, become the limit. So the threads
that want to write queue up, and one of them, the leader, runs everything queued in
one transaction, wakes each of the others with its own result once it is committed,
and hands the lead to a thread still queued. Alone, a thread is its own leader
and runs its unit at once, in its own thread: no hand-over, no added latency.

A unit that fails makes the leader redo the batch one unit per transaction, so one bad
event never fails the others. A database that is away is no unit's fault: redoing would
only wait for it once per unit while the whole worker queues, so the batch fails at once.
When the database did not answer within its timeout (`DatabaseUnavailable`), the units
queued behind the batch fail with it rather than wait another timeout each.

A request's unit waits for its turn no longer than the request's deadline
(deadline.py): a unit still queued then is dropped (nothing of it is written); a unit
whose batch is being written is left to it, and may be committed after its request
answered 503 (its claim makes Twilio's retry a duplicate). A unit already past its
deadline when a batch is formed is not written. The leader's deadline bounds its batch,
so the lead passes to the queued unit with the most time left.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from operator import attrgetter

from sqlalchemy.exc import InterfaceError, OperationalError

from . import deadline
from .engine import DatabaseUnavailable

log = logging.getLogger(__name__)
MAX_BATCH = 64
_PENDING = object()


class _Job:
    __slots__ = ("unit", "order", "deadline", "wake", "leads", "left", "result", "error")

    def __init__(self, unit: Callable, order: str):
        self.unit = unit
        self.order = order
        self.deadline = deadline.current()  # its request's, None for the sender and jobs
        self.wake = threading.Lock()
        self.wake.acquire()  # released by the leader: committed, or "you lead now"
        self.leads = False
        self.left = False  # its request answered without waiting for the batch
        self.result = _PENDING
        self.error: BaseException | None = None

    def expired(self, now: float) -> bool:
        return self.deadline is not None and self.deadline <= now

    def wait(self) -> bool:
        """Wait to be woken, until the request's deadline; False if it came first."""
        if self.deadline is None:
            return self.wake.acquire()
        return self.wake.acquire(timeout=max(0.0, self.deadline - time.monotonic()))

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    def __init__(self, db):
        self.db = db
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker starts empty

    def _reset(self) -> None:
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []
        self._leading = False

    @property
    def waiting(self) -> int:
        """Units queued behind the batch being written (for tests and diagnostics)."""
        with self._mutex:
            return len(self._queue)

    def run(self, unit: Callable, order: str = ""):
        """Run `unit(conn)` in a committed transaction (shared with others); return its result.

        A batch runs its units sorted by `order` (e.g. the conversation they lock), so two
        processes' batches take row locks in the same order and never deadlock.
        """
        job = _Job(unit, order)
        with self._mutex:
            self._queue.append(job)
            follow = self._leading
            self._leading = True
        if follow:
            if not job.wait():
                self._give_up(job)  # raises, unless woken meanwhile
            if not job.leads:
                return job.outcome()
        # The leader: its own job is first in the queue (see the hand-over below).
        timed_out = None
        try:
            with self._mutex:
                self._drop_expired(job)
                batch = []
                if job.error is None:  # else it is past its deadline: the next one leads
                    batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            if batch:
                timed_out = self._write(batch)
        finally:
            with self._mutex:
                if timed_out is not None:
                    queued, self._queue = self._queue, []
                    for other in queued:
                        other.error = timed_out
                        other.wake.release()
                if self._queue:
                    # The leader's deadline bounds its batch: the most time left leads.
                    successor = max(self._queue, key=_deadline)
                    if successor is not self._queue[0]:
                        self._queue.remove(successor)
                        self._queue.insert(0, successor)
                    successor.leads = True
                    successor.wake.release()
                else:
                    self._leading = False
        return job.outcome()

    def _give_up(self, job: _Job) -> None:
        """The request's deadline came before its turn: answer now (raise), unless the
        leader woke it just then."""
        with self._mutex:
            if job.wake.acquire(blocking=False) or job.result is not _PENDING:
                return  # woken, or its batch committed just now
            if job in self._queue:
                self._queue.remove(job)
                raise DatabaseUnavailable("no turn to write in time (queued, not written)")
            job.left = True
            raise DatabaseUnavailable("the database did not commit in time")

    def _drop_expired(self, leader: _Job) -> None:
        """Fail the queued units past their deadline, the leader's own included (the
        caller holds the mutex)."""
        now = time.monotonic()
        if not any(job.expired(now) for job in self._queue):
            return
        live = []
        for job in self._queue:
            if job.expired(now):
                job.error = DatabaseUnavailable("no turn to write in time (not written)")
                if job is not leader:  # the leader is awake
                    job.wake.release()
            else:
                live.append(job)
        self._queue = live

    def _write(self, batch: list[_Job]) -> BaseException | None:
        """Run the batch; return the error if the database did not answer in time."""
        try:
            if len(batch) > 1:
                running = None  # the unit in progress when it failed, if any
                try:
                    ordered = sorted((job for job in batch if not job.left),
                                     key=attrgetter("order"))
                    with self.db.transaction() as conn:
                        results = []
                        for running in ordered:  # noqa: B007 - read by the handler below
                            results.append(running.unit(conn))
                        running = None
                except Exception as exc:  # noqa: BLE001 - decided below
                    away = database_away(exc, in_unit=running is not None)
                    log.warning("group commit: a batch of %d units failed (%s): %s",
                                len(batch), exc.__class__.__name__,
                                "the database is unavailable, all fail" if away
                                else "redoing them one by one")
                    if away:
                        for job in batch:
                            job.error = exc
                        return exc if is_timeout(exc) else None
                else:
                    for job, result in zip(ordered, results, strict=True):
                        job.result = result
                    return None
            for i, job in enumerate(batch):
                if job.left:
                    continue
                try:
                    with self.db.transaction() as conn:
                        job.result = job.unit(conn)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                    job.error = exc
                    if is_timeout(exc):  # the rest would only wait as long again
                        for rest in batch[i + 1:]:
                            rest.error = exc
                        return exc
            return None
        finally:
            for job in batch:
                if job.result is _PENDING and job.error is None:  # the leader was interrupted
                    job.error = RuntimeError("transaction abandoned; nothing was committed")
            for job in batch[1:]:  # the first is the leader's own
                job.wake.release()



def _deadline(job: _Job) -> float:
    return math.inf if job.deadline is None else job.deadline


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseUnavailable)


def database_away(exc: BaseException, *, in_unit: bool) -> bool:
    """Whether `exc` says the database is unavailable rather than that one unit is wrong.

    OperationalError also covers what a unit can get wrong on SQLite ("no such table"):
    raised by a unit, it counts only when it cost the connection.
    """
    if is_timeout(exc) or isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, OperationalError):
        return exc.connection_invalidated or not in_unit
    return False
