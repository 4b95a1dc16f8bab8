"""Address Configurations: which numbers turn a new customer's message into a conversation,
and whether this server hears about that conversation.

    POST /v1/Configuration/Addresses           Type, Address, AutoCreation.Enabled,
    POST /v1/Configuration/Addresses/{address}   AutoCreation.Type (webhook|studio|default),
                                                  AutoCreation.ConversationServiceSid,
                                                  AutoCreation.WebhookUrl/Method/Filters
https://www.twilio.com/docs/conversations/api/address-configuration-resource

Which auto-creation type: a new conversation's events reach this server either through
the webhooks of its service (or the account-wide ones, `webhooks configure`) or through
a conversation-scoped webhook the address configuration attaches (type `webhook`). When
the service's webhooks already post onMessageAdded here, the type is `default`: a scoped
webhook too would deliver every event twice (deduplicated here, but twice the load and
twice the log lines). Otherwise the type is `webhook`, pointing here, so the number works
on its own. A number handed to a Studio flow is not taken from it without --force.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from twilio.rest import Client

from ..twilio.errors import ApiError, api_errors
from . import webhooks
from .listing import diff_lines
from .webhooks import WEBHOOK_PATH

E164 = re.compile(r"\+[1-9]\d{1,14}")
# The events an address configuration's webhook may carry (Twilio's reference).
SCOPED_FILTERS = frozenset({
    "onMessageAdded", "onMessageUpdated", "onMessageRemoved", "onConversationUpdated",
    "onConversationStateUpdated", "onConversationRemoved", "onParticipantAdded",
    "onParticipantUpdated", "onParticipantRemoved", "onDeliveryUpdated"})
FIELDS = (("enabled", "auto-creation"), ("auto_type", "type"),
          ("service_sid", "service"), ("webhook_url", "webhook URL"),
          ("webhook_method", "webhook method"), ("webhook_filters", "webhook filters"),
          ("studio_flow_sid", "Studio flow"))
SETUP = "flask --app wsgi setup --address"


@dataclass(frozen=True)
class Address:
    """One number's address configuration, as Twilio reports it (None: none yet)."""

    address: str
    kind: str  # sms | whatsapp
    sid: str | None = None
    enabled: bool = False
    auto_type: str | None = None  # webhook | studio | default
    service_sid: str | None = None  # None: the account's default service
    webhook_url: str | None = None
    webhook_method: str | None = None
    webhook_filters: tuple[str, ...] = ()
    studio_flow_sid: str | None = None


@dataclass(frozen=True)
class Delivery:
    """Whether a service's (or the account-wide) webhooks post onMessageAdded here."""

    reaches: bool
    label: str  # the scope whose webhooks apply: "account-wide", "service IS..."
    service_sid: str  # the service new conversations go to


@dataclass(frozen=True)
class Reach:
    """Whether inbound messages to a number reach this bot, and why (or why not)."""

    status: str  # OK | WARN (reaches, with a flaw) | FAIL (does not reach)
    why: str


def parse(address: str, kind: str | None) -> tuple[str, str]:
    """(address as Twilio stores it, type): +E.164 for SMS, whatsapp:+E.164 for WhatsApp.
    ValueError says what is wrong."""
    prefixed = address.strip().startswith("whatsapp:")
    number = address.strip().removeprefix("whatsapp:")
    if prefixed and kind == "sms":
        raise ValueError(f"{address!r} is a WhatsApp address but --type is sms: give "
                         f"{number} for SMS, or --type whatsapp")
    kind = kind or ("whatsapp" if prefixed else "sms")
    if not E164.fullmatch(number):
        raise ValueError(f"{address!r} is not an E.164 number (+ and up to 15 digits, "
                         "country code first, e.g. +15017122661)")
    return (f"whatsapp:{number}" if kind == "whatsapp" else number), kind


def list_all(client: Client) -> list[Address]:
    with api_errors("listing the address configurations"):
        return [_address(c) for c in client.conversations.v1.address_configurations.list()]


def fetch(client: Client, address: str, kind: str) -> Address:
    """The number's configuration, or a blank Address when it has none."""
    found = next((a for a in list_all(client) if a.address == address), None)
    return found or Address(address=address, kind=kind)


def delivery(client: Client, service_sid: str | None, public: tuple[str, ...]) -> Delivery:
    """Whether the webhooks that apply to `service_sid`'s conversations (None: the
    default service's) post onMessageAdded to this server."""
    if service_sid is None:
        with api_errors("reading the account's default Conversation Service"):
            service_sid = client.conversations.v1.configuration().fetch().default_chat_service_sid
    hooks = webhooks.fetch_service(client, service_sid)
    if not hooks.has_own_urls:
        hooks = webhooks.fetch_account(client)
    reaches = (webhooks.serves(hooks.post_url, public, WEBHOOK_PATH)
               and "onMessageAdded" in hooks.filters and (hooks.method or "").upper() == "POST"
               and hooks.target in (None, "webhook"))
    return Delivery(reaches, f"{hooks.label} webhooks", service_sid)


def desired(current: Address, *, service_sid: str | None, delivered: Delivery,
            webhook_url: str) -> Address:
    """`current` set to auto-create conversations this server hears about (see above)."""
    wanted = replace(current, enabled=True, service_sid=service_sid or current.service_sid,
                     studio_flow_sid=None)
    if delivered.reaches:
        return replace(wanted, auto_type="default", webhook_url=None, webhook_method=None,
                       webhook_filters=())
    filters = tuple(f for f in webhooks.needed_filters() if f in SCOPED_FILTERS)
    return replace(wanted, auto_type="webhook", webhook_url=webhook_url,
                   webhook_method="POST", webhook_filters=filters)


