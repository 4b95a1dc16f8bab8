"""gunicorn's master: the hooks gunicorn.conf.py calls for this app.

    on_starting(server)        the workers' shared metrics folder (multiprocess.py), and
                               gunicorn's own lines (master, workers, access log) in
                               LOG_FORMAT, before any worker is forked
    child_exit(server, worker) the worker's metrics bookkeeping

LOG_FORMAT and PROMETHEUS_MULTIPROC_DIR are read from the environment over `.env`, as
the app reads them. gunicorn writes one line before any hook runs ("Starting
gunicorn"): with LOG_FORMAT=json that one line is still gunicorn's text.
"""

from __future__ import annotations

from config import environment, log_format

from ..logs import formatter
from . import multiprocess


def on_starting(server) -> None:
    env = environment()
    lines = log_format(env)
    if lines != "text":  # gunicorn's own format stays for text
        for log in (server.log.error_log, server.log.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter(lines))
    path = multiprocess.prepare(env)
    server.log.info("metrics of all workers shared in %s", path)


def child_exit(server, worker) -> None:
    multiprocess.mark_dead(worker.pid)
