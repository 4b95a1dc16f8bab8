"""Answer customers: one auto-reply per inbound message, never to ourselves or agents."""

from __future__ import annotations

from functools import partial

from config import BotSettings

from ..delivery import marker, outbox
from ..pipeline.events import Event
from ..pipeline.outcome import REPLY_QUEUED, Kind, Outcome
from ..pipeline.router import Context, Router

router = Router()

# Messages created through the REST API without an author are written by "system".
SYSTEM_AUTHOR = "system"


@router.register("onMessageAdded", requires=("ConversationSid", "MessageSid", "Author"))
def answer_customer(event: Event, ctx: Context) -> Outcome:
    """Queue the auto-reply to a customer's message; say why when there is none."""
    reason = not_a_customer(event.require("Author"), event.get("Attributes"), ctx.bot)
    if reason:
        return Outcome(Kind.IGNORED, reason)
    ctx.on_claim(partial(
        outbox.queue_reply, conversation_sid=event.require("ConversationSid"),
        in_reply_to=event.require("MessageSid"), author=ctx.bot.identity,
        body=ctx.bot.auto_reply_text,
    ))
    return REPLY_QUEUED


def not_a_customer(author: str, attributes: str | None, bot: BotSettings) -> str | None:
    """Say why a message's author is not a customer to answer (None: it is one)."""
    if author == bot.identity:
        return "written by the bot itself (loop guard)"
    if marker.is_auto_reply(attributes):
        return "marked as an auto-reply in its attributes (loop guard)"
    if author in bot.agent_identities:
        return "written by an agent"
    if author == SYSTEM_AUTHOR:
        return "written by the REST API as 'system', not by a customer"
    return None
