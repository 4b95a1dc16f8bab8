"""The mark our replies carry in their message attributes: the one definition.

The outbox writes it on every reply; the loop guard reads it (never answer a message
marked as ours); the sender reads it to find a reply Twilio already has.
"""

from __future__ import annotations

import json

from .. import formats

AUTO_REPLY = "autoReply"
IN_REPLY_TO = "inReplyTo"


def reply_attributes(in_reply_to: str) -> str:
    """The attributes of a reply to message `in_reply_to`."""
    return json.dumps({AUTO_REPLY: True, IN_REPLY_TO: in_reply_to})


def _parse(attributes: str | None) -> dict:
    """Anyone can set a message's attributes (a chat user on their own message): any
    text, JSON or not, nested however deep, is an answer, never an exception."""
    try:
        parsed = formats.load_json(attributes or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def is_auto_reply(attributes: str | None) -> bool:
    """Whether a message's attributes carry our mark."""
    return _parse(attributes).get(AUTO_REPLY) is True


def replied_to(attributes: str | None) -> str | None:
    """The MessageSid a reply of ours answered (None: not one of our replies)."""
    parsed = _parse(attributes)
    value = parsed.get(IN_REPLY_TO) if parsed.get(AUTO_REPLY) is True else None
    return value if isinstance(value, str) else None
