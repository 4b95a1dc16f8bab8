"""Operations: a dedicated sender, catch-up after an outage, pruning."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import with_appcontext

from ..jobs import retention
from ..services import services
from ..store.models import utcnow
from ..twilio.errors import ApiError
from .guard import add_commands
from .params import Duration


@click.command("sender")
@with_appcontext
def run_sender():
    """Run a dedicated sender (and the periodic jobs) until SIGTERM or Ctrl-C."""
    click.echo("sender running; SIGTERM or Ctrl-C stops it after the sends in flight", err=True)
    services().supervisor.serve_forever()


@click.command("catch-up")
@with_appcontext
@click.option("--since", type=Duration(), help="How far back to look, e.g. 30m, 2h, 1d "
              "(default: CATCH_UP_WINDOW).")
def catch_up(since):
    """Answer messages whose webhook never arrived; fetch receipts that never came."""
    bot = services()
    window = since or timedelta(seconds=bot.settings.jobs.catch_up_window_seconds)
    try:
        report = bot.catch_up.run(utcnow() - window)
    except ApiError as exc:
        raise click.ClickException(f"Twilio API: {exc.message}") from exc
    click.echo(f"catch-up: {report}")
    click.echo("queued replies are sent by the running sender(s)"
               if report.replies_queued else "nothing to answer")


@click.command("prune")
@with_appcontext
@click.option("--older-than", type=Duration(), help="Age, e.g. 30d (default: RETENTION).")
def prune(older_than):
    """Delete processed events, receipts and sent replies older than the retention age;
    clear messages' texts older than MESSAGE_TEXT_RETENTION (or that age, if shorter)."""
    bot = services()
    age = older_than if older_than is not None else timedelta(
        seconds=bot.settings.jobs.retention_seconds)
    texts = min(age, timedelta(seconds=bot.settings.jobs.text_retention_seconds))
    now = utcnow()
    counts = retention.prune(bot.db, now - age, now - texts)
    click.echo(" ".join(f"{name}={count}" for name, count in counts.items()))


def init_app(app: Flask) -> None:
    add_commands(app, run_sender, catch_up, prune)
