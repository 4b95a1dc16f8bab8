"""What a server says when it starts, once per server: the mode (in dry-run, the token
webhooks must be signed with), who the agents are, the rules file, the dashboard.

Under gunicorn the master says it before it forks the workers (gunicorn.conf.py's
`when_ready`; with --preload, the app it loads says it): the mark that it was said is a
module global, which every worker inherits at the fork, so a server of 8 workers says it
once, not 8 times. Any other server says it when it builds the app (`create_app`).
"""

from __future__ import annotations

import logging

from config import EXAMPLE_AGENT, ConfigError, Settings, environment, load_settings

from .web import devtoken

log = logging.getLogger(__name__)
_said = False  # in this process, or in the master it was forked from


def lines(settings: Settings, signing_token: str | None) -> list[tuple[int, str]]:
    """The start-up lines, each with its level."""
    said = []
    agents = ", ".join(sorted(settings.bot.agent_identities)) or "none"
    if settings.dry_run:
        example = (" (an example, while AGENT_IDENTITIES is unset)"
                   if settings.bot.agent_identities == {EXAMPLE_AGENT} else "")
        said.append((logging.WARNING, (
            "DRY-RUN MODE: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set. Replies "
            "are logged, not sent. Webhook signatures are checked against the local "
            f"development token {signing_token} (stored in "
            f"{devtoken.path(settings.instance_dir)}); `flask --app wsgi send-event` signs "
            f"with it. Agents: {agents}{example}.")))
    else:
        via = (f" via {settings.twilio.api_base_url}" if settings.twilio.api_base_url else "")
        said.append((logging.INFO, f"live mode: account {settings.twilio.account_sid}, "
                                   f"replies sent as {settings.bot.identity!r}{via}; "
                                   f"agents: {agents}"))
    sender = settings.sender
    if sender.lease_seconds <= 2 * settings.twilio.http_timeout:
        # One attempt may be a look-up then a create (or a media upload), each up to the
        # timeout: a reply whose attempt outlasts the lease is taken over while still in
        # flight, again and again while Twilio is that slow (nothing is sent twice, but
        # calls are wasted).
        said.append((logging.WARNING, (
            f"SEND_LEASE ({sender.lease_seconds} s) is not longer than twice "
            f"TWILIO_HTTP_TIMEOUT ({settings.twilio.http_timeout:g} s): a reply still in "
            "flight can be taken over by another sender; leave SEND_LEASE unset (2 x the "
            "timeout + 30 s)")))
    rules = settings.bot.rules_path
    said.append((logging.INFO, f"auto-reply rules: {rules}{_shared(rules)}" if rules else
                 "auto-reply rules: none (RESPONDER_RULES is not set): every customer gets "
                 "AUTO_REPLY_TEXT"))
    token = settings.web.admin_token
    if not token:
        said.append((logging.INFO, "dashboard (/admin) and API (/api/) are off: set "
                                   "ADMIN_TOKEN to turn them on"))
    else:
        said.append((logging.INFO, "dashboard (/admin) and API (/api/) are on "
                                   "(ADMIN_TOKEN is set)"))
    return said


def _shared(rules) -> str:
    """Whether gunicorn's master loaded the rules and their FAQ index for its workers."""
    from .autoreply.preload import preloaded

    return " (loaded once, with its FAQ index, and shared by the workers)" \
        if preloaded(rules) is not None else ""


def announce(settings: Settings, signing_token: str | None, logger=log) -> None:
    """Say the start-up lines, unless this process (or its master) said them already."""
    global _said
    if _said:
        return
    _said = True
    for level, message in lines(settings, signing_token):
        logger.log(level, message)


def announce_in_gunicorn_master(server) -> None:
    """gunicorn's master, before it forks: say it for all the workers, with gunicorn's
    logger (its format, LOG_FORMAT=json included)."""
    if _said:  # --preload: the app loaded in the master has said it
        return
    try:
        settings = load_settings(environment())
        token = devtoken.load_or_create(settings.instance_dir) if settings.dry_run else None
    except (ConfigError, OSError):
        return  # each worker refuses to start, and says why
    announce(settings, token, server.log)
