"""app/server/logger.py: gunicorn's access and error lines without query strings or
credentials."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from app.server.logger import RedactingLogger

TOKEN = "secret-admin-token-0123456789"


def access_line(environ: dict, access_log_format: str | None = None,
                request_headers=(), response_headers=()) -> str:
    """The access log line gunicorn would write for this request."""
    cfg = Config()
    cfg.set("accesslog", "-")
    if access_log_format:
        cfg.set("access_log_format", access_log_format)
    logger = RedactingLogger(cfg)
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.access_log.handlers = [handler]
    environ = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1", "PATH_INFO": environ["RAW_URI"].split("?")[0],
               "QUERY_STRING": environ["RAW_URI"].partition("?")[2], **environ}
    response = SimpleNamespace(status="401 UNAUTHORIZED", sent=10,
                               headers=list(response_headers))
    request = SimpleNamespace(headers=list(request_headers))
    logger.access(response, request, environ, timedelta(milliseconds=3))
    return lines[0]


def test_request_line_and_referer_lose_their_query():
    line = access_line({"RAW_URI": f"/api/stats?token={TOKEN}&since=24h",
                        "HTTP_REFERER": f"https://bot.example.com/admin/?token={TOKEN}"})
    assert '"GET /api/stats?[redacted] HTTP/1.1" 401 10' in line
    assert '"https://bot.example.com/admin/?[redacted]"' in line
    assert TOKEN not in line


def test_a_request_without_query_is_logged_as_it_came():
    line = access_line({"RAW_URI": "/webhooks/conversations", "REQUEST_METHOD": "POST"})
    assert line.startswith('127.0.0.1 - - [') and \
        '"POST /webhooks/conversations HTTP/1.1" 401 10 "-" "-"' in line


def test_basic_auth_user_is_never_shown():
    basic = "Basic " + base64.b64encode(f"{TOKEN}:x".encode()).decode()
    line = access_line({"RAW_URI": "/metrics", "HTTP_AUTHORIZATION": basic})
    assert line.startswith("127.0.0.1 - - [") and TOKEN not in line


def test_custom_format_atoms_lose_credentials_and_queries():
    """A format that names headers or environment variables still shows no secret."""
    line = access_line(
        {"RAW_URI": f"/admin/?token={TOKEN}", "HTTP_AUTHORIZATION": f"Bearer {TOKEN}",
         "HTTP_COOKIE": f"session={TOKEN}"},
        access_log_format="%(q)s|%({authorization}i)s|%({cookie}i)s|%({location}o)s|"
                          "%({raw_uri}e)s|%({query_string}e)s|%({http_authorization}e)s|"
                          "%({x-request-id}i)s",
        request_headers=[("Authorization", f"Bearer {TOKEN}"), ("Cookie", f"s={TOKEN}"),
                         ("X-Request-Id", "req-1")],
        response_headers=[("Location", f"/admin/login?next=/admin/?token%3D{TOKEN}")])
    assert line == ("[redacted]|-|-|/admin/login?[redacted]|/admin/?[redacted]|[redacted]|-|"
                    "req-1")


@pytest.mark.parametrize("message, logged", [
    (f"Invalid request from ip=10.0.0.1: Invalid HTTP request line: 'GET /?token={TOKEN} x'",
     "Invalid request from ip=10.0.0.1: Invalid HTTP request line"),
    (f"Invalid request from ip=10.0.0.1: Invalid HTTP Header: 'Authorization Bearer {TOKEN}'",
     "Invalid request from ip=10.0.0.1: Invalid HTTP Header"),
    ("Invalid request from ip=10.0.0.1: Request Line is too large (9000 > 4094)",
     "Invalid request from ip=10.0.0.1: Request Line is too large (9000 > 4094)"),
    ("Worker exiting (pid: 42)", "Worker exiting (pid: 42)"),
])
def test_invalid_request_warnings_keep_what_was_wrong_not_the_bytes(message, logged):
    assert error_lines("warning", message) == [logged]


def test_worker_refusals_with_arguments_pass_unchanged():
    assert error_lines("warning", "Invalid request from ip=%s: %s, answered %s before the app",
                       "10.0.0.1", "invalid chunk size", 400) == [
        "Invalid request from ip=10.0.0.1: invalid chunk size, answered 400 before the app"]


def test_error_handling_request_loses_the_query():
    assert error_lines("exception", "Error handling request %s %s", "GET",
                       f"/api/stats?token={TOKEN}") == [
        "Error handling request GET /api/stats?[redacted]"]


def error_lines(level: str, msg: str, *args) -> list[str]:
    logger = RedactingLogger(Config())
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.error_log.handlers = [handler]
    getattr(logger, level)(msg, *args)
    return lines
