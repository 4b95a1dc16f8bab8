"""Watchdog: cut a database connection whose statement has run past its deadline: its
timeout, or its request's deadline if sooner (engine.py arms it, deadline.py).

A database that stops answering (a frozen host or proxy, a stuck disk) leaves the
statement blocked in the driver for as long as it lasts: the peer's kernel still ACKs,
so TCP keepalive never fires, and a server-side statement_timeout never reaches a
server that is stopped. Twilio waits 5 s for a webhook; a 503 in time beats a hang.

So the engine's events arm a deadline for the connection before each statement (and
commit, rollback, ping) and disarm it after: a dict store and a dict pop on the hot
path. One thread per process looks at the deadlines a few times a second and cuts the
connections past theirs: PostgreSQL's socket is shut down (the blocked call raises
OperationalError and the connection is dropped), SQLite's statement is interrupted.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import threading
import time

log = logging.getLogger(__name__)
CUT = math.inf  # the deadline of a connection already cut: never cut twice
INTERVAL = 0.05  # seconds between looks: a cut comes at most this late


class Watchdog:
    def __init__(self):
        self.armed: dict[object, float] = {}  # DBAPI connection -> deadline (monotonic)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """The parent's thread does not exist here, nor its statements."""
        self.armed.clear()  # cleared, not replaced: the engines' listeners hold this dict
        self._lock = threading.Lock()
        self._thread = None

    def start(self) -> None:
        """Start the watching thread of this process, once (called when a connection opens)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog",
                                                daemon=True)
                self._thread.start()

    def was_cut(self, dbapi_conn) -> bool:
        return self.armed.get(dbapi_conn) == CUT

    def _run(self) -> None:
        armed = self.armed
        while True:
            time.sleep(INTERVAL)
            now = time.monotonic()
            for conn, deadline in list(armed.items()):
                if deadline <= now and armed.get(conn) == deadline:
                    armed[conn] = CUT
                    cut(conn)


def cut(conn) -> None:
    """Make the call blocked on `conn` return with an error, from another thread."""
    log.warning("database statement ran past its deadline: cutting its connection")
    try:
        sqlite3 = sys.modules.get("sqlite3")  # never imported for PostgreSQL (~1 MB)
        if sqlite3 is not None and isinstance(conn, sqlite3.Connection):
            conn.interrupt()
            return
        # A dup of psycopg's socket: shutting it down wakes the blocked call, which then
        # fails like a dropped connection; closing the dup leaves psycopg's descriptor be.
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception as exc:  # noqa: BLE001 - closed meanwhile: nothing left to cut
        log.debug("cutting a connection failed: %s", exc.__class__.__name__)


WATCHDOG = Watchdog()
