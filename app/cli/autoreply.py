"""Auto-reply from the command line: the runtime switch, why a message got what it got,
and the rules file (check it, try it) without sending anything."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from ..autoreply import ConversationState, Inbound, decide, evaluation
from ..autoreply.names import CHANNELS
from ..jobs import rules_reload as reload
from ..logs import printable
from ..operator import switch
from ..provisioning.conversations import conversation_sid
from ..services import services
from ..store.models import Conversation
from ..timeline import conversations as timeline
from ..timeline import faq as faq_record
from .guard import add_commands

autoreply_group = AppGroup("autoreply", help="Turn automated replies on or off at run time.")
rules_group = AppGroup("rules", help="Check and try the auto-reply rules file.")


@autoreply_group.command("off")
def autoreply_off():
    """Stop automated replies on every instance (within a few seconds); webhooks are still
    verified, recorded and answered 2xx, and every decision still recorded."""
    _turn("off")


@autoreply_group.command("on")
def autoreply_on():
    """Resume automated replies on every instance."""
    _turn("on")


@autoreply_group.command("status")
def autoreply_status():
    """Print whether automated replies are on, and where that comes from."""
    bot = services()
    with bot.db.read() as conn:
        autoreply = switch.status(conn, bot.policy)
    source = ("runtime switch (`flask --app wsgi autoreply on|off`)" if autoreply.set
              else "AUTO_REPLY_ENABLED (no runtime switch set)")
    click.echo(f"auto-reply {'on' if autoreply.on else 'off'}: {source}")


def _turn(value: str) -> None:
    switch.turn(services(), value, by="cli")
    click.echo(f"auto-reply {value} (every instance obeys within {switch.OBEYED_WITHIN:g} s)")


@click.command("why")
@with_appcontext
@click.argument("message_sid")
def why(message_sid):
    """Print the decision taken for message MESSAGE_SID, and what became of its reply."""
    with services().db.read() as conn:
        found = timeline.message(conn, message_sid)
        match = faq_record.match_of(conn, message_sid)
    if found is None:
        raise click.ClickException(f"no record of {message_sid} (never received, or pruned)")
    event, reply = found["message"], found["reply"]
    if event is not None:
        click.echo(f"received: {event['received_at']:%Y-%m-%d %H:%M:%S} UTC"
                   + (f" from {printable(event['author'])}" if event["author"] else "")
                   + (f" ({event['channel']})" if event["channel"] else ""))
        click.echo(f"decision: {event['reason'] or '-'}"
                   + (f" (rule {printable(event['rule'])})" if event["rule"] else "")
                   + (f": {event['reason_text']}"
                      if event["reason_text"] and event["reason"] != "REPLY" else ""))
        click.echo(f"outcome: {printable(event['outcome'])}")
    if match is not None:
        candidates = match["candidates"]
        if any(c["score"] for c in candidates):
            scores = "candidates " + ", ".join(f"{c['faq_id']} {c['score']:.2f}"
                                               for c in candidates)
        else:  # as the dashboard's thread says it: no score was computed
            scores = ("not scored: a number picked from a clarification, or the answer "
                      "model's citation (" + ", ".join(c["faq_id"] for c in candidates) + ")")
        click.echo(f"faq: {match['outcome']}" + (f" {match['faq_id']}" if match["faq_id"] else "")
                   + (f"; {scores}" if candidates else "")
                   + (f"; marked wrong {match['wrong_at']}" if match["wrong_at"] else ""))
    if reply is not None:
        error = reply["error"] if reply["outcome"] == "failed" else reply["delivery"]["error"]
        click.echo(f"reply #{reply['id']}: {reply['outcome_label']}, "
                   f"{reply['attempts']} attempt(s)"
                   + (f", sent as {reply['message_sid']}"
                      if reply["message_sid"] and not reply["dry_run"] else "")
                   + (f", error {error['code'] or '-'}: "
                      f"{printable(error['meaning'] or error['message'] or '')}" if error else ""))
        if reply["dry_run"]:
            click.echo("dry run: this server has no Twilio credentials; the reply was "
                       "logged, never sent to the customer")


@rules_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def rules_check(path):
    """Validate a rules file (default: RESPONDER_RULES) and summarise it."""
    path = path or services().settings.bot.rules_path
    if path is None:
        raise click.UsageError("give a FILE, or set RESPONDER_RULES")
    from ..autoreply.compiler import load_rules
    from ..autoreply.rules import RulesError

    try:
        rules = load_rules(path)
    except RulesError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"{path}: OK")
    for line in rules.summary():
        click.echo(f"  {line}")


@rules_group.command("reload")
def rules_reload():
    """Check RESPONDER_RULES and make every process and instance load it again (within a
    few seconds, whole: requests see the old rules or the new, never a mix)."""
    path = services().settings.bot.rules_path
    if path is None:
        raise click.UsageError("RESPONDER_RULES is not set: there is no rules file to reload")
    from ..autoreply.rules import RulesError  # a rules file's libraries: only with one

    try:
        value = reload.request_reload(services().db, path)
    except RulesError as exc:
        click.echo(str(exc), err=True)
        click.echo("nothing reloaded: the running processes keep their rules", err=True)
        sys.exit(1)
    click.echo(f"{path}: OK; every process loads it within {reload.POLL_SECONDS:g} s "
               f"(digest {value})")


@rules_group.command("try")
@click.argument("text")
@click.option("--author", default="+15558675310", show_default=True)
@click.option("--channel", default="SMS", show_default=True,
              type=click.Choice(sorted(CHANNELS), case_sensitive=False),
              help="The message's Source.")
@click.option("--at", "at", help="When, e.g. 2026-12-24T22:00 (in the business hours' time "
              "zone, else UTC, unless it carries an offset; default: now).")
@click.option("--conversation", help="Use this conversation's stored state (CH...).")
@click.option("--json", "as_json", is_flag=True,
              help="Print what `faq eval --json` prints for one case.")
def rules_try(text, author, channel, at, conversation, as_json):
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
    # composing: what the bot answers, also when it answers after the ack (debounce, the
    # answer model, which `rules try` does not call)
    decision = decide(message, conversation_state, policy, now, enabled=enabled,
                      composing=True)
    if as_json:
        result = evaluation.describe(text, decision)
        click.echo(json.dumps({k: result[k] for k in (
            "text", "outcome", "faq_id", "candidates", "decision", "reply")}, ensure_ascii=False))
        return
    click.echo(f"at {now.astimezone(zone).isoformat(timespec='minutes')} ({zone}): "
               f"{decision.reason.name} ({decision})")
    if decision.rule:
        click.echo(f"rule: {decision.rule}")
    if decision.faq:
        click.echo(f"faq: {decision.faq.describe()}")
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
    if not 1900 <= moment.year <= 9000:  # the next opening, a week on, must be a date too
        raise click.BadParameter(f"{at!r}: a year from 1900 to 9000, please")
    return moment


def init_app(app: Flask) -> None:
    add_commands(app, autoreply_group, rules_group, why)
