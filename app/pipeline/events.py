"""Event: a Conversations webhook as a plain value, the one place HTTP becomes data.

Event names and parameters:
https://www.twilio.com/docs/conversations/conversations-webhooks
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import BadRequest, MissingField
from ..store.models import KEY_LENGTH
from . import fields

PRE_EVENTS = frozenset({
    "onMessageAdd", "onMessageUpdate", "onMessageRemove",
    "onConversationAdd", "onConversationUpdate", "onConversationRemove",
    "onParticipantAdd", "onParticipantUpdate", "onParticipantRemove",
    "onUserUpdate",
})
POST_EVENTS = frozenset({
    "onMessageAdded", "onMessageUpdated", "onMessageRemoved",
    "onConversationAdded", "onConversationUpdated", "onConversationRemoved",
    "onConversationStateUpdated",
    "onParticipantAdded", "onParticipantUpdated", "onParticipantRemoved",
    "onDeliveryUpdated", "onUserAdded", "onUserUpdated",
})
KNOWN_EVENTS = PRE_EVENTS | POST_EVENTS
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
MAX_TOKEN_LENGTH = KEY_LENGTH - len("token:")
# Parameters that differ between deliveries of one event (not part of a derived key).
_PER_DELIVERY = frozenset({"RetryCount"})


def source_of(author: str) -> str:
    """The `Source` Twilio gives a message by this author: WHATSAPP for whatsapp:+...,
    SMS for an E.164 number, SDK for a chat identity."""
    if author.startswith("whatsapp:"):
        return "WHATSAPP"
    return "SMS" if author.startswith("+") else "SDK"


@dataclass(frozen=True)
class Event:
    """One webhook: its type, its parameters (first value of each) and its token.

    `request_id` names the HTTP request it came in (see app/web/webhooks.py): carried
    with the event, not in a contextvar, because its writes run in group commit's thread
    and its reply is sent by another process; it goes with the reply (replies.request_id)
    into the sender's log lines.

    `params` holds only usable values: one that fails its check (fields.py) is left
    out and named in `ignored` with its problem, for the outcome's notes.
    """

    type: str
    params: Mapping[str, str] = field(default_factory=dict)
    idempotency_token: str | None = None
    request_id: str | None = field(default=None, compare=False)
    ignored: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_form(cls, form: Mapping, headers: Mapping, request_id: str | None = None) -> Event:
        """Build an Event from a parsed form (a MultiDict) and the request headers."""
        token = (headers.get(IDEMPOTENCY_HEADER) or "").strip()[:MAX_TOKEN_LENGTH] or None
        if token and not (token.isascii() and token.isprintable()):
            token = None  # a UUID in practice; else keyed by its parameters instead
        return cls.from_params({name: form.get(name) for name in form.keys()}, token,
                               request_id=request_id)

    @classmethod
    def from_params(cls, params: Mapping[str, str], token: str | None = None, *,
                    request_id: str | None = None) -> Event:
        """Build an Event from its parameters, checked as a webhook's are (raises
        BadRequest for no EventType or a NUL character; leaves out, and notes, values
        that fail their check); the one constructor for webhooks and catch-up alike."""
        event_type = (params.get("EventType") or "").strip()
        if not event_type:
            raise BadRequest("missing EventType parameter")
        for name, value in params.items():
            if "\x00" in name or "\x00" in value:
                raise BadRequest(f"parameter {name[:50]!r} contains a NUL character")
        ignored = fields.problems(params)
        usable = {k: v for k, v in params.items() if k not in ignored} if ignored else params
        return cls(event_type, MappingProxyType(dict(usable)), token, request_id,
                   MappingProxyType(ignored))

    @property
    def is_known(self) -> bool:
        return self.type in KNOWN_EVENTS

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else default

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise MissingField(self.type, name, self.ignored.get(name))
        return value

    @property
    def notes(self) -> tuple[str, ...]:
        """What was left out and why, for the outcome (names and problems, no values)."""
        return tuple(f"{name} ignored: {problem}" for name, problem in self.ignored.items())

    @property
    def claim_key(self) -> str:
        """The idempotency key that makes a retry or replay of this event a no-op.

        A message is answered once whatever the delivery attempt, so onMessageAdded is
        keyed on its MessageSid; a receipt changes status over time, so each
        (receipt, status) pair counts once; the rest use Twilio's idempotency token,
        and without one a digest of the parameters (a resent delivery is identical but
        for RetryCount).
        """
        if self.type == "onMessageAdded":
            return f"message:{self.require('MessageSid')}"
        if self.type == "onDeliveryUpdated":
            # The status as the receipt's handler reads it: "Delivered" is "delivered".
            status = self.require("Status").strip().lower()
            return f"receipt:{self.require('DeliveryReceiptSid')}:{status}"
        if self.idempotency_token:
            return f"token:{self.idempotency_token}"
        digest = hashlib.sha256()
        for name in sorted(self.params):
            if name not in _PER_DELIVERY:
                digest.update(f"{name}\x00{self.params[name]}\x00".encode("utf-8", "surrogatepass"))
        return f"derived:{digest.hexdigest()}"

