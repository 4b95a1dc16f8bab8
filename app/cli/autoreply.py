"""Auto-reply from the command line: the runtime switch, why a message got what it got,
and the rules file (check it, try it) without sending anything."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from ..autoreply import ConversationState, Inbound, decide
from ..autoreply.names import CHANNELS
from ..pipeline import state
from ..provisioning.conversations import conversation_sid
from ..services import services
from ..store.models import Conversation, ProcessedEvent, Reply

autoreply_group = AppGroup("autoreply", help="Turn automated replies on or off at run time.")
rules_group = AppGroup("rules", help="Check and try the auto-reply rules file.")


@autoreply_group.command("off")
def autoreply_off():
    """Stop automated replies on every instance (within a few seconds); webhooks are still
    verified, recorded and answered 2xx, and every decision still recorded."""
    _switch("off")


@autoreply_group.command("on")
def autoreply_on():
    """Resume automated replies on every instance."""
    _switch("on")


@autoreply_group.command("status")
def autoreply_status():
    """Print whether automated replies are on, and where that comes from."""
    bot = services()
    stored = bot.processor.state.autoreply_switch()
    if stored is None:
        source = "AUTO_REPLY_ENABLED (no runtime switch set)"
    else:
        source = "runtime switch (`flask --app wsgi autoreply on|off`)"
    click.echo(f"auto-reply {'on' if bot.policy.switch(stored) else 'off'}: {source}")


def _switch(value: str) -> None:
    with services().db.transaction() as conn:
        state.set_switch(conn, state.AUTOREPLY_SWITCH, value)
    click.echo(f"auto-reply {value} (every instance obeys within "
               f"{state.SWITCH_CACHE_SECONDS:g} s)")


@click.command("why")
@with_appcontext
@click.argument("message_sid")
def why(message_sid):
    """Print the decision taken for message MESSAGE_SID, and what became of its reply."""
    with services().db.read() as conn:
        event = conn.execute(
            select(ProcessedEvent.received_at, ProcessedEvent.outcome,
                   ProcessedEvent.reason, ProcessedEvent.rule)
            .where(ProcessedEvent.key == f"message:{message_sid}")).first()
        reply = conn.execute(
            select(Reply.id, Reply.status, Reply.attempts, Reply.twilio_message_sid,
                   Reply.error_code, Reply.error_message, Reply.delivery_status)
            .where(Reply.in_reply_to == message_sid)).first()
    if event is None and reply is None:
        raise click.ClickException(f"no record of {message_sid} (never received, or pruned)")
    if event is not None:
        click.echo(f"received: {event.received_at:%Y-%m-%d %H:%M:%S} UTC")
        click.echo(f"decision: {event.reason or '-'}" + (f" (rule {event.rule})"
                                                           if event.rule else ""))
        click.echo(f"outcome: {event.outcome}")
    if reply is not None:
        click.echo(f"reply #{reply.id}: {reply.status}, {reply.attempts} attempt(s)"
                   + (f", sent as {reply.twilio_message_sid}" if reply.twilio_message_sid else "")
                   + (f", delivery {reply.delivery_status}" if reply.delivery_status else "")
                   + (f", error {reply.error_code}: {reply.error_message}"
                      if reply.error_code or reply.error_message else ""))


@rules_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def rules_check(path):
    """Validate a rules file (default: RESPONDER_RULES) and summarise it."""
    path = path or services().settings.bot.rules_path
    if path is None:
        raise click.UsageError("give a FILE, or set RESPONDER_RULES")
    from ..autoreply.rules import RulesError, load_rules

    try:
        rules = load_rules(path)
    except RulesError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"{path}: OK")
    for line in rules.summary():
        click.echo(f"  {line}")


@rules_group.command("try")
@click.argument("text")
@click.option("--author", default="+15558675310", show_default=True)
@click.option("--channel", default="SMS", show_default=True,
              type=click.Choice(sorted(CHANNELS), case_sensitive=False),
              help="The message's Source.")
@click.option("--at", "at", help="When, e.g. 2026-12-24T22:00 (in the business hours' time "
              "zone, else UTC, unless it carries an offset; default: now).")
@click.option("--conversation", help="Use this conversation's stored state (CH...).")
def rules_try(text, author, channel, at, conversation):
    """Print what the bot would do with a message TEXT, and why; sends nothing."""
    bot = services()
    policy = bot.policy
    zone = _zone(policy)
    now = _moment(at, zone)
    conversation_state = ConversationState(
        inbound_before=0, last_reply_at=None, replies_last_hour=0, last_agent_at=None,
        opted_out=False)
    if conversation:
        conversation_state = _stored_state(bot, conversation, author, now)
    message = Inbound(body=text, author=author, channel=channel.upper(), attributes=None,
                      participant_sid=None, received_at=now)
    enabled = policy.switch(bot.processor.state.autoreply_switch())
    decision = decide(message, conversation_state, policy, now, enabled=enabled)
    click.echo(f"at {now.astimezone(zone).isoformat(timespec='minutes')} ({zone}): "
               f"{decision.reason.name} ({decision})")
    if decision.rule:
        click.echo(f"rule: {decision.rule}")
    if decision.reply:
        if decision.reply.body:
            click.echo(f"reply: {decision.reply.body}")
        if decision.reply.content_sid:
            click.echo(f"template: {decision.reply.content_sid} "
                       f"{decision.reply.content_variables or ''}".rstrip())
        if decision.reply.media:
            click.echo(f"media: {decision.reply.media}")


def _stored_state(bot, sid: str, author: str, now: datetime) -> ConversationState:
    """The state the bot keeps for conversation `sid`; refuses one it never saw."""
    try:
        sid = conversation_sid(sid)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--conversation") from None
    with bot.db.read() as conn:
        known = conn.execute(select(Conversation.sid).where(Conversation.sid == sid)).first()
    if known is None:
        raise click.BadParameter(f"the bot has no record of {sid} (no message of it received, "
                                 "or pruned)", param_hint="--conversation")
    return bot.processor.state.conversation(sid, [author], now).state


def _zone(policy) -> ZoneInfo | timezone:
    """The rules' time zone (their business hours'), else UTC."""
    hours = policy.rules.hours if policy.rules else None
    return hours.zone if hours else UTC


def _moment(at: str | None, zone) -> datetime:
    if not at:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise click.BadParameter(f"{at!r}: expected e.g. 2026-12-24T22:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment
