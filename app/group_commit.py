"""Group commit: many short write transactions from many threads, committed together.

Under load, every webhook's claim is one tiny transaction, and SQLite admits one writer
at a time: the lock, BEGIN and COMMIT, not the work, become the limit. Threads hand
their unit of work to one writer thread per process, which runs all that are waiting
in one transaction and wakes each caller with its own result once it is committed.
A unit that fails makes the writer redo the batch one unit per transaction, so one bad
event never fails the others. Idle, a batch is one unit: no added latency.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

MAX_BATCH = 64


class GroupCommit:
    def __init__(self, db, *, timeout: float = 30.0):
        self.db = db
        self.timeout = timeout
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pid: int | None = None
        self._lock = threading.Lock()

    def run(self, unit: Callable):
        """Run `unit(conn)` in a committed transaction (shared with others); return its result."""
        self._ensure_writer()
        future: Future = Future()
        self._queue.put((unit, future))
        return future.result(self.timeout)

    def _ensure_writer(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._queue = queue.SimpleQueue()
                threading.Thread(target=self._write_forever, name="group-commit",
                                 daemon=True).start()
                self._pid = os.getpid()

    def _write_forever(self) -> None:
        pending = self._queue
        while True:
            batch = [pending.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch) -> None:
        if len(batch) > 1:
            try:
                with self.db.transaction() as conn:
                    results = [unit(conn) for unit, _ in batch]
            except Exception:  # noqa: BLE001 - redo one by one to isolate the failure
                pass
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    future.set_result(result)
                return
        for unit, future in batch:
            try:
                with self.db.transaction() as conn:
                    result = unit(conn)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)
            else:
                future.set_result(result)
