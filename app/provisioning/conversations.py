"""Conversations and participants from the command line: input checked before any call,
then one Conversations API call per operation.

Limits (https://www.twilio.com/docs/conversations/conversations-limits): a conversation's
FriendlyName 256 characters and Attributes 16 KB; a participant's Identity, binding
Address and ProxyAddress 256 characters each, its Attributes 4 KB. Attributes are a JSON
object. An SMS participant is `MessagingBinding.Address` (the customer's number) and
`MessagingBinding.ProxyAddress` (our Twilio number); a WhatsApp one the same with the
`whatsapp:` prefix; a chat participant an `Identity`.
https://www.twilio.com/docs/conversations/api/conversation-resource
https://www.twilio.com/docs/conversations/api/conversation-participant-resource
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from twilio.rest import Client

from ..twilio.errors import api_errors
from .addresses import E164

CONVERSATION_ATTRIBUTES_MAX = 16 * 1024
PARTICIPANT_ATTRIBUTES_MAX = 4 * 1024
TEXT_MAX = 256
STATES = ("active", "inactive", "closed")
_CONVERSATION_SID = re.compile(r"CH[0-9a-fA-F]{32}")
_PARTICIPANT_SID = re.compile(r"MB[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Participant:
    """Who to add: a chat identity, or a messaging binding (address and our proxy)."""

    identity: str | None = None
    address: str | None = None
    proxy: str | None = None
    attributes: str | None = None

    def describe(self) -> str:
        if self.identity:
            return f"chat participant {self.identity}"
        kind = "WhatsApp" if self.address.startswith("whatsapp:") else "SMS"
        return f"{kind} participant {self.address} (via {self.proxy})"


def attributes(text: str | None, limit: int) -> str | None:
    """A JSON object within `limit` bytes, compact as sent; ValueError otherwise."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"attributes are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"attributes must be a JSON object ({{...}}), got {type(value).__name__}")
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size = len(compact.encode())
    if size > limit:
        raise ValueError(f"attributes are {size} bytes; Twilio takes at most "
                         f"{limit // 1024} KB ({limit} bytes)")
    return compact


def conversation_sid(text: str) -> str:
    if not _CONVERSATION_SID.fullmatch(text):
        raise ValueError(f"{text!r} is not a Conversation SID (CH and 32 hex characters)")
    return text


def participant_sid(text: str) -> str:
    if not _PARTICIPANT_SID.fullmatch(text):
        raise ValueError(f"{text!r} is not a Participant SID (MB and 32 hex characters; "
                         "`conversations show CH...` lists them)")
    return text


def friendly_name(text: str | None) -> str | None:
    if text is not None and len(text) > TEXT_MAX:
        raise ValueError(f"the name is {len(text)} characters; Twilio takes at most {TEXT_MAX}")
    return text


def messaging(address: str, proxy: str | None, *, whatsapp: bool,
              attributes_json: str | None = None) -> Participant:
    """An SMS or WhatsApp participant: the customer's number and our Twilio number."""
    prefix = "whatsapp:" if whatsapp else ""
    channel = "WhatsApp" if whatsapp else "SMS"
    if not proxy:
        raise ValueError(f"an {channel} participant needs --proxy: the Twilio number "
                         f"({prefix}+1...) they write to and get our messages from")
    numbers = []
    for role, value in (("address", address), ("proxy", proxy)):
        number = value.strip().removeprefix("whatsapp:")
        if value.strip().startswith("whatsapp:") and not whatsapp:
            raise ValueError(f"{value!r} is a WhatsApp address: use --whatsapp")
        if not E164.fullmatch(number):
            raise ValueError(f"the {role} {value!r} is not an E.164 number (+ and up to 15 "
                             "digits, country code first, e.g. +15558675310)")
        numbers.append(prefix + number)
    return Participant(address=numbers[0], proxy=numbers[1],
                       attributes=attributes(attributes_json, PARTICIPANT_ATTRIBUTES_MAX))


def chat(identity: str, attributes_json: str | None = None) -> Participant:
    if not identity.strip() or len(identity) > TEXT_MAX:
        raise ValueError(f"a chat identity is 1 to {TEXT_MAX} characters, got {identity!r}")
    return Participant(identity=identity,
                       attributes=attributes(attributes_json, PARTICIPANT_ATTRIBUTES_MAX))


def create(client: Client, *, name: str | None, attributes_json: str | None):
    args = {"friendly_name": name, "attributes": attributes_json}
    with api_errors("creating the conversation"):
        return client.conversations.v1.conversations.create(
            **{k: v for k, v in args.items() if v is not None})


def add(client: Client, sid: str, who: Participant):
    args = {"identity": who.identity, "messaging_binding_address": who.address,
            "messaging_binding_proxy_address": who.proxy, "attributes": who.attributes}
    with api_errors(f"adding the {who.describe()} to {sid}"):
        return client.conversations.v1.conversations(sid).participants.create(
            **{k: v for k, v in args.items() if v is not None})


def remove(client: Client, sid: str, member_sid: str) -> None:
    with api_errors(f"removing participant {member_sid} from {sid}"):
        client.conversations.v1.conversations(sid).participants(member_sid).delete()


def listing(client: Client, state: str | None, limit: int):
    args = {"state": state} if state else {}
    with api_errors("listing conversations"):
        return client.conversations.v1.conversations.list(limit=limit,
                                                          page_size=min(limit, 100), **args)


def close(client: Client, sid: str):
    with api_errors(f"closing {sid}"):
        return client.conversations.v1.conversations(sid).update(state="closed")


def details(client: Client, sid: str, limit: int):
    """(conversation, participants, its newest `limit` messages oldest first, and each
    message's receipts by its SID)."""
    conversation = client.conversations.v1.conversations(sid)
    with api_errors(f"reading {sid}"):
        found = conversation.fetch()
        members = conversation.participants.list(page_size=100)
        messages = conversation.messages.list(order="desc", limit=limit,
                                              page_size=min(limit, 100))[::-1]
        receipts = {m.sid: conversation.messages(m.sid).delivery_receipts.list(limit=50)
                    for m in messages}
    return found, members, messages, receipts


def binding(member) -> str:
    """A participant as people read it: its identity, or its channel address and proxy."""
    bound = member.messaging_binding or {}
    if member.identity:
        return f"chat {member.identity}"
    kind = (bound.get("type") or "sms").upper()
    return f"{kind} {bound.get('address')} via {bound.get('proxy_address')}"