def changes(before: Address, after: Address) -> list[str]:
    """The names of the fields that differ (filters compared as sets)."""
    differ = []
    for name, _ in FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if name == "webhook_filters":
            old, new = set(old), set(new)
        if name == "webhook_method":
            old, new = (old or "").upper(), (new or "").upper()
        if old != new and not (name == "service_sid" and new is None):
            differ.append(name)
    return differ


def save(client: Client, before: Address, after: Address) -> Address:
    """Create or update the configuration; return it as Twilio answers."""
    args = {"auto_creation_enabled": after.enabled, "auto_creation_type": after.auto_type}
    if after.service_sid:
        args["auto_creation_conversation_service_sid"] = after.service_sid
    if after.auto_type == "webhook":
        args.update(auto_creation_webhook_url=after.webhook_url,
                    auto_creation_webhook_method=after.webhook_method,
                    auto_creation_webhook_filters=list(after.webhook_filters))
    resource = client.conversations.v1.address_configurations
    with api_errors(f"saving the address configuration of {after.address}"):
        if before.sid is None:
            return _address(resource.create(type=after.kind, address=after.address,
                                             friendly_name="conversations bot", **args))
        return _address(resource(before.sid).update(**args))


def reach(config: Address, delivered: Delivery, public: tuple[str, ...]) -> Reach:
    """Whether inbound messages to the number reach this bot, and why not."""
    if not config.enabled:
        return Reach("FAIL", "auto-creation is off: a new customer's message creates no "
                     f"conversation -- fix: {SETUP} {config.address}")
    scoped = (config.auto_type == "webhook"
              and webhooks.serves(config.webhook_url, public, WEBHOOK_PATH)
              and "onMessageAdded" in config.webhook_filters)
    if scoped and delivered.reaches:
        return Reach("WARN", f"yes, twice: the conversation-scoped webhook and the "
                     f"{delivered.label} both post here -- fix: {SETUP} {config.address} "
                     "(drops the scoped one)")
    if scoped:
        return Reach("OK", f"yes, through the conversation-scoped webhook "
                     f"({config.webhook_url})")
    if delivered.reaches:
        via = {"studio": f" (Studio flow {config.studio_flow_sid} gets them too)",
               "webhook": f" (and its scoped webhook goes to {config.webhook_url})"}
        return Reach("OK", f"yes, through the {delivered.label} (service "
                     f"{delivered.service_sid}){via.get(config.auto_type, '')}")
    elsewhere = {"studio": f"to Studio flow {config.studio_flow_sid}",
                 "webhook": f"to {config.webhook_url}"}.get(config.auto_type, "nowhere else")
    return Reach("FAIL", f"no: new conversations go to service {delivered.service_sid}, "
                 f"whose {delivered.label} do not post onMessageAdded here, and their "
                 f"scoped webhook goes {elsewhere} -- fix: {SETUP} {config.address}")


def diagnose(client: Client, public: tuple[str, ...]) -> tuple[str, str, str | None]:
    """For the doctor: (OK|WARN|FAIL, what was found, the fix) over every number."""
    try:
        configs = list_all(client)
        delivered = {sid: delivery(client, sid, public)
                     for sid in {c.service_sid for c in configs}}
    except ApiError as exc:
        return "FAIL", exc.message, "run it again; `flask --app wsgi setup show`"
    if not configs:  # conversations may come from the API, or a Messaging Service's
        # autocreate (which the API does not show): not a fault in itself
        return ("OK", "no address configuration: texts to a number start a conversation "
                f"only through a Messaging Service that autocreates them ({SETUP} +1... "
                "sets one up)", None)
    found = [(c, reach(c, delivered[c.service_sid], public)) for c in configs]
    for status in ("FAIL", "WARN"):
        bad = [f"{c.address}: {r.why}" for c, r in found if r.status == status]
        if bad:
            detail, _, fix = "; ".join(bad).partition(" -- fix: ")
            return status, detail, fix or None
    return "OK", ", ".join(c.address for c, _ in found) + " reach this bot", None


def describe(config: Address) -> list[str]:
    return [f"    {title:<16} {_field(config, name)}" for name, title in FIELDS]


def diff(before: Address, after: Address) -> list[str]:
    """A diff-like listing: `-` the old value, `+` the new one, the rest unchanged."""
    differ = changes(before, after)
    return diff_lines(((title, _field(before, name), _field(after, name), name in differ)
                       for name, title in FIELDS), 16)


def _field(config: Address, name: str) -> str:
    if name == "service_sid" and config.service_sid is None:
        return "(the default service)"
    return _show(getattr(config, name))


def _show(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    return value or "(none)"


def _address(resource) -> Address:
    auto = resource.auto_creation or {}
    return Address(
        address=resource.address, kind=resource.type, sid=resource.sid,
        enabled=bool(auto.get("enabled")), auto_type=auto.get("type"),
        service_sid=auto.get("conversation_service_sid"),
        webhook_url=auto.get("webhook_url"), webhook_method=auto.get("webhook_method"),
        webhook_filters=tuple(auto.get("webhook_filters") or ()),
        studio_flow_sid=auto.get("studio_flow_sid"))
