"""Periodic jobs (pruning, catch-up), run beside each sender, one process per turn.

Every process that runs a sender also runs this loop; `job_runs` makes sure that of
many processes only one takes each turn of a job (an atomic conditional UPDATE).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from . import retention
from .catchup import CatchUp
from .claims import dialect_insert
from .conversations import ApiError
from .logs import kv
from .models import JobRun, utcnow

log = logging.getLogger(__name__)
CHECK_SECONDS = 30


def take_turn(db, name: str, interval_seconds: float) -> bool:
    """Return True if this process may run job `name` now (and record that it does)."""
    now = utcnow()
    with db.transaction() as conn:
        conn.execute(dialect_insert(conn)(JobRun)
                        .values(name=name, last_run_at=now - timedelta(days=3650))
                        .on_conflict_do_nothing(index_elements=["name"]))
        result = conn.execute(
            update(JobRun)
            .where(JobRun.name == name,
                   JobRun.last_run_at <= now - timedelta(seconds=interval_seconds))
            .values(last_run_at=now))
        return result.rowcount == 1


class Jobs:
    def __init__(self, app):
        self.app = app
        self.db = app.extensions["db"]
        config = app.config
        self.schedule = [
            ("prune", config["PRUNE_INTERVAL_SECONDS"], self.prune),
            ("catch-up", config["CATCH_UP_INTERVAL_SECONDS"], self.catch_up),
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prune(self) -> dict:
        cutoff = utcnow() - timedelta(seconds=self.app.config["RETENTION_SECONDS"])
        counts = retention.prune(self.db, cutoff)
        log.info("pruned %s", kv(older_than=cutoff.isoformat(timespec="seconds"), **counts))
        return counts

    def catch_up(self):
        since = utcnow() - timedelta(seconds=self.app.config["CATCH_UP_WINDOW_SECONDS"])
        return CatchUp(self.app).run(since)

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

    def start(self) -> None:
        if any(interval for _, interval, _ in self.schedule):
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            try:
                self.run_due()
            except Exception:  # never let the loop die; the next check tries again
                log.exception("periodic jobs failed")
