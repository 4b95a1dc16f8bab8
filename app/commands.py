"""Command-line tools: `flask --app wsgi <command>`. One function per command."""

from __future__ import annotations

import shlex
import sys
from datetime import timedelta

import click
import requests
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from config import parse_duration

from . import outbox, retention, samples
from .catchup import CatchUp
from .conversations import ApiError
from .error_codes import describe
from .events import IDEMPOTENCY_HEADER, KNOWN_EVENTS, PRE_EVENTS
from .models import Reply, utcnow

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")
replies_cli = AppGroup("replies", help="Inspect and recover auto-replies.")


def register(app: Flask) -> None:
    """Attach every command to the app's CLI."""
    app.cli.add_command(send_event)
    app.cli.add_command(run_sender)
    app.cli.add_command(catch_up)
    app.cli.add_command(prune)
    app.cli.add_command(replies_cli)
    app.cli.add_command(db_cli)


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
    cfg = current_app.config
    path = "/webhooks/conversations" + ("/pre" if event_type in PRE_EVENTS else "")
    url = url or (cfg["PUBLIC_BASE_URL"] or "http://127.0.0.1:5000") + path
    params = samples.build(
        event_type, account_sid=cfg["TWILIO_ACCOUNT_SID"] or "AC" + "0" * 32, body=body,
        author=author, conversation_sid=conversation_sid, message_sid=message_sid,
        status=status, error_code=error_code,
        extra=dict(item.split("=", 1) for item in extra if "=" in item))
    headers = {
        "X-Twilio-Signature": RequestValidator(cfg["SIGNING_TOKEN"]).compute_signature(url, params),
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


@click.command("sender")
@with_appcontext
def run_sender():
    """Run a dedicated sender (and the periodic jobs) until SIGTERM or Ctrl-C."""
    click.echo("sender running; SIGTERM or Ctrl-C stops it after the sends in flight", err=True)
    current_app.extensions["sender"].serve_forever()


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        try:
            return timedelta(seconds=parse_duration(str(value)))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("catch-up")
@with_appcontext
@click.option("--since", type=Duration(), help="How far back to look, e.g. 30m, 2h, 1d "
              "(default: CATCH_UP_WINDOW).")
def catch_up(since):
    """Answer messages whose webhook never arrived; fetch receipts that never came."""
    window = since or timedelta(seconds=current_app.config["CATCH_UP_WINDOW_SECONDS"])
    try:
        report = CatchUp(current_app).run(utcnow() - window)
    except ApiError as exc:
        raise click.ClickException(f"Twilio API: {exc.message}") from exc
    click.echo(f"catch-up: {report}")
    click.echo("queued replies are sent by the running sender(s)"
               if report.replies_queued else "nothing to answer")


@click.command("prune")
@with_appcontext
@click.option("--older-than", type=Duration(), help="Age, e.g. 30d (default: RETENTION).")
def prune(older_than):
    """Delete processed events, receipts and sent replies older than the retention age."""
    age = older_than or timedelta(seconds=current_app.config["RETENTION_SECONDS"])
    counts = retention.prune(current_app.extensions["db"], utcnow() - age)
    click.echo(" ".join(f"{name}={count}" for name, count in counts.items()))


@replies_cli.command("failed")
@click.option("--limit", default=50, show_default=True)
def replies_failed(limit):
    """List replies that failed for good, with Twilio's error code and its meaning."""
    with current_app.extensions["db"].session() as session:
        rows = session.scalars(select(Reply).where(Reply.status == outbox.FAILED)
                               .order_by(Reply.id.desc()).limit(limit)).all()
    if not rows:
        click.echo("no failed replies")
    for r in rows:
        click.echo(f"#{r.id} {r.created_at:%Y-%m-%d %H:%M:%S} {r.conversation_sid} "
                   f"in_reply_to={r.in_reply_to} attempts={r.attempts} code={r.error_code or '-'}"
                   f" ({describe(r.error_code) or 'no code'}): {r.error_message}")


@replies_cli.command("requeue")
@click.argument("reply_id", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Requeue every failed reply.")
def replies_requeue(reply_id, all_):
    """Queue a failed reply (REPLY_ID) or all of them (--all) to be sent again."""
    if (reply_id is None) == (not all_):
        raise click.UsageError("give a REPLY_ID or --all")
    with current_app.extensions["db"].transaction() as session:
        count = outbox.requeue_failed(session, reply_id)
    if reply_id is not None and count == 0:
        raise click.ClickException(f"reply {reply_id} is not a failed reply")
    click.echo(f"requeued {count} repl{'y' if count == 1 else 'ies'}")


@replies_cli.command("stats")
def replies_stats():
    """Count replies by status."""
    with current_app.extensions["db"].transaction() as session:
        rows = session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all()
    click.echo(" ".join(f"{status}={count}" for status, count in sorted(rows)) or "no replies")


@db_cli.command("upgrade")
def db_upgrade():
    """Apply every migration not yet applied (the release phase runs this)."""
    db = current_app.extensions["db"]
    db.upgrade()
    current, head = db.schema_revision()
    click.echo(f"database schema at {current} (newest: {head})")


@db_cli.command("check")
def db_check():
    """Fail if the models and the migrations disagree (a migration is missing)."""
    differences = current_app.extensions["db"].schema_differences()
    for diff in differences:
        click.echo(diff)
    sys.exit(1 if differences else 0)


@db_cli.command("current")
def db_current():
    """Print the schema revision of the database and of the code."""
    current, head = current_app.extensions["db"].schema_revision()
    click.echo(f"database: {current or 'empty'}; code: {head}")
    sys.exit(0 if current == head else 1)
