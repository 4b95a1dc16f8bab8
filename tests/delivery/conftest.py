"""Delivery fixtures: replies queued straight into the outbox, whatever the rules decide."""

from __future__ import annotations

import secrets

import pytest

from app.delivery import outbox
from app.services import services


@pytest.fixture
def queue(app, fake_api):
    """Queue a reply in `app`'s outbox (or another app's, with `into=`) to a conversation
    that exists at the fake API; return its MessageSid (what the reply answers)."""
    def queue(conversation_sid: str, *, into=None, body: str | None = "Thanks!",
              **fields) -> str:
        fake_api.add_conversation(conversation_sid)
        in_reply_to = "IM" + secrets.token_hex(16)
        with services(into or app).db.transaction() as conn:
            assert outbox.queue_reply(conn, outbox.NewReply(
                conversation_sid=conversation_sid, in_reply_to=in_reply_to,
                author="support-bot", body=body, **fields)) is None
        return in_reply_to
    return queue
