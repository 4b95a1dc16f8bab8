"""The one place errors become HTTP responses: a short plain-text line each.

    WebhookError (app/errors.py) -> its .status (403, 400, 413, 415)
    IntegrityError (database)    -> 409  (the event conflicts with what is stored)
    DataError (database)         -> 400  (a value the database refuses)
    OperationalError, InterfaceError, DatabaseUnavailable
                                 -> 503  (database unavailable; Twilio does not retry)
    werkzeug HTTPException       -> its own status (405, 404, ...)
    anything else                -> 500, logged with its traceback, never shown to the caller
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from ..errors import WebhookError
from ..store.database import DatabaseUnavailable

log = logging.getLogger(__name__)


def plain(message: str, status: int):
    return message + "\n", status, {"Content-Type": "text/plain; charset=utf-8"}


def register_error_handlers(app: Flask) -> None:
    """Turn every exception a request can raise into a short plain-text response."""

    @app.errorhandler(WebhookError)
    def _webhook_error(exc: WebhookError):
        return plain(exc.message, exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return plain(f"{exc.code} {exc.name}", exc.code or 500)

    @app.errorhandler(IntegrityError)
    def _conflict(exc):
        # The pipeline turns the conflicts it knows into outcomes; this is the rest.
        log.warning("event conflicts with stored data: %s", exc.orig.__class__.__name__)
        return plain("409 Conflict: the event conflicts with data already stored", 409)

    @app.errorhandler(DataError)
    def _bad_value(exc):
        # The events module bounds what is stored; this is the last line of defence.
        log.warning("value refused by the database: %s", exc.orig.__class__.__name__)
        return plain("400 Bad Request: a parameter has a value that cannot be stored", 400)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DatabaseUnavailable)
    def _database_down(exc):
        log.error("database unavailable: %s", exc.orig if hasattr(exc, "orig") else exc)
        return plain("503 Service Unavailable: database unavailable", 503)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return plain("500 Internal Server Error", 500)
