"""Development and smoke tests: sign a webhook as Twilio would and post it, here or to a
deployed server (through its proxy)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import click
import requests
from flask import Flask
from flask.cli import with_appcontext
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ..pipeline.events import IDEMPOTENCY_HEADER, KNOWN_EVENTS, PRE_EVENTS, source_of
from ..services import services
from ..web import devtoken
from . import sample_events
from .guard import add_commands

REQUEST_ID_HEADER = "X-Request-Id"
# --channel: the Source Twilio gives such a message, and a customer of that channel.
CHANNELS = {"sms": ("SMS", "+15558675310"), "whatsapp": ("WHATSAPP", "whatsapp:+15558675310"),
            "chat": ("SDK", "customer@example.com")}


@click.command("send-event")
@with_appcontext
@click.argument("event_type", type=click.Choice(sorted(KNOWN_EVENTS)), required=False)
@click.option("--body", default="Hello, I need help", help="Message body.")
@click.option("--channel", type=click.Choice(sorted(CHANNELS)),
              help="sms, whatsapp or chat: sets Source, and the author unless --author "
                   "(default: the author's channel, sms without one).")
@click.option("--author", help="Message author: +1... (SMS), whatsapp:+1..., or a chat "
                               "identity (default: a customer of --channel).")
@click.option("--conversation", "conversation_sid", help="Conversation SID (default: a new one).")
@click.option("--message-sid", help="Message SID (default: a new one). Repeat it to see deduplication.")
@click.option("--status", default="delivered", help="Status for onDeliveryUpdated.")
@click.option("--error-code", default="0", help="ErrorCode for onDeliveryUpdated.")
@click.option("--payload", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replay a recorded payload: a form-encoded body as captured, or a JSON "
                   "object of parameters. EVENT_TYPE, if given, replaces its EventType.")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE", help="Extra or overriding parameter.")
@click.option("--url", help="Post to exactly this URL, signed for it (default: PUBLIC_BASE_URL "
                            "or http://127.0.0.1:5000, plus the path).")
@click.option("--curl", "show_curl", is_flag=True, help="Also print the equivalent curl command.")
@click.option("--dry", is_flag=True, help="Print the curl command only; send nothing.")
def send_event(event_type, body, channel, author, conversation_sid, message_sid, status,
               error_code, payload, extra, url, show_curl, dry):
    """Sign an EVENT_TYPE webhook (default onMessageAdded), or a recorded one, with the
    configured token (the Auth Token; in dry-run mode the development token) and post it."""
    bot = services()
    author = _author(channel, author)
    malformed = [item for item in extra if "=" not in item]
    if malformed:
        raise click.BadParameter(f"{malformed[0]!r}: expected NAME=VALUE", param_hint="--param")
    overrides = dict(item.split("=", 1) for item in extra)
    if payload:
        params = read_payload(payload)
        if event_type:
            params["EventType"] = event_type
        for name, value in overrides.items():
            params[name] = value
        event_type = params.get("EventType")
        if not event_type:
            raise click.UsageError(f"{payload} has no EventType: give EVENT_TYPE")
    else:
        event_type = event_type or "onMessageAdded"
        params = MultiDict(sample_events.build(
            event_type, account_sid=bot.settings.twilio.account_sid or "AC" + "0" * 32,
            body=body, author=author, conversation_sid=conversation_sid,
            message_sid=message_sid, status=status, error_code=error_code, extra=overrides))
    path = "/webhooks/conversations" + ("/pre" if event_type in PRE_EVENTS else "")
    public = bot.settings.web.public_base_urls
    url = url or (public[0] if public else "http://127.0.0.1:5000") + path
    headers = {
        # Twilio signs the exact URL it calls, query string included: so does this.
        "X-Twilio-Signature": RequestValidator(bot.signing_token).compute_signature(url, params),
        IDEMPOTENCY_HEADER: sample_events.idempotency_token(),
        "User-Agent": "TwilioProxy/1.1",
    }
    if show_curl or dry:
        click.echo(curl_command(url, params, headers))
    if dry:
        return
    try:
        response = requests.post(url, data=list(params.items(multi=True)), headers=headers,
                                 timeout=10, allow_redirects=False)
    except requests.RequestException as exc:
        click.echo(f"could not reach {url}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"HTTP {response.status_code} {response.reason}")
    for title, header in (("outcome", "X-Webhook-Outcome"), ("request id", REQUEST_ID_HEADER),
                          ("redirected to", "Location")):
        if response.headers.get(header):
            click.echo(f"{title}: {response.headers[header]}")
    if params.get("MessageSid"):
        sid = params["MessageSid"]
        click.echo(f"message sid: {sid}" + (f" (`flask --app wsgi why {sid}` says what the "
                                            "bot did with it)"
                                            if event_type == "onMessageAdded" else ""))
    if response.text.strip():
        click.echo(response.text.strip()[:2000])
    if response.status_code == 403:
        click.echo(f"hint: {_signed_with(bot)}", err=True)
    sys.exit(0 if response.ok else 1)


def _author(channel: str | None, author: str | None) -> str:
    """The author for --channel and --author; refuses an author of another channel."""
    if channel is None:
        return author or CHANNELS["sms"][1]
    source, example = CHANNELS[channel]
    if author is None:
        return example
    if source_of(author) != source:
        raise click.BadParameter(f"{author!r} is not a {channel} author (like {example})",
                                 param_hint="--author")
    return author


def _signed_with(bot) -> str:
    """Why a 403 may come: which token this command signed with."""
    if bot.settings.dry_run:
        return (f"this command signed with the development token of "
                f"{devtoken.path(bot.settings.instance_dir)} (dry-run: no TWILIO_AUTH_TOKEN "
                "here). A server in live mode checks its Auth Token: give this command the "
                "server's settings (in .env, which the server and this command both read). "
                "The server's `webhook rejected` line says what it checked.")
    return (f"this command signed with the Auth Token of {bot.settings.twilio.account_sid}. "
            "A dry-run server checks its development token instead, and any server checks "
            "the URL it was called at: its `webhook rejected` line says which.")


def read_payload(path: Path) -> MultiDict:
    """A recorded webhook's parameters, in order, repeated names kept: a form-encoded body
    (`EventType=onMessageAdded&Body=...`) or a JSON object (a list value: repeated)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})",
                                 param_hint="--payload") from None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"{path}: not valid JSON: {exc}") from None
        except RecursionError:
            raise click.BadParameter(f"{path}: JSON nested too deeply",
                                     param_hint="--payload") from None
        params = MultiDict()
        for name, value in data.items():
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    params.add(name, _text(item))
        return params
    try:
        return MultiDict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
    except ValueError as exc:
        raise click.BadParameter(f"{path}: neither JSON nor a form-encoded body: {exc}") \
            from None


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def curl_command(url: str, params: MultiDict, headers: dict) -> str:
    parts = ["curl", "-i", "-X", "POST", shlex.quote(url)]
    for name, value in headers.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    for name, value in params.items(multi=True):
        parts += ["--data-urlencode", shlex.quote(f"{name}={value}")]
    return " \\\n  ".join([" ".join(parts[:5])] + [
        " ".join(parts[i:i + 2]) for i in range(5, len(parts), 2)])


def init_app(app: Flask) -> None:
    add_commands(app, send_event)
