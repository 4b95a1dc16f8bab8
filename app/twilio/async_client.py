"""The sender's Conversations client: twilio-python's async client over aiohttp.

One instance per sender loop: one aiohttp connection pool for the process, made inside
the running event loop (aiohttp binds a session to its loop), a timeout on every call
(TWILIO_HTTP_TIMEOUT; twilio-python's own async client applies none unless each call
passes one). The twin of client.py (`interface.AsyncConversations`): the same methods,
awaited, the same ApiErrors, plus `Throttled` for HTTP 429: Twilio refused the call
before doing anything (error 20429, too many concurrent requests), so the reply
certainly was not created, and `Retry-After` (when Twilio sends it) says when to come
back.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from config import TwilioSettings

from .client import DryRunClient, content, to_message, to_receipt
from .errors import THROTTLED, Throttled, api_errors, error_body, error_code, path_sid, retry_after
from .interface import AsyncConversations, Message

log = logging.getLogger(__name__)


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
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        if isinstance(data, dict):
            # The form encoded here as aiohttp would (its FormData, urlencoded, UTF-8),
            # without building a FormData and its MultipartWriter for every reply.
            data = urlencode(list(data.items()), doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(method.upper(), url, params=params, data=data,
                                        headers=headers,
                                        allow_redirects=allow_redirects) as answer:
            text = await answer.text()
        if answer.status == THROTTLED:
            code, detail = error_body(text)
            raise Throttled(str(detail or "Too Many Requests"), code=error_code(code),
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
        with api_errors():
            created = await self._v1.conversations(conversation_sid).messages.create_async(
                author=author, attributes=attributes,
                x_twilio_webhook_enabled="true",  # a string: a bool breaks the request
                **content(body, content_sid, content_variables, media_sid))
        return created.sid

    async def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        """Return the conversation's newest messages, newest first."""
        path_sid(conversation_sid, "CH")
        with api_errors():
            items = await self._v1.conversations(conversation_sid).messages.list_async(
                order="desc", limit=limit, page_size=min(limit, 100))
        return [to_message(m, conversation_sid) for m in items]

    async def active_conversation_sids(self, limit: int = 1000) -> list[str]:
        """Return the SIDs of active conversations (newest first, at most `limit`)."""
        with api_errors():
            items = await self._v1.conversations.list_async(state="active", limit=limit,
                                                            page_size=min(limit, 100))
        return [c.sid for c in items]

    async def receipts(self, conversation_sid: str, message_sid: str) -> list[dict]:
        """Return the delivery receipts of one message."""
        path_sid(conversation_sid, "CH")
        path_sid(message_sid, "IM")
        with api_errors():
            items = await (self._v1.conversations(conversation_sid).messages(message_sid)
                           .delivery_receipts.list_async(limit=100))
        return [to_receipt(r) for r in items]

    async def close(self) -> None:
        """Close the aiohttp session."""
        await self._http.close()


class AsyncDryRunClient:
    """Log what would be sent (as DryRunClient does); read nothing."""

    dry_run = True

    def __init__(self):
        self._client = DryRunClient()

    async def send_message(self, conversation_sid: str, *, author: str, body: str | None,
                           attributes: str, content_sid: str | None = None,
                           content_variables: str | None = None,
                           media_sid: str | None = None) -> str:
        return self._client.send_message(
            conversation_sid, author=author, body=body, attributes=attributes,
            content_sid=content_sid, content_variables=content_variables, media_sid=media_sid)

    async def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        return self._client.recent_messages(conversation_sid, limit)

    async def active_conversation_sids(self, limit: int = 1000) -> list[str]:
        return self._client.active_conversation_sids(limit)

    async def receipts(self, conversation_sid: str, message_sid: str) -> list[dict]:
        return self._client.receipts(conversation_sid, message_sid)

    async def close(self) -> None:
        pass


def make_async_client(twilio: TwilioSettings, *, pool_size: int = 100) -> AsyncConversations:
    """The live async client, or the dry-run one when no credentials are configured."""
    if twilio.dry_run:
        return AsyncDryRunClient()
    return AsyncConversationsClient(twilio, pool_size=pool_size)
