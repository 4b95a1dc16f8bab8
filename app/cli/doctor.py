"""`flask --app wsgi doctor`: check a deployment end to end, one line per check."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from ..provisioning import doctor as checks
from ..services import services
from .guard import add_commands


@click.command("doctor")
@with_appcontext
def doctor():
    """Check settings, Twilio (credentials, webhooks), the public URL, the database, the
    sender, the queue and the rules file; exit 1 when anything fails."""
    bot = services()
    results = checks.run(checks.Context(settings=bot.settings, db=bot.db))
    for result in results:
        click.echo(result.line())
    counts = {status: sum(r.status == status for r in results) for status in checks.Status}
    click.echo(", ".join(f"{count} {status}" for status, count in counts.items()))
    sys.exit(1 if counts[checks.Status.FAIL] else 0)


def init_app(app: Flask) -> None:
    add_commands(app, doctor)
