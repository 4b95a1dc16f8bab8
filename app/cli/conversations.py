"""`flask --app wsgi conversations ...` and `participants ...`: the Conversations API from
the command line, one call per operation, each printing what it did."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from ..provisioning import conversations as api
from ..provisioning.conversations import CONVERSATION_ATTRIBUTES_MAX, STATES
from ..twilio.error_codes import describe
from ..twilio.errors import ApiError
from .client import account_client
from .guard import add_commands

group = AppGroup("conversations", help="Create, list, show and close conversations.")
participants = AppGroup("participants", help="Add people to a conversation, or remove them.")


def _checked(check, *args, param: str | None = None, **kwargs):
    """Run an input check; its ValueError is a usage error naming the option."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param) from None


def _failed(exc: ApiError, done: list[str] | None = None):
    """Twilio's error with its code and meaning (or its page), what was done, exit 1."""
    meaning = describe(exc.code) if exc.code else None
    if meaning and meaning.startswith("Twilio error"):  # not one we know: its page
        meaning = f"https://www.twilio.com/docs/api/errors/{exc.code}"
    click.echo(f"error: {exc.message}" + (f" -- {meaning}" if meaning else ""), err=True)
    for line in done or []:
        click.echo(f"note: {line}", err=True)
    raise SystemExit(1)


def _members(sms, whatsapp, proxies, chat) -> list[api.Participant]:
    """The participants the options ask for; each --proxy goes to the channel its
    address is on (whatsapp: prefix or not)."""
    wa_proxy = next((p for p in proxies if p.startswith("whatsapp:")), None)
    sms_proxy = next((p for p in proxies if not p.startswith("whatsapp:")), None)
    if whatsapp and wa_proxy is None and sms_proxy and not sms:
        wa_proxy = sms_proxy  # one plain --proxy for the one WhatsApp participant
    members = []
    if sms:
        members.append(_checked(api.messaging, sms, sms_proxy, whatsapp=False, param="--sms"))
    if whatsapp:
        members.append(_checked(api.messaging, whatsapp, wa_proxy, whatsapp=True,
                                param="--whatsapp"))
    if chat:
        members.append(_checked(api.chat, chat, param="--chat"))
    if proxies and not (sms or whatsapp):
        raise click.BadParameter("--proxy goes with --sms or --whatsapp", param_hint="--proxy")
    return members


_SMS = click.option("--sms", metavar="+1555...", help="Add an SMS participant: their number.")
_WHATSAPP = click.option("--whatsapp", metavar="whatsapp:+1555...",
                         help="Add a WhatsApp participant: their WhatsApp address.")
_PROXY = click.option("--proxy", "proxies", multiple=True, metavar="+1501...",
                      help="Our Twilio number they talk to (whatsapp:+1501... for WhatsApp); "
                           "twice with both --sms and --whatsapp.")
_CHAT = click.option("--chat", metavar="IDENTITY",
                     help="Add a chat (SDK) participant: their identity, e.g. alice@support.")


@group.command("create")
@click.option("--name", help="FriendlyName (at most 256 characters).")
@click.option("--attributes", metavar="JSON", help="A JSON object (at most 16 KB).")
@_SMS
@_WHATSAPP
@_PROXY
@_CHAT
def create(name, attributes, sms, whatsapp, proxies, chat):
    """Create a conversation, with an SMS or WhatsApp participant and a chat participant
    to talk to them (Twilio's quickstart in one command)."""
    name = _checked(api.friendly_name, name, param="--name")
    attributes = _checked(api.attributes, attributes, CONVERSATION_ATTRIBUTES_MAX,
                          param="--attributes")
    members = _members(sms, whatsapp, proxies, chat)
    client = account_client()
    try:
        conversation = api.create(client, name=name, attributes_json=attributes)
    except ApiError as exc:
        _failed(exc)
    click.echo(f"created conversation {conversation.sid} ({conversation.state}"
               + (f", {conversation.friendly_name!r}" if conversation.friendly_name else "")
               + ")")
    for who in members:
        try:
            member = api.add(client, conversation.sid, who)
        except ApiError as exc:
            _failed(exc, [f"conversation {conversation.sid} exists without the "
                          f"{who.describe()}: `participants add {conversation.sid} ...` adds "
                          f"it, `conversations close {conversation.sid}` ends it"])
        click.echo(f"added {member.sid}: {api.binding(member)}")
    if any(w.address for w in members) and not chat:
        click.echo("tip: --chat IDENTITY adds someone to answer them from a chat client")


