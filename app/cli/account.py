"""What the commands that call Twilio share: the account's client, and how they print
lines and refuse."""

from __future__ import annotations

import sys

import click

from ..services import services
from ..twilio.client import rest_client


def account_client():
    """The account's REST client; refuses (exit 2) in dry-run mode."""
    twilio = services().settings.twilio
    if twilio.dry_run:
        refuse("no Twilio credentials (dry-run mode): set TWILIO_ACCOUNT_SID and "
               "TWILIO_AUTH_TOKEN (environment or .env) first")
    return rest_client(twilio)


def echo_lines(lines) -> None:
    for line in lines:
        click.echo(line)


def refuse(message: str, status: int = 2):
    click.echo(f"error: {message}", err=True)
    sys.exit(status)
