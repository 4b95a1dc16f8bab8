"""The account's REST client, for the commands that call Twilio (conversations, setup,
webhooks): refused in dry-run mode, where there is no account to call."""

from __future__ import annotations

from ..services import services
from ..twilio.client import rest_client
from .output import refuse


def account_client():
    """The account's REST client; refuses (exit 2) in dry-run mode."""
    twilio = services().settings.twilio
    if twilio.dry_run:
        refuse("no Twilio credentials (dry-run mode): set TWILIO_ACCOUNT_SID and "
               "TWILIO_AUTH_TOKEN (environment or .env) first")
    return rest_client(twilio)