@group.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only conversations in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def list_conversations(state, limit):
    """List conversations, newest first: SID, state, created, name."""
    try:
        found = api.listing(account_client(), state, limit)
    except ApiError as exc:
        _failed(exc)
    if not found:
        click.echo("no conversations" + (f" in state {state}" if state else ""))
    for c in found:
        created = f"{c.date_created:%Y-%m-%d %H:%M}" if c.date_created else "-"
        click.echo(f"{c.sid} {c.state:<8} {created} {c.friendly_name or ''}".rstrip())


@group.command("show")
@click.argument("sid")
@click.option("--messages", "limit", default=10, show_default=True,
              type=click.IntRange(1, 100), help="How many of the newest messages.")
def show(sid, limit):
    """A conversation: its participants (bindings, attributes) and its newest messages
    (author, body, delivery status)."""
    sid = _checked(api.conversation_sid, sid, param="SID")
    try:
        found, members, messages, receipts = api.details(account_client(), sid, limit)
    except ApiError as exc:
        _failed(exc)
    click.echo(f"{found.sid} {found.state}" + (f" {found.friendly_name!r}"
                                               if found.friendly_name else ""))
    click.echo(f"  attributes: {found.attributes or '{}'}")
    click.echo(f"participants ({len(members)}):")
    for m in members:
        click.echo(f"  {m.sid} {api.binding(m)} attributes={m.attributes or '{}'}")
    click.echo(f"messages (newest {limit}):" if messages else "messages: none")
    for m in messages:
        when = f"{m.date_created:%Y-%m-%d %H:%M}" if m.date_created else "-"
        media = f" [+{len(m.media)} media]" if m.media else ""
        click.echo(f"  #{m.index} {when} {m.author}: {m.body or ''}{media} "
                   f"-- {_delivery(receipts[m.sid])}")


def _delivery(receipts) -> str:
    if not receipts:
        return "no receipts"
    parts = []
    for r in receipts:
        code = f" {r.error_code} ({describe(r.error_code)})" if r.error_code else ""
        parts.append(f"{r.status}{code}")
    return ", ".join(parts)


@group.command("close")
@click.argument("sid")
def close(sid):
    """Close a conversation (State=closed): its bindings are freed and no one can write."""
    sid = _checked(api.conversation_sid, sid, param="SID")
    try:
        closed = api.close(account_client(), sid)
    except ApiError as exc:
        _failed(exc)
    click.echo(f"{closed.sid}: state {closed.state}")


@participants.command("add")
@click.argument("sid")
@_SMS
@_WHATSAPP
@_PROXY
@_CHAT
@click.option("--attributes", metavar="JSON", help="A JSON object (at most 4 KB).")
def add(sid, sms, whatsapp, proxies, chat, attributes):
    """Add one participant to conversation SID: --sms/--whatsapp with --proxy, or --chat."""
    sid = _checked(api.conversation_sid, sid, param="SID")
    members = _members(sms, whatsapp, proxies, chat)
    if len(members) != 1:
        raise click.UsageError("give exactly one of --sms, --whatsapp or --chat")
    who = members[0]
    if attributes is not None:
        who = _checked(api.messaging, who.address, who.proxy,
                       whatsapp=who.address.startswith("whatsapp:"),
                       attributes_json=attributes, param="--attributes") \
            if who.address else _checked(api.chat, who.identity, attributes,
                                         param="--attributes")
    try:
        member = api.add(account_client(), sid, who)
    except ApiError as exc:
        _failed(exc)
    click.echo(f"added {member.sid} to {sid}: {api.binding(member)}")


@participants.command("remove")
@click.argument("sid")
@click.argument("participant")
def remove(sid, participant):
    """Remove participant MB... from conversation SID."""
    sid = _checked(api.conversation_sid, sid, param="SID")
    participant = _checked(api.participant_sid, participant, param="PARTICIPANT")
    try:
        api.remove(account_client(), sid, participant)
    except ApiError as exc:
        if exc.status == 404:  # Twilio's 20404: no such participant (or conversation)
            click.echo(f"error: {participant} is not a participant of {sid}: nothing removed "
                       f"(`conversations show {sid}` lists its participants)", err=True)
            raise SystemExit(1) from None
        _failed(exc)
    click.echo(f"removed {participant} from {sid}")


def init_app(app: Flask) -> None:
    add_commands(app, group, participants)
