"""Errors a webhook can end in, and the one place they become HTTP responses.

    WebhookError            -> its .status, body: one plain-text line
     +-- BadSignature       -> 403  (missing or wrong X-Twilio-Signature)
     +-- BadRequest         -> 400  (malformed form, no EventType)
     +-- MissingField       -> 400  (a known event without a field its handler needs)
     +-- UnsupportedMedia   -> 415  (not application/x-www-form-urlencoded)
    DataError (database)    -> 400  (a value the database refuses)
    OperationalError        -> 503  (database unavailable; Twilio does not retry)
    werkzeug HTTPException  -> its own status (413 for an oversized body, 405, 404, ...)
    anything else           -> 500, logged with its traceback, never shown to the caller
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class WebhookError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadSignature(WebhookError):
    status = 403


class BadRequest(WebhookError):
    status = 400


class UnsupportedMedia(WebhookError):
    status = 415


class MissingField(BadRequest):
    def __init__(self, event_type: str, field: str):
        super().__init__(f"{event_type} is missing the required field {field}")
        self.field = field


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

    @app.errorhandler(DataError)
    def _bad_value(exc):
        # The events module bounds what is stored; this is the last line of defence.
        log.warning("value refused by the database: %s", exc.orig.__class__.__name__)
        return plain("400 Bad Request: a parameter has a value that cannot be stored", 400)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_down(exc):
        log.error("database unavailable: %s", exc.orig if hasattr(exc, "orig") else exc)
        return plain("503 Service Unavailable: database unavailable", 503)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return plain("500 Internal Server Error", 500)
