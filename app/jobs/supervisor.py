"""Supervisor: owns a process's background work (the sender, the periodic jobs).

It starts each loop once per process, and only in the process that serves: in a
gunicorn worker after the fork (never in a master that preloaded the app), or in a
dedicated `sender` process. A loop that dies is logged with its traceback and restarted
after a growing pause; while it is down, `report()` says so and why (`/healthz` answers
503 when the sender of a serving process is dead).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Protocol

from ..logs import kv

log = logging.getLogger(__name__)
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Loop(Protocol):
    name: str

    def run(self, stopping: threading.Event) -> None:
        """Work until `stopping` is set; return only then (or raise)."""

    def interrupt(self) -> None:
        """Wake the loop so that it notices `stopping`."""


class Supervisor:
    def __init__(self, loops: list[Loop]):
        self.loops = loops
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._down: dict[str, str] = {}  # loop name -> why it is not running

    def start(self) -> None:
        """Start every loop, once per process (cheap to call on every request)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stopping = threading.Event()
            self._down = {}
            self._threads = {
                loop.name: threading.Thread(target=self._supervise, args=(loop,),
                                            name=loop.name, daemon=True)
                for loop in self.loops
            }
            for thread in self._threads.values():
                thread.start()
        log.info("background work started %s", kv(pid=self._pid, loops=",".join(
            loop.name for loop in self.loops)))

    def stop(self, timeout: float = 25.0) -> None:
        """Stop every loop and wait (bounded) for the work in flight, e.g. sends."""
        if self._pid != os.getpid():
            return
        self._stopping.set()
        for loop in self.loops:
            loop.interrupt()
        deadline = time.monotonic() + timeout
        for thread in self._threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        self._pid = None
        log.info("background work stopped")

    @property
    def started(self) -> bool:
        return self._pid == os.getpid()

    def report(self) -> dict[str, str]:
        """Each loop's state: 'running', 'not started', or why it is down."""
        if not self.started:
            return {loop.name: "not started" for loop in self.loops}
        return {loop.name: self._down.get(loop.name, "running") for loop in self.loops}

    def serve_forever(self) -> None:
        """Run the loops in the foreground until SIGTERM or SIGINT, then stop gracefully.

        The kernel hands a process-directed signal to any thread that does not block it;
        caught by a background thread, it never interrupted the main thread's untimed
        wait, which slept on for good (a dedicated sender ignored SIGTERM). So the loops'
        threads, and every thread they start, block both signals, and the main thread
        waits in short steps whatever happens.
        """
        stop = threading.Event()
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda *_: stop.set())
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self.start()  # threads inherit the mask of the thread that starts them
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        while not stop.wait(0.5):
            pass
        self.stop()

    def _supervise(self, loop: Loop) -> None:
        stopping = self._stopping
        failures = 0
        while not stopping.is_set():
            started = time.monotonic()
            try:
                loop.run(stopping)
                if stopping.is_set():
                    return
                raise RuntimeError("returned without being stopped")
            except Exception as exc:  # noqa: BLE001 - nobody else would see it
                if time.monotonic() - started > 60:
                    failures = 0  # it ran for a while: start the pauses over
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                log.exception("%s loop died; restarting %s", loop.name,
                              kv(in_seconds=delay, failures=failures))
                # After the log line: whoever sees the 503 finds the traceback logged.
                self._down[loop.name] = (f"died ({type(exc).__name__}: {exc}); "
                                         f"restarting in {delay:g}s")
            if stopping.wait(delay):
                return
            self._down.pop(loop.name, None)
            log.info("%s loop restarted", loop.name)
