"""The blocking Conversations client an app shares (catch-up, tools), live or dry-run.

Live mode wraps twilio-python's Client (one HTTP session, pooled connections, a
timeout on every call); dry-run mode logs what it would send. Both are
`interface.Conversations`, twins of the async clients (async_client.py); every failure is
an ApiError (errors.py says what each means).
https://www.twilio.com/docs/conversations/api/conversation-message-resource
"""

from __future__ import annotations

import logging
import uuid

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from config import TwilioSettings

from .errors import api_errors, path_sid
from .interface import Conversations, Message

log = logging.getLogger(__name__)


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
                     content_variables: str | None = None,
                     media_sid: str | None = None) -> str:
        """Create a message that fires webhooks (so its receipts come back); return its SID."""
        path_sid(conversation_sid, "CH")
        with api_errors():
            created = self._v1.conversations(conversation_sid).messages.create(
                author=author, attributes=attributes,
                x_twilio_webhook_enabled="true",  # a string: a bool breaks the request
                **content(body, content_sid, content_variables, media_sid))
        return created.sid

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
        return [to_receipt(r) for r in items]

    def close(self) -> None:
        """Close the pooled HTTP session."""
        session = self._client.http_client.session
        if session is not None:
            session.close()


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

    def close(self) -> None:
        pass


def content(body: str | None, content_sid: str | None, content_variables: str | None,
            media_sid: str | None = None) -> dict:
    """The message's content as `messages.create` takes it: a text, or a template, and
    a medium by its MediaSid.

    A template carries its own text: Twilio refuses Body together with ContentVariables
    (error 35127), and ignores Body next to a ContentSid.
    """
    media = {"media_sid": media_sid} if media_sid else {}
    if not content_sid:
        return {"body": body, **media}
    if content_variables:
        return {"content_sid": content_sid, "content_variables": content_variables, **media}
    return {"content_sid": content_sid, **media}


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


def make_client(twilio: TwilioSettings) -> Conversations:
    """The live client, or the dry-run one when no credentials are configured."""
    if twilio.dry_run:
        return DryRunClient()
    return ConversationsClient(twilio.account_sid, twilio.auth_token,
                               base_url=twilio.api_base_url, timeout=twilio.http_timeout)


def to_message(m, conversation_sid: str) -> Message:
    return Message(sid=m.sid, conversation_sid=conversation_sid, author=m.author,
                   body=m.body, attributes=m.attributes, index=m.index,
                   date_created=m.date_created)


def to_receipt(r) -> dict:
    return {"receipt_sid": r.sid, "status": r.status, "error_code": r.error_code,
            "participant_sid": r.participant_sid,
            "channel_message_sid": r.channel_message_sid}
