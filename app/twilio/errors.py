"""What a failed call to Twilio means: one error type, one translation.

Whatever twilio-python, requests (the blocking client, the operator's commands) or
aiohttp (the async client) raise becomes an ApiError saying whether trying again later
can help:

    transient: timeouts, connections that could not be made (refused, no such host) or
               were dropped (also halfway through an answer), HTTP 429 and 5xx, a 2xx
               whose body is not JSON
    permanent: other 4xx, a TwilioException without an HTTP status, any other request
               error (a bad URL, redirects), any other ValueError

A retry of a permanent failure would fail the same way, or worse, send the reply twice.
A SID that goes into a URL's path is checked for its shape first (`path_sid`): one of
any other shape (`CH.../../Services/...`, `CH...?x`) could point the call elsewhere, so
it is refused, permanently, before any request.
Of the transient ones, some leave the outcome *unknown* (`ApiError.unknown`): Twilio may
have the request and may still act on it. A timeout or a connection dropped once open;
a 500 (Twilio's error 20500: "an error in the server handling logic or a timeout in the
API", after which a retried POST may send twice); a 502 or 504 (a gateway answered, the
service behind it may still be working); a 2xx whose body is not JSON (Twilio, or
something between, said it took the request: a created message is found by the sender's
look-up, not reported failed while the customer has it). Known: a connection that could not be opened
(refused, no such host, connect timeout) sent nothing; a 503 is Twilio saying the
service is unavailable (20503: try again with back-off), a 429 that it did nothing
(`Throttled`, with the `Retry-After` Twilio sent).
https://www.twilio.com/docs/api/errors/20500 and /20503

    with api_errors():                      # the clients: ApiError(message, ...)
    with api_errors("listing conversations"):   # a command: the message names the call,
                                            # its HTTP status and Twilio's code
"""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.response import Response
from urllib3.exceptions import NewConnectionError

from .. import formats

THROTTLED = 429
UNKNOWN_STATUSES = frozenset({500, 502, 504})  # the request may still take effect


class ApiError(Exception):
    """A failed call. `unknown`: the request may have reached Twilio and may still take
    effect (a timeout, a connection dropped mid-call, a 500, 502 or 504; see above)."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None,
                 code: int | None = None, unknown: bool = False):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status
        self.code = code
        self.unknown = unknown

    def about(self, what: str) -> ApiError:
        """This failure as an operator reads it: which call, the HTTP status, Twilio's code."""
        said = self.message
        if self.status is not None:
            code = f", Twilio error {self.code}" if self.code is not None else ""
            said = f"HTTP {self.status}{code}: {said}"
        return ApiError(f"{what}: {said}", transient=self.transient, status=self.status,
                        code=self.code, unknown=self.unknown)


class Throttled(ApiError):
    """HTTP 429: nothing was done; try again after `retry_after` seconds (None: unsaid)."""

    def __init__(self, message: str, *, code: int | None, retry_after: float | None):
        super().__init__(message, transient=True, status=THROTTLED, code=code)
        self.retry_after = retry_after


def path_sid(value: str, prefix: str) -> str:
    """`value` if it is a SID of the kind `prefix` names, else a permanent ApiError."""
    if not formats.is_sid(value, prefix):
        raise ApiError(f"refused: {value[:50]!r} is not {prefix} + 32 hex digits (a SID "
                       "goes into the URL)",
                       transient=False)
    return value


class api_errors:
    """Turn whatever twilio-python or the HTTP libraries raise into an ApiError (`classify`);
    with `what`, one whose message names the call (`ApiError.about`). A plain `with`
    serves around an `await` too."""

    def __init__(self, what: str | None = None):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        error = exc if isinstance(exc, ApiError) else classify(exc)
        if error is None:
            return False
        if self.what is not None:
            raise error.about(self.what) from exc
        if error is exc:
            return False
        raise error from exc


