"""Per-hour counts of what leaves no row behind: duplicates dropped, signature failures.

A webhook only adds one to a dict in memory (no database write on its path, so a flood
of forged requests costs no more than before); a loop of each serving process, started
and stopped by its supervisor (app/jobs/supervisor.py) like the other background work,
adds the counts to `hourly_counts` every FLUSH_SECONDS, and once more when it stops. A
process killed with -9 loses at most that much counting, never a webhook.
"""

from __future__ import annotations

import logging
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
    """Counts kept in memory and added to the database by a background loop."""

    name = "hourly-counts"

    def __init__(self, db: Database, interval: float = FLUSH_SECONDS):
        self.db = db
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: Counter = Counter()
        self._wake = threading.Event()
        self._flushing = threading.Lock()  # one flush at a time: a flush returns once
        # everything counted before it is in the database

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._pending[(hour_of(utcnow()), name)] += n

    def flush(self) -> None:
        """Add what was counted since the last flush; keep it for the next on failure."""
        with self._flushing:
            self._flush()

    def run(self, stopping: threading.Event) -> None:
        """Flush every `interval` seconds, and once more when stopped."""
        while not stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def interrupt(self) -> None:
        self._wake.set()

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
