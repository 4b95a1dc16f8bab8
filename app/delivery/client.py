"""The one Conversations client an app shares, and what its failures mean.

Live mode wraps twilio-python's Client (one HTTP session, pooled connections, a
timeout on every call); dry-run mode logs what it would send. Every failure becomes an
ApiError saying whether trying again later can help:

    transient: timeouts, connections that could not be made (refused, no such host) or
               were dropped (also halfway through an answer), HTTP 429 and 5xx
    permanent: other 4xx, a 2xx whose body is not Twilio's JSON, a TwilioException
               without an HTTP status, any other request error (a bad URL, redirects)

A retry of a permanent failure would fail the same way, or worse, send the reply twice.
A SID that goes into a URL's path is checked for its shape first (`path_sid`): one of
any other shape (`CH.../../Services/...`, `CH...?x`) could point the call elsewhere, so
it is refused, permanently, before any request.
Of the transient ones, some leave the outcome *unknown* (`ApiError.unknown`): Twilio may
have the request and may still act on it. A timeout or a connection dropped once open;
a 500 (Twilio's error 20500: "an error in the server handling logic or a timeout in the
API", after which a retried POST may send twice); a 502 or 504 (a gateway answered, the
service behind it may still be working). Known: a connection that could not be opened
(refused, no such host, connect timeout) sent nothing; a 503 is Twilio saying the
service is unavailable (20503: try again with back-off), a 429 that it did nothing.
https://www.twilio.com/docs/api/errors/20500 and /20503
https://www.twilio.com/docs/conversations/api/conversation-message-resource
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from config import TwilioSettings

from .. import formats

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Message:
    sid: str
    conversation_sid: str
    author: str | None
    body: str | None
    attributes: str | None
    index: int | None
    date_created: datetime | None


def path_sid(value: str, prefix: str) -> str:
    """`value` if it is a SID of the kind `prefix` names, else a permanent ApiError."""
    if not formats.is_sid(value, prefix):
        raise ApiError(f"refused: {value[:50]!r} is not {prefix} + 32 hex digits (a SID "
                       "goes into the URL)",
                       transient=False)
    return value


class ConversationsClient:
    """Send and read Conversations messages through twilio-python."""

    dry_run = False

    def __init__(self, account_sid: str, auth_token: str, *, base_url: str | None = None,
                 timeout: float = 10.0):
        self._client = twilio_client(account_sid, auth_token, base_url=base_url,
                                     timeout=timeout)
        self._v1 = self._client.conversations.v1

    def send_message(self, conversation_sid: str, *, author: str, body: str | None,
                     attributes: str, content_sid: str | None = None,
                     content_variables: str | None = None) -> str:
        """Create a message that fires webhooks (so its receipts come back); return its SID.

        The message is `body`, or with `content_sid` an approved Content template.
        """
        path_sid(conversation_sid, "CH")
        with api_errors():
            message = self._v1.conversations(conversation_sid).messages.create(
                author=author, attributes=attributes,
                x_twilio_webhook_enabled="true",  # a string: a bool breaks the request
                **content(body, content_sid, content_variables),
            )
        return message.sid

    def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        """Return the conversation's newest messages, newest first."""
        path_sid(conversation_sid, "CH")
        with api_errors():
            items = self._v1.conversations(conversation_sid).messages.list(
                order="desc", limit=limit, page_size=min(limit, 100))
        return [to_message(m, conversation_sid) for m in items]

    def active_conversation_sids(self, limit: int = 1000) -> list[str]:
        """Return the SIDs of active conversations (newest first, at most `limit`)."""
        with api_errors():
            items = self._v1.conversations.list(state="active", limit=limit,
                                                page_size=min(limit, 100))
        return [c.sid for c in items]

    def receipts(self, conversation_sid: str, message_sid: str) -> list[dict]:
        """Return the delivery receipts of one message."""
        path_sid(conversation_sid, "CH")
        path_sid(message_sid, "IM")
        with api_errors():
            items = (self._v1.conversations(conversation_sid).messages(message_sid)
                     .delivery_receipts.list(limit=100))
        return [{
            "receipt_sid": r.sid, "status": r.status, "error_code": r.error_code,
            "participant_sid": r.participant_sid,
            "channel_message_sid": r.channel_message_sid,
        } for r in items]


