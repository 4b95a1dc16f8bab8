"""`flask --app wsgi setup --address +1...`: make a number's new customers land in a
conversation this server hears about; `setup show`: whether each number does."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from ..provisioning import addresses, webhooks
from ..provisioning.webhooks import WEBHOOK_PATH
from ..services import services
from ..twilio.errors import ApiError
from .client import account_client
from .guard import add_commands
from .output import echo_lines, refuse


@click.group("setup", cls=AppGroup, invoke_without_command=True)
@click.option("--address", metavar="+1...", help="The Twilio number (E.164; whatsapp:+1... "
              "or --type whatsapp for a WhatsApp sender).")
@click.option("--type", "kind", type=click.Choice(["sms", "whatsapp"]),
              help="The address's channel (default: sms, or whatsapp for whatsapp:+...).")
@click.option("--service", "service_sid", metavar="IS...",
              help="The Conversation Service for new conversations (default: "
                   "TWILIO_CONVERSATION_SERVICE_SID, else the account's default service).")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--force", is_flag=True, help="Take the number from a Studio flow, or use a "
              "webhook URL that is not https or not one of PUBLIC_BASE_URL's.")
@click.pass_context
@with_appcontext
def setup(ctx, address, kind, service_sid, dry_run, force):
    """Auto-create a conversation for every new customer who writes to --address, in a
    service whose events reach this server (see `setup show`)."""
    if ctx.invoked_subcommand is not None:
        return
    if not address:
        raise click.UsageError("give --address +1... (or run `setup show`)")
    try:
        address, kind = addresses.parse(address, kind)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--address") from None
    settings = services().settings
    public = settings.web.public_base_urls
    if not public:
        refuse("PUBLIC_BASE_URL is not set: it is how this server knows its own webhook "
               "URL; set it to the public origin (e.g. https://bot.example.com)")
    client = account_client()
    service_sid = service_sid or settings.twilio.conversation_service_sid
    url = public[0] + WEBHOOK_PATH
    try:
        before = addresses.fetch(client, address, kind)
        delivered = addresses.delivery(client, service_sid or before.service_sid, public)
        wanted = addresses.desired(before, service_sid=service_sid, delivered=delivered,
                                   webhook_url=url)
        _explain(delivered, wanted)
        if wanted.auto_type == "webhook":
            _check_url(url, public, force)
        if before.auto_type == "studio" and before.enabled and not force:
            refuse(f"{address}'s new conversations go to Studio flow "
                   f"{before.studio_flow_sid}: taking it over would cut that flow off; "
                   "nothing changed (--force takes it)")
        if not addresses.changes(before, wanted):
            click.echo(f"{address} is set up already; nothing to change:")
            echo_lines(addresses.describe(before))
            after = before
        else:
            after = wanted if dry_run else addresses.save(client, before, wanted)
            verb = "dry run: nothing changed" if dry_run else (
                "created" if before.sid is None else "updated")
            click.echo(f"address configuration of {address} ({verb}):")
            echo_lines(addresses.diff(before, after))
    except ApiError as exc:
        refuse(exc.message, status=1)
    verdict = addresses.reach(after, delivered, public)
    click.echo(f"inbound messages to {address} reach this bot: {verdict.why}")


@setup.command("show")
def show():
    """List the address configurations and whether each number's messages reach this bot."""
    public = services().settings.web.public_base_urls
    client = account_client()
    try:
        configs = addresses.list_all(client)
        delivered = {sid: addresses.delivery(client, sid, public)
                     for sid in {c.service_sid for c in configs}}
    except ApiError as exc:
        refuse(exc.message, status=1)
    if not configs:
        click.echo("no address configuration: no number auto-creates conversations. A "
                   "number without one reaches Conversations only if its Messaging Service "
                   "autocreates them (Console: Messaging > Services > Integration); run "
                   "`flask --app wsgi setup --address +1...`")
    for config in configs:
        verdict = addresses.reach(config, delivered[config.service_sid], public)
        click.echo(f"{config.address} ({config.kind}, {config.sid}):")
        echo_lines(addresses.describe(config))
        click.echo(f"    -> reaches this bot: {verdict.why}")
    if not public:
        click.echo("note: PUBLIC_BASE_URL is not set, so no webhook can be recognised as "
                   "this server's")


def _explain(delivered, wanted) -> None:
    if wanted.auto_type == "default":
        click.echo(f"the {delivered.label} post onMessageAdded here already: new "
                   "conversations need no webhook of their own (type default; a scoped one "
                   "would deliver every event twice)")
    else:
        click.echo(f"the {delivered.label} do not post onMessageAdded here: each new "
                   "conversation gets a webhook of its own pointing here (type webhook; "
                   "`webhooks configure` instead covers conversations created any way)")


def _check_url(url: str, public, force: bool) -> None:
    malformed = webhooks.url_error(url)
    if malformed:
        refuse(f"{malformed}; nothing changed")
    problems = webhooks.url_problems(url, public)
    for problem in problems:
        click.echo(f"{'warning' if force else 'refusing'}: {problem}", err=True)
    if problems and not force:
        refuse("nothing changed (--force configures it anyway)")


def init_app(app: Flask) -> None:
    add_commands(app, setup)
