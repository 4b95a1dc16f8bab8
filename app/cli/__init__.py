"""Command-line tools: `flask --app wsgi <command>`, one module per concern."""

from flask import Flask

from . import (
    autoreply,
    conversations,
    db,
    dev,
    doctor,
    events,
    faq,
    ops,
    replies,
    setup,
    webhooks,
)
from .guard import guarded

COMMANDS = (
    dev.send_event, ops.run_sender, ops.catch_up, ops.prune, replies.group, events.group,
    autoreply.autoreply_group, autoreply.rules_group, autoreply.why, db.group,
    webhooks.group, doctor.doctor, setup.setup, conversations.group,
    conversations.participants, faq.group,
)


def register(app: Flask) -> None:
    """Attach every command to the app's CLI, each ending with one line, not a
    traceback, when the database cannot be used (guard.py)."""
    for command in COMMANDS:
        app.cli.add_command(guarded(command))
