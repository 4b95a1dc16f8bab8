"""Per-hour counts of what leaves no row behind: duplicates dropped, signature failures.

A webhook only adds one to a dict in memory (no database write on its path, so a flood
of forged requests costs no more than before); a thread of each process adds its counts
to `hourly_counts` every FLUSH_SECONDS. A process killed with -9 loses at most that
much counting, never a webhook.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter
from datetime import datetime
from functools import cache

from sqlalchemy.exc import SQLAlchemyError

from ..store.database import Database, dialect_insert
from ..store.models import HourlyCount, utcnow

log = logging.getLogger(__name__)
FLUSH_SECONDS = 5.0
DUPLICATES = "duplicates"
SIGNATURE_FAILURES = "signature_failures"
COUNTS = HourlyCount.__table__


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@cache
def _add_statement(dialect_name: str):
    stmt = dialect_insert(dialect_name)(COUNTS)
    return stmt.on_conflict_do_update(index_elements=["hour", "name"],
                                      set_={"count": COUNTS.c.count + stmt.excluded.count})


class HourlyCounts:
    """Counts kept in memory and added to the database in the background."""

    def __init__(self, db: Database, interval: float = FLUSH_SECONDS):
        self.db = db
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: Counter = Counter()
        self._pid = None
        self._wake = threading.Event()
        self._flushing = threading.Lock()  # one flush at a time: a flush returns once
        # everything counted before it is in the database

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._pending[(hour_of(utcnow()), name)] += n
            if self._pid != os.getpid():  # first count in this process (after a fork too)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="hourly-counts", daemon=True).start()
                atexit.register(self.flush)

    def flush(self) -> None:
        """Add what was counted since the last flush; keep it for the next on failure."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        try:
            with self.db.transaction() as conn:
                conn.execute(_add_statement(conn.dialect.name), [
                    {"hour": hour, "name": name, "count": count}
                    for (hour, name), count in sorted(pending.items())])
        except SQLAlchemyError as exc:
            log.warning("hourly counts not saved yet: %s", exc.__class__.__name__)
            with self._lock:
                self._pending.update(pending)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let counting die silently
                log.exception("hourly counts flush failed")
