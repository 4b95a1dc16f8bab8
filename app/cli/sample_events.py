"""Sample events: the form parameters Twilio posts for each event type, shaped like its
captured requests, with fresh SIDs. `send-event` (dev.py) posts them; the tests and
bench/ build their webhooks from them."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from ..pipeline.events import PRE_EVENTS, source_of


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def build(event_type: str, *, account_sid: str, body: str = "Hello, I need help",
          author: str = "+15558675310", conversation_sid: str | None = None,
          message_sid: str | None = None, status: str = "delivered",
          error_code: str = "0", extra: dict | None = None) -> dict[str, str]:
    """Return the form parameters Twilio would post for `event_type`."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    params = {
        "AccountSid": account_sid,
        "EventType": event_type,
        "ChatServiceSid": sid("IS"),
        "ConversationSid": conversation_sid or sid("CH"),
        "Source": source_of(author),
        "RetryCount": "0",
        "DateCreated": now,
    }
    if params["Source"] == "SDK":  # Twilio names the chat user of SDK events
        params["ClientIdentity"] = author
    if event_type.startswith("onMessage"):
        params.update({
            "MessagingServiceSid": sid("MG"), "Author": author, "Body": body,
            "Attributes": "{}", "ParticipantSid": sid("MB"), "Index": "0",
        })
        if event_type not in PRE_EVENTS:
            params["MessageSid"] = message_sid or sid("IM")
    elif event_type == "onDeliveryUpdated":
        params.update({
            "MessageSid": message_sid or sid("IM"), "DeliveryReceiptSid": sid("DY"),
            "ChannelMessageSid": sid("SM"), "ParticipantSid": sid("MB"),
            "Status": status, "ErrorCode": error_code, "DateUpdated": now,
        })
    elif event_type.startswith("onParticipant"):
        params.update({"ParticipantSid": sid("MB"), "Identity": author})
    elif event_type.startswith("onConversation"):
        params.update({"FriendlyName": "Support", "State": "active"})
    elif event_type.startswith("onUser"):
        params.update({"UserSid": sid("US"), "Identity": author})
    params.update(extra or {})
    return params


def idempotency_token() -> str:
    return str(uuid.uuid4())
