"""Command-line tools: `flask --app wsgi <command>`, one module per concern, each adding
its own commands to the app (its `init_app`), every one guarded: a database that cannot
be used ends it with one line, not a traceback (guard.py)."""

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

FEATURES = (dev, ops, replies, events, autoreply, db, webhooks, doctor, setup, conversations,
            faq)


def init_app(app: Flask) -> None:
    for feature in FEATURES:
        feature.init_app(app)
