"""Answer customers: one auto-reply per inbound message, never to ourselves or agents."""

from __future__ import annotations

import json
from functools import partial

from .. import outbox
from ..events import Event
from ..router import Context, Router

router = Router()

# Messages created through the REST API without an author are written by "system".
SYSTEM_AUTHOR = "system"


@router.register("onMessageAdded", requires=("ConversationSid", "MessageSid", "Author"))
def answer_customer(event: Event, ctx: Context) -> str:
    """Queue the auto-reply to a customer's message; say why when there is none."""
    settings = ctx.settings
    reason = not_a_customer(event.require("Author"), event.get("Attributes"), settings)
    if reason:
        return f"ignored: {reason}"
    ctx.on_claim(partial(
        outbox.queue_reply, conversation_sid=event.require("ConversationSid"),
        in_reply_to=event.require("MessageSid"), author=settings["BOT_IDENTITY"],
        body=settings["AUTO_REPLY_TEXT"],
    ))
    return "reply queued"


def not_a_customer(author: str, attributes: str | None, settings) -> str | None:
    """Say why a message's author is not a customer to answer (None: it is one)."""
    if author == settings["BOT_IDENTITY"]:
        return "written by the bot itself (loop guard)"
    if is_auto_reply(attributes):
        return "marked as an auto-reply in its attributes (loop guard)"
    if author in settings["AGENT_IDENTITIES"]:
        return "written by an agent"
    if author == SYSTEM_AUTHOR:
        return "written by the REST API as 'system', not by a customer"
    return None


def is_auto_reply(attributes: str | None) -> bool:
    """Whether message attributes carry the mark our replies set (see outbox.Claimed)."""
    try:
        parsed = json.loads(attributes or "{}")
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("autoReply") is True
