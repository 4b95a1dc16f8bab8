"""A file lock (flock) that gives up after a timeout: SQLite's writer turn across processes.

flock waits forever or not at all. Uncontended, one LOCK_NB call takes the lock, as
cheap as before. Contended, a helper thread waits in flock while the caller waits on an
Event with its timeout: the turn is handed over the moment the other process lets go
(no polling), and a caller that gives up leaves it to the helper to drop the lock when
it comes (or to hand it to the next caller of this process, if one waits by then).

Callers take turns (Database's thread lock sees to that): one caller at a time.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

IDLE_SECONDS = 60.0  # a helper with nothing to wait for ends after this


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self._reset()
        os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        self._fd: int | None = None
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._want: threading.Event | None = None  # the caller waiting for the helper
        self._busy = False  # the helper waits in flock, or is about to: go through it
        self._helper: threading.Thread | None = None

    def _after_fork(self) -> None:
        """An flock belongs to the open file, shared across fork: the child opens its own."""
        inherited = self._fd
        self._reset()
        if inherited is not None:
            os.close(inherited)  # the parent's lock stays: it holds the file open too

    def acquire(self, timeout: float) -> bool:
        """Take the lock; False if another process kept it for `timeout` seconds."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not self._busy:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
        granted = threading.Event()
        with self._mutex:
            self._want = granted
            self._busy = True
            self._wake.set()
            if self._helper is None:
                self._helper = threading.Thread(target=self._wait_in_flock, args=(self._fd,),
                                                name="db-writer-lock", daemon=True)
                self._helper.start()
        if granted.wait(max(0.0, timeout)):
            return True
        with self._mutex:
            if granted.is_set():  # handed over just as the wait ended
                return True
            self._want = None
        return False

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _wait_in_flock(self, fd: int) -> None:
        while True:
            if not self._wake.wait(IDLE_SECONDS):
                with self._mutex:
                    if not self._wake.is_set():
                        self._helper = None
                        return
                continue
            with self._mutex:
                self._wake.clear()
                if self._want is None:  # its caller gave up before the wait began
                    self._busy = False
                    continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._mutex:
                want, self._want = self._want, None
                self._busy = False
                if want is None:  # its caller gave up meanwhile, and nobody else waits
                    fcntl.flock(fd, fcntl.LOCK_UN)
                else:
                    want.set()
