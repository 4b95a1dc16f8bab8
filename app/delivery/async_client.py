"""The sender's Conversations client: twilio-python's async client over aiohttp.

One instance per sender loop: one aiohttp connection pool for the process, made inside
the running event loop (aiohttp binds a session to its loop), a timeout on every call
(TWILIO_HTTP_TIMEOUT; twilio-python's own async client applies none unless each call
passes one). Failures are the ApiErrors of the blocking client (client.py), classified
the same way (a SID of the wrong shape refused before it is put in a URL), plus
`Throttled` for HTTP 429: Twilio refused the call before doing anything (error 20429,
too many concurrent requests), so the reply certainly was not created, and
`Retry-After` (when Twilio sends it) says when to come back.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from config import TwilioSettings

from .client import (
    ApiError,
    DryRunClient,
    Message,
    api_errors,
    classify,
    content,
    could_not_connect,
    error_body,
    path_sid,
    to_message,
)

log = logging.getLogger(__name__)
THROTTLED = 429


class Throttled(ApiError):
    """HTTP 429: nothing was done; try again after `retry_after` seconds (None: unsaid)."""

    def __init__(self, message: str, *, code: int | None, retry_after: float | None):
        super().__init__(message, transient=True, status=THROTTLED, code=code)
        self.retry_after = retry_after


class _Http(AsyncTwilioHttpClient):
    """twilio-python's aiohttp client with its session made in the running loop, a total
    timeout on every call and a 429 raised with its Retry-After."""

    def __init__(self, timeout: float, pool_size: int):
        super().__init__(pool_connections=False, timeout=timeout)
        self._pool_size = pool_size

    async def request(self, method, url, params=None, data=None, headers=None, auth=None,
                      timeout=None, allow_redirects=False) -> Response:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout))
        if auth:
            headers = {**(headers or {}), "Authorization": aiohttp.encode_basic_auth(*auth)}
        async with self.session.request(method.upper(), url, params=params, data=data,
                                        headers=headers,
                                        allow_redirects=allow_redirects) as answer:
            text = await answer.text()
        if answer.status == THROTTLED:
            code, detail = error_body(text)
            raise Throttled(str(detail or "Too Many Requests"),
                            code=int(code) if str(code or "").isdigit() else None,
                            retry_after=retry_after(answer.headers.get("Retry-After")))
        return Response(answer.status, text, answer.headers)


class AsyncConversationsClient:
    """Send and read Conversations messages without a thread per call."""

    dry_run = False

    def __init__(self, twilio: TwilioSettings, *, pool_size: int = 100):
        self._http = _Http(twilio.http_timeout, pool_size)
        client = Client(twilio.account_sid, twilio.auth_token, http_client=self._http)
        if twilio.api_base_url:  # a local base URL: not rewritten by region or edge
            client.region = client.edge = None
            client.conversations.base_url = twilio.api_base_url
        self._v1 = client.conversations.v1

    async def send_message(self, conversation_sid: str, *, author: str, body: str | None,
                           attributes: str, content_sid: str | None = None,
                           content_variables: str | None = None,
                           media_sid: str | None = None) -> str:
        """Create a message that fires webhooks (so its receipts come back); return its SID."""
        path_sid(conversation_sid, "CH")
        extra = {"media_sid": media_sid} if media_sid else {}
        with api_errors(_classify):
            created = await self._v1.conversations(conversation_sid).messages.create_async(
                author=author, attributes=attributes,
                x_twilio_webhook_enabled="true",  # a string: a bool breaks the request
                **content(body, content_sid, content_variables), **extra)
        return created.sid

    async def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        """Return the conversation's newest messages, newest first."""
        path_sid(conversation_sid, "CH")
        with api_errors(_classify):
            items = await self._v1.conversations(conversation_sid).messages.list_async(
                order="desc", limit=limit, page_size=min(limit, 100))
        return [to_message(m, conversation_sid) for m in items]

    async def close(self) -> None:
        await self._http.close()


class AsyncDryRunClient:
    """Log what would be sent (as DryRunClient does); read nothing."""

    dry_run = True

    def __init__(self):
        self._client = DryRunClient()

    async def send_message(self, conversation_sid: str, **fields) -> str:
        return self._client.send_message(conversation_sid, **fields)

    async def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        return self._client.recent_messages(conversation_sid, limit)

    async def close(self) -> None:
        pass


def make_async_client(twilio: TwilioSettings, *, pool_size: int = 100):
    if twilio.dry_run:
        return AsyncDryRunClient()
    return AsyncConversationsClient(twilio, pool_size=pool_size)


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


def _classify(exc: BaseException) -> ApiError | None:
    """aiohttp's failures, classified as client.classify does requests'. aiohttp raises
    ClientConnectorError (refused, DNS, TLS) and ConnectionTimeoutError only while
    opening the connection, before a byte of the request is written."""
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
    if isinstance(exc, aiohttp.ClientError):  # a bad URL, redirects, ...
        return ApiError(f"request failed: {type(exc).__name__}: {exc}", transient=False)
    return classify(exc)