def classify(exc: BaseException) -> ApiError | None:
    """The ApiError for a failure (None: not a failure of the API call; let it rise)."""
    if isinstance(exc, TwilioRestException):
        return _by_status(exc.status, exc.code, exc.msg)
    if isinstance(exc, TwilioServiceException):
        return _by_status(exc.status, exc.code, exc.detail or exc.title)
    if isinstance(exc, TwilioException):
        # A listing's page that is not a 200 raises a bare TwilioException carrying the
        # response (twilio/base/page.py); without one there is no status to go by.
        response = next((a for a in exc.args if isinstance(a, Response)), None)
        if response is not None:
            code, message = error_body(response.text)
            return _by_status(response.status_code, code, message or exc.args[0])
        return ApiError(f"{type(exc).__name__}: {exc}", transient=False)
    if isinstance(exc, requests.RequestException):
        return _requests_failure(exc)
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
        return _aiohttp_failure(exc)
    if isinstance(exc, json.JSONDecodeError):  # a 2xx whose body is not JSON
        return ApiError(f"answer is not Twilio's JSON: {exc}", transient=True, unknown=True)
    if isinstance(exc, ValueError):
        return ApiError(f"answer is not Twilio's JSON: {type(exc).__name__}: {exc}",
                        transient=False)
    return None


def _requests_failure(exc: requests.RequestException) -> ApiError:
    """requests' failures (the blocking client's)."""
    if isinstance(exc, requests.Timeout):
        return ApiError(f"timed out: {exc}", transient=True,
                        unknown=not isinstance(exc, requests.ConnectTimeout))
    if isinstance(exc, requests.ConnectionError) and (never := _not_connected(exc)):
        return ApiError(never, transient=True)  # never connected: nothing was sent
    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        # Reset, or dropped halfway through the answer: Twilio may have the request.
        return ApiError(f"connection lost: {type(exc).__name__}: {exc}", transient=True,
                        unknown=True)
    return ApiError(f"request failed: {type(exc).__name__}: {exc}", transient=False)


def _aiohttp_failure(exc: BaseException) -> ApiError:
    """aiohttp's failures (the async client's). aiohttp raises ClientConnectorError
    (refused, DNS, TLS) and ConnectionTimeoutError only while opening the connection,
    before a byte of the request is written."""
    never_sent = isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's ServerTimeoutError is one too
        return ApiError(f"timed out: {type(exc).__name__}: {exc}", transient=True,
                        unknown=not never_sent)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ApiError(f"could not connect to {exc.host}:{exc.port}: TLS certificate "
                        f"refused ({exc.certificate_error})", transient=True)
    if isinstance(exc, aiohttp.ClientConnectorError):  # never connected (refused, no host)
        return ApiError(could_not_connect(exc.host, exc.port, exc.os_error), transient=True)
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        # Reset, or dropped halfway through the answer: Twilio may have the request.
        return ApiError(f"connection lost: {type(exc).__name__}: {exc}", transient=True,
                        unknown=True)
    return ApiError(f"request failed: {type(exc).__name__}: {exc}", transient=False)


def could_not_connect(host: str, port: int | None, os_error: BaseException | None) -> str:
    """A connection that was never made, said plainly (no connection was lost)."""
    if isinstance(os_error, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(os_error, socket.gaierror):
        why = f"no such host ({os_error.strerror})"
    else:
        why = getattr(os_error, "strerror", None) or str(os_error or "unknown error")
    return f"could not connect to {host}:{port}: {why}"


def _not_connected(exc: requests.ConnectionError) -> str | None:
    """requests' ConnectionError for a connection never made, said plainly; None for one
    reset or dropped."""
    retries = exc.args[0] if exc.args else None
    reason = getattr(retries, "reason", None)
    if not isinstance(reason, NewConnectionError):  # NameResolutionError is one too
        return None
    pool = getattr(retries, "pool", None)
    return could_not_connect(getattr(pool, "host", "?"), getattr(pool, "port", None),
                             reason.__cause__)


def error_body(text: str) -> tuple[object, str | None]:
    """Twilio's error code and message from an error body, if it is Twilio's JSON."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    return body.get("code"), body.get("message")


def error_code(code) -> int | None:
    """Twilio's error code as a number (None: absent or not a number)."""
    text = str(code or "")
    return int(text) if text.isascii() and text.isdigit() else None  # not "²": int() refuses


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds; an HTTP date is not used by
    Twilio's API and counts as unsaid); capped at five minutes."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds or seconds < 0:
        return None
    return min(seconds, 300.0)


def _by_status(status: int | None, code, message) -> ApiError:
    transient = status is not None and (status == 429 or status >= 500)
    return ApiError(str(message or f"HTTP {status}"), transient=transient, status=status,
                    code=error_code(code), unknown=status in UNKNOWN_STATUSES)
