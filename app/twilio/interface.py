"""What a Conversations client does, whichever one a caller holds.

    Conversations         client.ConversationsClient (live), client.DryRunClient
    AsyncConversations    async_client.AsyncConversationsClient, async_client.AsyncDryRunClient

The two protocols are twins: the same methods with the same parameters, the async one's
awaited (tests/twilio/test_interface.py holds every client to them). Every failure is an
`errors.ApiError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """A message of a conversation, as the API lists it."""

    sid: str
    conversation_sid: str
    author: str | None
    body: str | None
    attributes: str | None
    index: int | None
    date_created: datetime | None


class Conversations(Protocol):
    """Send and read Conversations messages (blocking)."""

    dry_run: bool

    def send_message(self, conversation_sid: str, *, author: str, body: str | None,
                     attributes: str, content_sid: str | None = None,
                     content_variables: str | None = None,
                     media_sid: str | None = None) -> str:
        """Create a message that fires webhooks (so its receipts come back); return its
        SID. The message is `body`, or with `content_sid` an approved Content template;
        with `media_sid`, it carries that uploaded medium."""

    def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        """The conversation's newest messages, newest first."""

    def active_conversation_sids(self, limit: int = 1000) -> list[str]:
        """The SIDs of active conversations (newest first, at most `limit`)."""

    def receipts(self, conversation_sid: str, message_sid: str) -> list[dict]:
        """The delivery receipts of one message."""

    def close(self) -> None:
        """Close the client's connections."""


class AsyncConversations(Protocol):
    """Send and read Conversations messages (asyncio): `Conversations`, awaited."""

    dry_run: bool

    async def send_message(self, conversation_sid: str, *, author: str, body: str | None,
                           attributes: str, content_sid: str | None = None,
                           content_variables: str | None = None,
                           media_sid: str | None = None) -> str:
        """As Conversations.send_message."""

    async def recent_messages(self, conversation_sid: str, limit: int = 50) -> list[Message]:
        """As Conversations.recent_messages."""

    async def active_conversation_sids(self, limit: int = 1000) -> list[str]:
        """As Conversations.active_conversation_sids."""

    async def receipts(self, conversation_sid: str, message_sid: str) -> list[dict]:
        """As Conversations.receipts."""

    async def close(self) -> None:
        """As Conversations.close."""
