"""Metrics under gunicorn: every worker counts into files that any worker's scrape adds up.

prometheus_client's multiprocess mode: each process writes its counters into
`<PROMETHEUS_MULTIPROC_DIR>/<kind>_<pid>.db` (memory-mapped, no lock between
processes); a scrape merges every file. A dead worker's files stay, so the counters
never go backwards. gunicorn's master calls these (app/observability/gunicorn.py):

    prepare()       choose the folder, empty it, export it to the workers
    mark_dead(pid)  tell prometheus_client a worker is gone

The folder is PROMETHEUS_MULTIPROC_DIR (environment or `.env`) when set, else a new
private temporary folder per master, removed when the master exits. It is emptied at
every start: counters begin at zero with the server, as Prometheus expects of a restart.
Without gunicorn (flask run, the `sender` command, tests) nothing is shared: each
process counts in memory, unless PROMETHEUS_MULTIPROC_DIR is set in its environment
(then a `sender` process on the same host adds its counts to the web server's scrape).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

from prometheus_client import multiprocess

from config import environment

from .metrics import MULTIPROC_ENV

# What prometheus_client writes in the folder: <kind>_<pid>.db (counter_812.db,
# gauge_livesum_812.db, ...).
_METRICS_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def prepare(env: dict[str, str] | None = None) -> str:
    """Choose, create and empty the shared folder; export it for the processes forked
    from this one. Returns the folder."""
    env = environment() if env is None else env
    configured = (env.get(MULTIPROC_ENV) or "").strip()
    if configured:
        try:
            path = Path(configured).expanduser().resolve()
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (RuntimeError, OSError) as exc:  # ~nosuchuser, no permission
            raise SystemExit(f"cannot start: {MULTIPROC_ENV}: cannot use the folder "
                             f"{configured!r}: {exc}") from None
        for stale in path.iterdir():  # prometheus_client's files only: never another
            if _METRICS_FILE.fullmatch(stale.name):  # .db file kept in the same folder
                stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="bot-metrics-"))
        master = os.getpid()
        # Workers inherit atexit handlers and run them on their way out: only the master
        # removes the folder.
        atexit.register(lambda: os.getpid() == master and shutil.rmtree(path, True))
    os.environ[MULTIPROC_ENV] = str(path)
    return str(path)


def mark_dead(pid: int) -> None:
    """A worker has exited: drop its live gauges (its counters stay, as they should)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        multiprocess.mark_process_dead(pid, path)
