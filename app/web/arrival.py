"""Webhooks and /healthz answer within DATABASE_TIMEOUT of the request's arrival.

The deadline starts when gunicorn had the whole request, before it waited for a free
thread: our worker (gunicorn.conf.py) passes that moment in `X-Bot-Arrived`, a client's
own header of that name dropped. Under another server it starts when the app begins on
the request. Every wait for the database draws from what is left (store/deadline.py),
so a request answers 503 by then, whatever it waited on; after it nothing is committed.
"""

from __future__ import annotations

import time

from flask import Flask, g, request

from ..services import services
from ..store import deadline

ARRIVED = "HTTP_X_BOT_ARRIVED"  # set by app/server/worker.py: time.monotonic(), same host
BOUNDED = frozenset({"webhooks", "health"})  # the blueprints Twilio and probes wait on


def arrived(environ) -> float:
    """When the request arrived whole (time.monotonic()): the server's word, never later
    than now; now without it."""
    now = time.monotonic()
    try:
        return min(now, float(environ.get(ARRIVED, now)))
    except ValueError:
        return now


def init_app(app: Flask) -> None:
    """Give each bounded request its deadline, for its whole life in this thread."""

    @app.before_request
    def _start() -> None:
        if request.blueprint in BOUNDED:
            timeout = services().db.timeout
            g.deadline = deadline.start(arrived(request.environ) + timeout)

    @app.teardown_request
    def _end(_exc) -> None:
        token = g.pop("deadline", None)
        if token is not None:
            deadline.end(token)
