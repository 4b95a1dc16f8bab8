"""Group commit: many short write transactions from many threads, committed together.

Under load, every webhook's claim is one tiny transaction, and SQLite admits one writer
at a time: the lock, BEGIN and COMMIT, not the work, become the limit. So the threads
that want to write queue up, and one of them, the leader, runs everything queued in
one transaction, wakes each of the others with its own result once it is committed,
and hands the lead to the next thread in the queue. Alone, a thread is its own leader
and runs its unit at once, in its own thread: no hand-over, no added latency.

A unit that fails makes the leader redo the batch one unit per transaction, so one bad
event never fails the others.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

MAX_BATCH = 64
_PENDING = object()


class _Job:
    __slots__ = ("unit", "wake", "leads", "result", "error")

    def __init__(self, unit: Callable):
        self.unit = unit
        self.wake = threading.Lock()
        self.wake.acquire()  # released by the leader: committed, or "you lead now"
        self.leads = False
        self.result = _PENDING
        self.error: BaseException | None = None

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

    def run(self, unit: Callable):
        """Run `unit(conn)` in a committed transaction (shared with others); return its result."""
        job = _Job(unit)
        with self._mutex:
            self._queue.append(job)
            follow = self._leading
            self._leading = True
        if follow:
            job.wake.acquire()
            if not job.leads:
                return job.outcome()
        # The leader: its own job is first in the queue (see the hand-over below).
        try:
            with self._mutex:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._write(batch)
        finally:
            with self._mutex:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.wake.release()
                else:
                    self._leading = False
        return job.outcome()

    def _write(self, batch: list[_Job]) -> None:
        try:
            if len(batch) > 1:
                try:
                    with self.db.transaction() as conn:
                        results = [job.unit(conn) for job in batch]
                except Exception:  # noqa: BLE001 - redo one by one to isolate the failure
                    pass
                else:
                    for job, result in zip(batch, results, strict=True):
                        job.result = result
                    return
            for job in batch:
                try:
                    with self.db.transaction() as conn:
                        job.result = job.unit(conn)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                    job.error = exc
        finally:
            for job in batch:
                if job.result is _PENDING and job.error is None:  # the leader was interrupted
                    job.error = RuntimeError("transaction abandoned; nothing was committed")
            for job in batch[1:]:  # the first is the leader's own
                job.wake.release()
