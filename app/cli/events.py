"""`flask --app wsgi events ...`: what the server did with the webhooks it received."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from ..pipeline.outcome import Kind
from ..services import services
from ..store.models import utcnow
from ..timeline import stats
from .guard import add_commands
from .params import Duration

group = AppGroup("events", help="Processed webhooks, by outcome.")


@group.command("stats")
@click.option("--since", type=Duration(), default="24h", show_default=True,
              help="How far back to count, e.g. 1h, 7d.")
def events_stats(since):
    """Count processed events by outcome kind (reply queued, ignored, receipt, ...)."""
    with services().db.read() as conn:
        counts = stats.events_by_kind(conn, utcnow() - since)
    if not counts:
        click.echo("no events")
        return
    for kind in Kind:
        if kind.name in counts:
            click.echo(f"{kind.value}: {counts.pop(kind.name)}")
    for name, count in counts.items():  # rows stored before kinds were recorded
        click.echo(f"{(name or 'unrecorded').lower()}: {count}")


def init_app(app: Flask) -> None:
    add_commands(app, group)
