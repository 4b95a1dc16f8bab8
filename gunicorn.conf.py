"""gunicorn settings, read automatically by `gunicorn wsgi:app` from this folder.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.

The worker is gunicorn's gthread, reading each request whole in its event loop before a
thread serves it (app/server/worker.py, which reads REQUEST_READ_TIMEOUT, default 10 s);
the logger keeps query strings and credentials out of gunicorn's lines
(app/server/logger.py). The hooks start and stop this app's background work in each
worker and share its metrics between workers. The benchmark's other apps run with
bench/gunicorn.conf.py.
"""

import os
import sys


def _count(name: str, raw: str) -> int:
    """A whole number of processes or threads, or a one-line refusal (0 workers left a
    master listening with nobody to answer; a word was a traceback)."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000):
        sys.exit(f"cannot start: {name} must be a whole number from 1 to 1000, got {raw!r}")
    return int(raw)


# Heroku (and most PaaS) give the port in $PORT; locally, stay on loopback.
bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:5000"
workers = _count("WEB_CONCURRENCY", os.environ.get("WEB_CONCURRENCY") or "2")
threads = _count("GUNICORN_THREADS", os.environ.get("GUNICORN_THREADS") or "4")
worker_class = "app.server.worker.BufferingThreadWorker"
logger_class = "app.server.logger.RedactingLogger"  # no query string, no credential
timeout = 30
graceful_timeout = 25  # under Heroku's 30 s: lets in-flight replies finish on SIGTERM
keepalive = 5
accesslog = "-"
# PROXY_COUNT (werkzeug's ProxyFix) alone decides which X-Forwarded-* headers to trust.
forwarded_allow_ips = ""
# One control socket per user would clash between instances on one machine.
control_socket_disable = True


def on_starting(server):
    """This app's metrics, shared by its workers; gunicorn's lines in LOG_FORMAT; the
    FAQ's embedding model loaded once, for every worker forked from here."""
    from app.autoreply.preload import preload_for
    from app.observability.gunicorn import on_starting
    from app.server.worker import read_timeout
    from config import environment

    try:  # checked once here, rather than failing in every worker's loop
        read_timeout(os.environ)
    except ValueError as exc:
        sys.exit(f"cannot start: {exc}")
    on_starting(server)
    if not server.cfg.preload_app:  # with --preload the app, loaded already, holds them
        preload_for(environment().get("RESPONDER_RULES"))


def pre_fork(server, worker):
    """What the master loaded stays shared with the worker: its objects move out of the
    garbage collector's reach (gc.freeze), so the worker's collections never write to
    them and copy their pages (Python's documented recipe for servers that fork)."""
    import gc

    gc.freeze()


def post_fork(server, worker):
    """A worker forked to replace one that died (past the first round of workers) tells
    wsgi.py so: if the configuration broke since the server started (a rules file edited
    in place), it must not halt the server, whose other workers still serve."""
    from app.server import replacement

    replacement.REPLACEMENT = worker.age > server.num_workers


def post_worker_init(worker):
    """Start the app's background work (the sender) in each worker, after the fork:
    never in the master, even with --preload."""
    from app import start_background_work

    start_background_work(worker.wsgi)


def worker_exit(server, worker):
    """Stop the background work while the worker can still finish it: sends in flight
    are completed and recorded. An atexit handler runs too late in a gunicorn worker:
    by then the interpreter's shutdown has stopped the thread pools they need. A worker
    whose app did not load (a configuration error) has nothing to stop."""
    from flask import Flask

    if isinstance(getattr(worker, "wsgi", None), Flask):
        from app.services import services

        services(worker.wsgi).supervisor.stop()


def child_exit(server, worker):
    """A worker has gone: prometheus_client's bookkeeping for its metric files."""
    from app.observability.gunicorn import child_exit

    child_exit(server, worker)


def when_ready(server):
    """Say once per server, before the workers fork, how it runs (dry-run and its token,
    agents, rules file, dashboard): not once per worker."""
    from app.banner import announce_in_gunicorn_master

    announce_in_gunicorn_master(server)