class DryRunClient:
    """Log what would be sent; read nothing. Used when no credentials are configured."""

    dry_run = True

    def send_message(self, conversation_sid: str, *, author: str, body: str | None,
                     attributes: str, content_sid: str | None = None,
                     content_variables: str | None = None,
                     media_sid: str | None = None) -> str:
        path_sid(conversation_sid, "CH")  # refused as the live client refuses it
        sid = "IM" + uuid.uuid4().hex
        if media_sid:
            log.info("DRY RUN: with media %s", media_sid)
        if content_sid:
            log.info("DRY RUN: would send to %s as %s: template %s with variables %s "
                     "(fake sid %s)", conversation_sid, author, content_sid,
                     content_variables or "{}", sid)
        else:
            log.info("DRY RUN: would send to %s as %s: %r (fake sid %s)",
                     conversation_sid, author, body, sid)
        return sid

    def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        path_sid(conversation_sid, "CH")
        return []

    def active_conversation_sids(self, limit: int = 1000) -> list[str]:
        return []

    def receipts(self, conversation_sid: str, message_sid: str) -> list[dict]:
        path_sid(conversation_sid, "CH")
        path_sid(message_sid, "IM")
        return []


def content(body: str | None, content_sid: str | None,
            content_variables: str | None) -> dict:
    """The message's content as `messages.create` takes it: a text, or a template.

    A template carries its own text: Twilio refuses Body together with ContentVariables
    (error 35127), and ignores Body next to a ContentSid.
    """
    if not content_sid:
        return {"body": body}
    if content_variables:
        return {"content_sid": content_sid, "content_variables": content_variables}
    return {"content_sid": content_sid}


def twilio_client(account_sid: str, auth_token: str, *, base_url: str | None = None,
                  timeout: float = 10.0) -> Client:
    """twilio-python's Client (one pooled HTTP session, a timeout on every call), with the
    Conversations API at `base_url` when set (TWILIO_API_BASE_URL: a local fake)."""
    http = TwilioHttpClient(pool_connections=True, timeout=timeout)
    client = Client(account_sid, auth_token, http_client=http)
    if base_url:
        # A local base URL must not be rewritten by TWILIO_REGION / TWILIO_EDGE.
        client.region = client.edge = None
        client.conversations.base_url = base_url
    return client


def rest_client(twilio: TwilioSettings) -> Client:
    """The account's REST client for operator commands (webhook and address set-up,
    conversations): the same credentials, base URL and timeout as the sender's."""
    return twilio_client(twilio.account_sid, twilio.auth_token,
                         base_url=twilio.api_base_url, timeout=twilio.http_timeout)


def make_client(twilio: TwilioSettings) -> ConversationsClient | DryRunClient:
    if twilio.dry_run:
        return DryRunClient()
    return ConversationsClient(twilio.account_sid, twilio.auth_token,
                               base_url=twilio.api_base_url, timeout=twilio.http_timeout)


def to_message(m, conversation_sid: str) -> Message:
    return Message(sid=m.sid, conversation_sid=conversation_sid, author=m.author,
                   body=m.body, attributes=m.attributes, index=m.index,
                   date_created=m.date_created)


class api_errors:
    """Turn whatever twilio-python or the HTTP library raises into an ApiError, as
    `classifier` says (`classify`: requests, the blocking client's; the async client
    passes its own, for aiohttp). A plain `with` serves around an `await` too."""

    def __init__(self, classifier=None):
        self.classifier = classifier or classify

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, ApiError):
            return False
        error = self.classifier(exc)
        if error is None:
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
    if isinstance(exc, requests.Timeout):
        return ApiError(f"timed out: {exc}", transient=True,
                        unknown=not isinstance(exc, requests.ConnectTimeout))
    if isinstance(exc, requests.ConnectionError) and (never := _not_connected(exc)):
        return ApiError(never, transient=True)  # never connected: nothing was sent
    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        # Reset, or dropped halfway through the answer: Twilio may have the request.
        return ApiError(f"connection lost: {type(exc).__name__}: {exc}", transient=True,
                        unknown=True)
    if isinstance(exc, requests.RequestException):
        return ApiError(f"request failed: {type(exc).__name__}: {exc}", transient=False)
    if isinstance(exc, ValueError):  # a 2xx whose body is not the JSON Twilio sends
        return ApiError(f"answer is not Twilio's JSON: {type(exc).__name__}: {exc}",
                        transient=False)
    return None


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


UNKNOWN_STATUSES = frozenset({500, 502, 504})  # the request may still take effect


def _by_status(status: int | None, code, message) -> ApiError:
    transient = status is not None and (status == 429 or status >= 500)
    return ApiError(str(message or f"HTTP {status}"), transient=transient, status=status,
                    code=int(code) if str(code or "").isdigit() else None,
                    unknown=status in UNKNOWN_STATUSES)
