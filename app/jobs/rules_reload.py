"""Rules reload: every process picks up a changed rules file, whole, within seconds.

`flask --app wsgi rules reload` checks the file (a broken one is refused, and nothing
changes) and stores its digest (with its knowledge file's, and the time: every command is a
change) in the `switches` table. Each serving process runs this
loop: every POLL_SECONDS it reads that row; when it changed, it loads the file (with its
FAQ, indexed) in this background thread while requests keep being decided with the old
policy, then swaps the whole new policy in with one assignment per holder. So a request
sees the old rules or the new ones, never a mix, and a file that stopped loading between
the command and the process (edited again) is logged and the old policy kept.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ..autoreply import Policy
from ..autoreply.fingerprint import digest
from ..logs import kv
from ..pipeline import state
from ..store.database import Database

log = logging.getLogger(__name__)
RULES_SWITCH = "rules"
POLL_SECONDS = 2.0
_UNSET = object()


def request_reload(db: Database, path: Path) -> str:
    """Check the file, then tell every process to load it; its digest, or RulesError."""
    from ..autoreply.compiler import load_rules  # a rules file's libraries: only with one

    load_rules(path)  # raises RulesError naming every problem: nothing is stored
    found = digest(path)
    # A new value at every command, even for content a process had before: a worker
    # started on an older file since (a replacement) must reload too.
    value = f"{found}@{time.time_ns()}"
    with db.transaction() as conn:
        state.set_switch(conn, RULES_SWITCH, value)
    return found


class RulesReload:
    """The loop; `holders` are the objects whose `policy` attribute a request reads."""

    name = "rules-reload"

    def __init__(self, db: Database, path: Path, holders: list):
        self.db = db
        self.path = path
        self.holders = holders
        self._wake = threading.Event()
        self._seen: object = _UNSET  # the stored digest at the last check

    def interrupt(self) -> None:
        self._wake.set()

    def stored(self) -> str | None:
        return self.db.run_read(lambda conn: conn.execute(
            state._READ_SWITCH, {"name": RULES_SWITCH}).scalar())

    def check(self) -> bool:
        """Reload if the stored digest changed since the last check; True if it swapped."""
        value = self.stored()
        if self._seen is _UNSET or value == self._seen:
            self._seen = value  # the first check: this process loaded the file at start
            return False
        self._seen = value
        from ..autoreply.compiler import load_rules
        from ..autoreply.rules import RulesError

        try:
            rules = load_rules(self.path)
        except RulesError as exc:
            log.error("rules reload refused, the old rules stay: %s", exc)
            return False
        policy: Policy = replace(self.holders[0].policy, rules=rules)
        for holder in self.holders:
            holder.policy = policy
        log.info("rules reloaded %s", kv(file=self.path, digest=(value or "").split("@")[0],
                                         faq=len(rules.knowledge) if rules.knowledge else 0))
        return True

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self.check()
            except SQLAlchemyError as exc:  # the database is away: the next check retries
                log.warning("rules reload: database unavailable: %s", exc.__class__.__name__)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
