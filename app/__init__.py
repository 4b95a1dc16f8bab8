"""Twilio Conversations auto-reply bot: the application factory.

`create_app()` reads like a table of contents: settings, logging, proxies, database,
Conversations client, sender, routes, errors, commands.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping
from pathlib import Path

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix

from config import environment, load_settings

from . import commands, devtoken, errors, health, logs, webhooks
from .conversations import make_client
from .db import Database
from .handlers import build_router
from .jobs import Jobs
from .processor import Processor
from .sender import Sender

log = logging.getLogger(__name__)


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `env` (default: the process environment over `.env`)."""
    settings = load_settings(environment() if env is None else env)
    app = Flask(__name__, instance_path=str(settings["INSTANCE_DIR"]))
    app.config.from_mapping(settings)
    # A CLI command (`flask --app wsgi ...`) loads the app inside a click context: it
    # must not start a sender, and its logs must not mix with the command's output.
    app.config["SERVING"] = click.get_current_context(silent=True) is None
    logs.configure(app.config["LOG_LEVEL"], stderr=not app.config["SERVING"],
                   serving=app.config["SERVING"])
    register_proxy_fix(app)
    register_database(app)
    register_signing(app)
    register_sender(app)
    register_blueprints(app)
    errors.register_error_handlers(app)
    commands.register(app)
    if app.config["SERVING"]:
        announce(app)
    return app


def register_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-* from exactly PROXY_COUNT proxies (Heroku's router: 1)."""
    n = app.config["PROXY_COUNT"]
    if n:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n,
                                x_prefix=n)


def register_database(app: Flask) -> None:
    """Open the database; bring a local schema up to date, or insist that it is."""
    db = Database(app.config["DATABASE_URL"])
    app.extensions["db"] = db
    if app.config["DATABASE_AUTO_UPGRADE"]:
        db.upgrade()
    elif app.config["SERVING"]:
        try:
            current, head = db.schema_revision()
        except SQLAlchemyError as exc:
            log.error("database unavailable at start-up: %s", exc.__class__.__name__)
            return
        if current != head:
            log.error("database schema is at %s but the code needs %s: run "
                      "`flask --app wsgi db upgrade` (the Procfile's release phase does)",
                      current or "nothing", head)


def register_signing(app: Flask) -> None:
    """Check signatures with the Auth Token, or in dry-run with the development token."""
    token = app.config["TWILIO_AUTH_TOKEN"]
    if app.config["DRY_RUN"]:
        token = devtoken.load_or_create(Path(app.instance_path))
    app.config["SIGNING_TOKEN"] = token
    app.extensions["validator"] = RequestValidator(token)


def register_sender(app: Flask) -> None:
    """Create the shared client, the sender, and the processor that wakes it."""
    client = make_client(app.config)
    sender = Sender(app.extensions["db"], client, app.config, jobs=Jobs(app))
    app.extensions["conversations"] = client
    app.extensions["sender"] = sender
    app.extensions["processor"] = Processor(
        app.extensions["db"], build_router(), app.config, on_commit=sender.wake)
    if not app.config["SENDER_IN_PROCESS"]:
        return
    # Serving (gunicorn): start now, so replies left by a restart go out at once.
    # A server forked after loading the app starts its own on its first request.
    if app.config["SERVING"]:
        sender.start()
    app.before_request(sender.start)
    atexit.register(sender.stop)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)


def announce(app: Flask) -> None:
    """Say at start-up which mode this is, and in dry-run which token signs webhooks."""
    if app.config["DRY_RUN"]:
        log.warning(
            "DRY-RUN MODE: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set. Replies "
            "are logged, not sent. Webhook signatures are checked against the local "
            "development token %s (stored in %s); `flask --app wsgi send-event` signs "
            "with it.", app.config["SIGNING_TOKEN"], devtoken.path(Path(app.instance_path)))
    else:
        log.info("live mode: account %s, replies sent as %r%s",
                 app.config["TWILIO_ACCOUNT_SID"], app.config["BOT_IDENTITY"],
                 f" via {app.config['TWILIO_API_BASE_URL']}"
                 if app.config["TWILIO_API_BASE_URL"] else "")
