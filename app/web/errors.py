"""The one place errors become HTTP responses, shaped for who asked: webhooks and
everything else a short plain-text line (Twilio reads only the status), `/api/` a JSON
object `{"error": ..., "status": ...}`, `/admin` a small HTML page.

    WebhookError (app/errors.py) -> its .status (403, 400, 413, 415)
    Refused                      -> its .status and headers (an operator's request: bad
                                    input 400, no token 401, 404, 409, throttled 429)
    IntegrityError (database)    -> 409  (the event conflicts with what is stored)
    DataError (database)         -> 400  (a value the database refuses)
    OperationalError, InterfaceError, DatabaseUnavailable
                                 -> 503 with Retry-After (database unavailable, or no
                                    answer by the request's deadline: web/arrival.py)
    werkzeug HTTPException       -> its own status (405, 404, ...)
    anything else                -> 500, logged with its traceback, never shown to the caller
"""

from __future__ import annotations

import logging
import math

from flask import Flask, make_response, request
from markupsafe import escape
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from ..errors import WebhookError
from ..services import services
from ..store.database import DatabaseUnavailable

log = logging.getLogger(__name__)


class Refused(Exception):
    """An operator's request (dashboard, API, /metrics) answered with an error status and
    a message that says what was wrong: the message starts with the status line."""

    def __init__(self, message: str, status: int = 400, headers: dict | None = None):
        super().__init__(message)
        self.message, self.status, self.headers = message, status, headers or {}


def plain(message: str, status: int):
    return message + "\n", status, {"Content-Type": "text/plain; charset=utf-8"}


_PAGE = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
         '<meta name="viewport" content="width=device-width, initial-scale=1">'
         '<title>{status}</title></head><body><h1>{status}</h1><p>{message}</p>'
         '<p><a href="/admin/">Back to the dashboard</a></p></body></html>')


def respond(message: str, status: int, headers: dict | None = None):
    """The error as the caller reads it: JSON under /api/, HTML under /admin, else text."""
    path = request.path
    if path.startswith("/api/"):
        return {"error": message, "status": status}, status, headers or {}
    if path == "/admin" or path.startswith("/admin/"):
        return (_PAGE.format(status=status, message=escape(message)), status,
                {"Content-Type": "text/html; charset=utf-8", **(headers or {})})
    body, status, content_type = plain(message, status)
    return body, status, {**content_type, **(headers or {})}


def init_app(app: Flask) -> None:
    """Turn every exception a request can raise into a response shaped for its caller."""

    @app.errorhandler(WebhookError)
    def _webhook_error(exc: WebhookError):
        return plain(exc.message, exc.status)

    @app.errorhandler(Refused)
    def _refused(exc: Refused):
        return respond(exc.message, exc.status, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return respond(f"{exc.code} {exc.name}", exc.code or 500)

    @app.errorhandler(IntegrityError)
    def _conflict(exc):
        # The pipeline turns the conflicts it knows into outcomes; this is the rest.
        log.warning("event conflicts with stored data: %s", exc.orig.__class__.__name__)
        return respond("409 Conflict: the event conflicts with data already stored", 409)

    @app.errorhandler(DataError)
    def _bad_value(exc):
        # The events module bounds what is stored; this is the last line of defence.
        log.warning("value refused by the database: %s", exc.orig.__class__.__name__)
        return respond("400 Bad Request: a parameter has a value that cannot be stored", 400)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DatabaseUnavailable)
    def _database_down(exc):
        log.error("database unavailable: %s", exc.orig if hasattr(exc, "orig") else exc)
        response = make_response(respond("503 Service Unavailable: database unavailable", 503))
        # Try again after one DATABASE_TIMEOUT (Twilio keeps its own retry schedule).
        response.headers["Retry-After"] = str(math.ceil(services().db.timeout))
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return respond("500 Internal Server Error", 500)
