"""Command-line tools: `flask --app wsgi <command>`, one module per concern."""

from flask import Flask

from . import autoreply, conversations, db, dev, doctor, events, ops, replies, setup, webhooks


def register(app: Flask) -> None:
    """Attach every command to the app's CLI."""
    app.cli.add_command(dev.send_event)
    app.cli.add_command(ops.run_sender)
    app.cli.add_command(ops.catch_up)
    app.cli.add_command(ops.prune)
    app.cli.add_command(replies.group)
    app.cli.add_command(events.group)
    app.cli.add_command(autoreply.autoreply_group)
    app.cli.add_command(autoreply.rules_group)
    app.cli.add_command(autoreply.why)
    app.cli.add_command(db.group)
    app.cli.add_command(webhooks.group)
    app.cli.add_command(doctor.doctor)
    app.cli.add_command(setup.setup)
    app.cli.add_command(conversations.group)
    app.cli.add_command(conversations.participants)
