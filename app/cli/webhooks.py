"""`flask --app wsgi webhooks ...`: where Twilio sends Conversations webhooks, and pointing
it at this server."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from ..provisioning import webhooks
from ..provisioning.webhooks import ACCOUNT, WEBHOOK_PATH
from ..services import services
from ..twilio.errors import ApiError
from .client import account_client
from .guard import add_commands
from .output import echo_lines, refuse

group = AppGroup("webhooks", help="Twilio's Conversations webhook configuration.")


@group.command("show")
def show():
    """Print the account-wide and each service's webhook configuration."""
    settings = services().settings
    client = account_client()
    needed = webhooks.needed_filters()
    try:
        scopes = webhooks.read_all(client)
    except ApiError as exc:
        refuse(exc.message, status=1)
    account = scopes[0]
    for hooks in scopes:
        if hooks.scope != ACCOUNT and not hooks.has_own_urls:
            click.echo(f"{hooks.label}: no webhooks of its own (the account-wide ones apply)")
            continue
        click.echo(f"{hooks.label}:")
        for line in webhooks.describe(hooks):
            click.echo(line)
        click.echo(f"    -> {_verdict(hooks, settings.web.public_base_urls, needed)}")
    if not account.has_own_urls and not any(h.has_own_urls for h in scopes[1:]):
        click.echo("no webhook URL is configured: run `flask --app wsgi webhooks configure`")


@group.command("configure")
@click.option("--service", "service_sid", metavar="IS...",
              help="Configure this Conversation Service's webhooks (default: account-wide).")
@click.option("--url", help=f"The post-event URL (default: PUBLIC_BASE_URL + {WEBHOOK_PATH}).")
@click.option("--pre", is_flag=True, help="Also set the pre-event URL (the URL + /pre).")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--force", is_flag=True,
              help="Configure a URL that is not https, not public, or not one of "
                   "PUBLIC_BASE_URL's origins (never a malformed one).")
def configure(service_sid, url, pre, dry_run, force):
    """Point the post-event webhook (and with --pre the pre-event one) at this server,
    method POST, with the filters this server handles (keeping those already set)."""
    client = account_client()
    public = services().settings.web.public_base_urls
    if not url and not public:
        refuse("PUBLIC_BASE_URL is not set: set it to this server's public origin "
               "(e.g. https://bot.example.com) or give --url")
    url = (url or public[0] + WEBHOOK_PATH).rstrip("/")
    malformed = webhooks.url_error(url)
    if malformed:
        refuse(f"{malformed}; nothing changed")
    problems = webhooks.url_problems(url, public)
    for problem in problems:
        click.echo(f"{'warning' if force else 'refusing'}: {problem}", err=True)
    if problems and not force:
        refuse("nothing changed (--force configures it anyway)")
    if not url.endswith(WEBHOOK_PATH):
        click.echo(f"note: the path is not {WEBHOOK_PATH}: fine only if a proxy in front "
                   "maps it there", err=True)
    pre_url = url + "/pre" if pre else None
    try:
        before = webhooks.fetch(client, service_sid or ACCOUNT)
        wanted = webhooks.desired(before, post_url=url, pre_url=pre_url,
                                  filters=webhooks.needed_filters(pre=pre))
        if before.target and before.target != wanted.target and not force:
            refuse(f"the account-wide webhooks go to {before.target!r}, not to a URL: "
                   "switching them would cut that integration off; configure a service "
                   "instead (--service IS...) or give --force")
        if not webhooks.changes(before, wanted):
            click.echo(f"{before.label} webhooks already point here; nothing to change:")
            echo_lines(webhooks.describe(before))
            return
        after = wanted if dry_run else webhooks.update(client, before, wanted)
    except ApiError as exc:
        refuse(exc.message, status=1)
    click.echo(f"{before.label} webhooks "
               f"({'dry run: nothing changed' if dry_run else 'updated'}):")
    echo_lines(webhooks.diff(before, after))
    if pre and not webhooks.needed_filters(pre=True):
        click.echo("note: no pre-event has a handler here, so no pre-event filter was added: "
                   "Twilio calls the pre-event URL only for pre-events in the filters "
                   "(and drops a message when that call fails)")
    if before.scope == ACCOUNT:
        _note_overrides(client, public)


def _verdict(hooks, public_base_urls, needed) -> str:
    if not webhooks.serves(hooks.post_url, public_base_urls, WEBHOOK_PATH):
        return "not this server (PUBLIC_BASE_URL: " + (", ".join(public_base_urls)
                                                       or "not set") + ")"
    problem = webhooks.problem(hooks, needed)
    if problem:
        return f"this server, but {problem}"
    return "this server, with every filter it handles"


def _note_overrides(client, public_base_urls) -> None:
    """Services with URLs of their own do not get the account-wide webhooks: say so."""
    try:
        scopes = webhooks.read_all(client)[1:]
    except ApiError:
        return
    for hooks in scopes:
        if hooks.has_own_urls and not webhooks.serves(hooks.post_url, public_base_urls,
                                                      WEBHOOK_PATH):
            click.echo(f"note: {hooks.label} has webhooks of its own "
                       f"({hooks.post_url or hooks.pre_url}): its conversations do not reach "
                       f"this server; `webhooks configure --service {hooks.scope}` changes that")


def init_app(app: Flask) -> None:
    add_commands(app, group)
