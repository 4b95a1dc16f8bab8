"""Serve the metrics: the text Prometheus scrapes, on the app's `/metrics` or on a port
of its own (METRICS_PORT).

A scrape adds up every process's counters (under gunicorn, the files of all workers,
live or dead, in PROMETHEUS_MULTIPROC_DIR) and reads the database's gauges
(`collectors.DatabaseCollector`).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from ..logs import kv
from ..store.database import Database
from . import metrics
from .collectors import DatabaseCollector, LiveSenders

log = logging.getLogger(__name__)


def registry(db: Database, senders: LiveSenders) -> CollectorRegistry:
    """A registry for one scrape: every process's counters, and the database's gauges."""
    scrape = CollectorRegistry()
    path = metrics.multiproc_dir()
    if path:
        MultiProcessCollector(scrape, path=path)
    else:
        scrape.register(_Forward(metrics.process_registry()))
    scrape.register(DatabaseCollector(db, senders))
    return scrape


def render(db: Database, senders: LiveSenders) -> tuple[bytes, str]:
    """The scrape's body and content type (Prometheus text format)."""
    return generate_latest(registry(db, senders)), CONTENT_TYPE_LATEST


class _Forward:
    """This process's registry, as one collector of the scrape's registry."""

    def __init__(self, source: CollectorRegistry):
        self.source = source

    def collect(self):
        return self.source.collect()


class _Quiet(WSGIRequestHandler):
    """No access line per scrape."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class MetricsPort:
    """Serve the metrics on `host:port`, without a token, from one process of several.

    Every worker tries; the first to bind serves, the others try again every `retry`
    seconds, so the port is served again soon after its worker exits (a restart, a
    crash). A daemon thread: it dies with its process.
    """

    def __init__(self, db: Database, senders: LiveSenders, host: str, port: int,
                 retry: float = 5.0):
        self.db = db
        self.senders = senders
        self.host = host
        self.port = port
        self.retry = retry
        self.server = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start trying to serve (once per process; later calls do nothing)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="metrics-port",
                                                daemon=True)
                self._thread.start()

    def _app(self, environ, start_response):
        app = make_wsgi_app(registry(self.db, self.senders))
        return app(environ, start_response)

    def _run(self) -> None:
        said = False
        while True:
            try:
                self.server = make_server(self.host, self.port, self._app,
                                          ThreadingWSGIServer, handler_class=_Quiet)
            except OSError as exc:
                if not said:
                    said = True
                    # In use: another worker serves it (the usual case). Anything else (a
                    # METRICS_HOST not on this machine, a name that does not resolve, a
                    # port below 1024) the operator must hear of.
                    busy = exc.errno == errno.EADDRINUSE
                    log.log(logging.DEBUG if busy else logging.WARNING,
                            "metrics port %s, retrying every %gs %s",
                            "busy" if busy else "cannot be opened", self.retry,
                            kv(host=self.host, port=self.port,
                               error=exc.strerror or str(exc)))
                time.sleep(self.retry)
                continue
            log.info("metrics served %s", kv(url=f"http://{self.host}:{self.port}/metrics"))
            self.server.serve_forever()
            return
