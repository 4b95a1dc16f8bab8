"""`flask --app wsgi replies ...`: inspect and recover auto-replies."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from ..delivery import registry
from ..operator.requeue import NotRequeueable, requeue
from ..services import services
from ..timeline import replies as timeline
from ..twilio.error_codes import describe
from ..web.params import MAX_ID  # the API's bound on a stored id
from .guard import add_commands

group = AppGroup("replies", help="Inspect and recover auto-replies.")


@group.command("failed")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def replies_failed(limit):
    """List replies that failed (Twilio refused them, or a receipt said failed or
    undelivered), as the dashboard's Failures page does, with the error's meaning."""
    with services().db.read() as conn:
        rows = timeline.search(conn, outcome=timeline.WENT_WRONG_NAME,
                               limit=limit)["replies"]
    if not rows:
        click.echo("no failed replies")
    for r in rows:
        error = r["error"] if r["outcome"] == "failed" else r["delivery"]["error"]
        code = (error or {}).get("code")
        click.echo(f"#{r['id']} {r['created_at']:%Y-%m-%d %H:%M:%S} {r['conversation_sid']} "
                   f"in_reply_to={r['in_reply_to']} {r['outcome_label']} "
                   f"attempts={r['attempts']} code={code or '-'} "
                   f"({describe(code) or 'no code'})"
                   + (f": {error['message']}" if error and error.get("message") else "")
                   + (" [requeue-able]" if r["requeueable"] else ""))


@group.command("requeue")
@click.argument("reply_id", type=click.IntRange(1, MAX_ID), required=False)
@click.option("--all", "all_", is_flag=True, help="Requeue every failed reply.")
def replies_requeue(reply_id, all_):
    """Queue a failed reply (REPLY_ID) or all of them (--all) to be sent again.

    Each gets a new round of SEND_MAX_ATTEMPTS attempts; the first looks for the reply at
    Twilio before sending, since an attempt that timed out may have reached it.
    """
    if (reply_id is None) == (not all_):
        raise click.UsageError("give a REPLY_ID or --all")
    try:
        count = requeue(services(), reply_id, by="cli")
    except NotRequeueable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"requeued {count} repl{'y' if count == 1 else 'ies'}")


@group.command("stats")
def replies_stats():
    """Count replies by status; show the backlog and the live senders' pace."""
    bot = services()
    with bot.db.read() as conn:
        counts = timeline.by_outcome(conn)
        backlog = timeline.queue(conn, bot.settings.sender.lease_seconds)
        senders = registry.live(conn)
    click.echo(" ".join(f"{outcome}={count}" for outcome, count in sorted(counts.items()))
               or "no replies")
    waiting, age = backlog["depth"], backlog["oldest_pending_seconds"]
    minute = backlog["sent_last_minute"]
    click.echo(f"backlog: {waiting} waiting"
               + (f", oldest queued {age:.0f} s ago" if age is not None else "")
               + f"; sent in the last minute: {minute} ({minute / 60:.1f}/s)")
    click.echo(f"senders: {len(senders)} live, "
               f"TWILIO_CONCURRENCY_LIMIT={bot.settings.sender.concurrency_limit}"
               + ("" if senders else " (none running: nothing is sent)"))
    for sender in senders:
        click.echo(f"  {sender.id} share={sender.share} window={sender.concurrency} "
                   f"in_flight={sender.in_flight} sent={sender.sent} "
                   f"beat {sender.heartbeat_age:.1f} s ago")


def init_app(app: Flask) -> None:
    add_commands(app, group)
