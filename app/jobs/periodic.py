"""Periodic jobs (pruning, catch-up), run beside each sender, one process per turn.

Every process that runs a sender also runs this loop; `job_runs` makes sure that of
many processes only one takes each turn of a job (an atomic conditional UPDATE).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import bindparam, update
from sqlalchemy.exc import SQLAlchemyError

from config import JobSettings

from ..logs import kv
from ..store import clock
from ..store.database import Database, dialect_insert
from ..store.models import JobRun, utcnow
from ..twilio.errors import ApiError
from . import retention
from .catchup import CatchUp

log = logging.getLogger(__name__)
CHECK_SECONDS = 30
JOB_RUNS = JobRun.__table__
_LONG_AGO = datetime(2000, 1, 1)  # a new job's first turn is due at once


@cache
def _turn_statements(dialect_name: str):
    """Create a job's row (as if it last ran long ago), and take its turn if it is due.

    Due by the database's clock: with the hosts' clocks, a host an hour ahead would
    take every turn (store/clock.py)."""
    create = (dialect_insert(dialect_name)(JOB_RUNS)
              .values(last_run_at=_LONG_AGO)
              .on_conflict_do_nothing(index_elements=["name"]))
    take = (update(JOB_RUNS)
            .where(JOB_RUNS.c.name == bindparam("job"),
                   JOB_RUNS.c.last_run_at <= clock.later(dialect_name, "minus_interval"))
            .values(last_run_at=clock.now(dialect_name)))
    return create, take


def take_turn(db: Database, name: str, interval_seconds: float) -> bool:
    """Return True if this process may run job `name` now (and record that it does)."""
    with db.transaction() as conn:
        create, take = _turn_statements(conn.dialect.name)
        conn.execute(create, {"name": name})
        result = conn.execute(take, {"job": name, "minus_interval": -float(interval_seconds)})
        return result.rowcount == 1


class Jobs:
    name = "jobs"

    def __init__(self, db: Database, catch_up: CatchUp, settings: JobSettings):
        self.db = db
        self.settings = settings
        self.catch_up_runner = catch_up
        self.schedule = [
            ("prune", settings.prune_interval_seconds, self.prune),
            ("catch-up", settings.catch_up_interval_seconds, self.catch_up),
        ]
        self._wake = threading.Event()

    @property
    def enabled(self) -> bool:
        return any(interval for _, interval, _ in self.schedule)

    def prune(self) -> dict:
        now = utcnow()
        cutoff = now - timedelta(seconds=self.settings.retention_seconds)
        counts = retention.prune(self.db, cutoff, now - timedelta(
            seconds=min(self.settings.text_retention_seconds, self.settings.retention_seconds)))
        log.info("pruned %s", kv(older_than=cutoff.isoformat(timespec="seconds"), **counts))
        return counts

    def catch_up(self):
        since = utcnow() - timedelta(seconds=self.settings.catch_up_window_seconds)
        return self.catch_up_runner.run(since)

    def run_due(self) -> list[str]:
        """Run each enabled job whose turn it is; return the names of those run."""
        ran = []
        for name, interval, job in self.schedule:
            if interval and take_turn(self.db, name, interval):
                try:
                    job()
                except (ApiError, SQLAlchemyError) as exc:
                    log.warning("job %s failed, next turn will retry: %s", name, exc)
                ran.append(name)
        return ran

    def interrupt(self) -> None:
        self._wake.set()

    def run(self, stopping: threading.Event) -> None:
        """Look for due jobs every CHECK_SECONDS until `stopping` is set."""
        while not stopping.is_set():
            self._wake.wait(CHECK_SECONDS)
            self._wake.clear()
            if stopping.is_set():
                return
            try:
                self.run_due()
            except SQLAlchemyError as exc:  # the database is away: the next check retries
                log.warning("periodic jobs: database unavailable: %s", exc.__class__.__name__)
