"""Development: sign a realistic webhook and post it, as Twilio would."""

from __future__ import annotations

import shlex
import sys

import click
import requests
from flask.cli import with_appcontext
from twilio.request_validator import RequestValidator

from ..pipeline import samples
from ..pipeline.events import IDEMPOTENCY_HEADER, KNOWN_EVENTS, PRE_EVENTS
from ..services import services


@click.command("send-event")
@with_appcontext
@click.argument("event_type", type=click.Choice(sorted(KNOWN_EVENTS)), default="onMessageAdded")
@click.option("--body", default="Hello, I need help", help="Message body.")
@click.option("--author", default="+15558675310", help="Message author (E.164, whatsapp:+..., identity).")
@click.option("--conversation", "conversation_sid", help="Conversation SID (default: a new one).")
@click.option("--message-sid", help="Message SID (default: a new one). Repeat it to see deduplication.")
@click.option("--status", default="delivered", help="Status for onDeliveryUpdated.")
@click.option("--error-code", default="0", help="ErrorCode for onDeliveryUpdated.")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE", help="Extra or overriding parameter.")
@click.option("--url", help="Webhook URL (default: PUBLIC_BASE_URL or http://127.0.0.1:5000, plus the path).")
@click.option("--curl", "show_curl", is_flag=True, help="Also print the equivalent curl command.")
@click.option("--dry", is_flag=True, help="Print the curl command only; send nothing.")
def send_event(event_type, body, author, conversation_sid, message_sid, status, error_code,
               extra, url, show_curl, dry):
    """Sign a realistic EVENT_TYPE webhook with the configured token and post it."""
    bot = services()
    path = "/webhooks/conversations" + ("/pre" if event_type in PRE_EVENTS else "")
    public = bot.settings.web.public_base_urls
    url = url or (public[0] if public else "http://127.0.0.1:5000") + path
    params = samples.build(
        event_type, account_sid=bot.settings.twilio.account_sid or "AC" + "0" * 32, body=body,
        author=author, conversation_sid=conversation_sid, message_sid=message_sid,
        status=status, error_code=error_code,
        extra=dict(item.split("=", 1) for item in extra if "=" in item))
    headers = {
        "X-Twilio-Signature": RequestValidator(bot.signing_token).compute_signature(url, params),
        IDEMPOTENCY_HEADER: samples.idempotency_token(),
        "User-Agent": "TwilioProxy/1.1",
    }
    if show_curl or dry:
        click.echo(curl_command(url, params, headers))
    if dry:
        return
    try:
        response = requests.post(url, data=params, headers=headers, timeout=10)
    except requests.RequestException as exc:
        click.echo(f"could not reach {url}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"HTTP {response.status_code} {response.reason}")
    outcome = response.headers.get("X-Webhook-Outcome")
    if outcome:
        click.echo(f"outcome: {outcome}")
    if response.text.strip():
        click.echo(response.text.strip())
    sys.exit(0 if response.ok else 1)


def curl_command(url: str, params: dict, headers: dict) -> str:
    parts = ["curl", "-i", "-X", "POST", shlex.quote(url)]
    for name, value in headers.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    for name, value in params.items():
        parts += ["--data-urlencode", shlex.quote(f"{name}={value}")]
    return " \\\n  ".join([" ".join(parts[:5])] + [
        " ".join(parts[i:i + 2]) for i in range(5, len(parts), 2)])
