"""The doctor: small checks of a deployment, run in order by `flask --app wsgi doctor`.

A check is `check(ctx: Context) -> Check`: OK, WARN (worth a look; the exit status stays
0) or FAIL (exit status 1), with what it found and the fix. A check that needs one that
failed before it (the database, Twilio's credentials) answers WARN "not checked".

To add one: write the function (in the module of its concern, e.g. `addresses.py`),
then put it in CHECKS where it reads best; `ctx.rest()` is the account's REST client
and `ctx.passed(name)` says whether an earlier check found all well (OK).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import requests
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from twilio.rest import Client

from config import Settings

from ..store import clock
from ..store.database import Database, DatabaseUnavailable
from ..store.models import Reply, ReplyStatus, SenderHeartbeat
from ..twilio.client import rest_client
from ..twilio.errors import ApiError
from . import addresses, webhooks
from .webhooks import ACCOUNT, WEBHOOK_PATH

HEALTH_TIMEOUT = 3.0  # seconds: a public URL slower than this is as good as unreachable
QUEUE_WARN_SECONDS = 60  # a due reply normally goes out within a second or two
QUEUE_FAIL_SECONDS = 300
CONFIGURE = "flask --app wsgi webhooks configure"


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def line(self) -> str:
        fix = f" -- fix: {self.fix}" if self.fix and self.status != Status.OK else ""
        return f"{self.status:<4} {self.name}: {self.detail}{fix}"


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


@dataclass
class Context:
    """What checks may use, and what the checks before them found."""

    settings: Settings
    db: Database
    results: dict[str, Check] = field(default_factory=dict)
    _client: Client | None = None

    def rest(self) -> Client:
        if self._client is None:
            self._client = rest_client(self.settings.twilio)
        return self._client

    def passed(self, name: str) -> bool:
        result = self.results.get(name)
        return result is not None and result.status == Status.OK


def check_settings(ctx: Context) -> Check:
    s = ctx.settings
    if s.dry_run:
        return fail("settings", "no Twilio credentials: dry-run mode, replies are logged, "
                    "not sent", "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    database = "SQLite" if s.database.url.startswith("sqlite") else "PostgreSQL"
    sender = "in each web process" if s.sender.in_process else "in `sender` processes"
    return ok("settings", f"valid; live mode, account {s.twilio.account_sid}, "
              f"{database}, sender {sender}")


def check_credentials(ctx: Context) -> Check:
    if ctx.settings.dry_run:
        return warn("credentials", "not checked: no credentials")
    try:
        webhooks.fetch_account(ctx.rest())
    except ApiError as exc:
        if exc.status == 401:
            return fail("credentials", f"Twilio refused them ({exc.message})",
                        f"set TWILIO_AUTH_TOKEN to the primary Auth Token of "
                        f"{ctx.settings.twilio.account_sid} (Twilio Console, Account info)")
        return fail("credentials", exc.message, "check that this host reaches "
                    f"{ctx.settings.twilio.api_base_url or 'conversations.twilio.com'} "
                    "over HTTPS")
    return ok("credentials", "accepted by Twilio")


def check_webhooks(ctx: Context) -> Check:
    name = "webhooks"
    public = ctx.settings.web.public_base_urls
    if not ctx.passed("credentials"):
        return warn(name, "not checked: no working credentials")
    if not public:
        return fail(name, "cannot tell which URL is ours: PUBLIC_BASE_URL is not set",
                    "set PUBLIC_BASE_URL, then " + CONFIGURE)
    try:
        scopes = webhooks.read_all(ctx.rest())
    except ApiError as exc:
        return fail(name, exc.message, "run it again; if it persists, `webhooks show`")
    needed = webhooks.needed_filters()
    account, services = scopes[0], scopes[1:]
    ours = [h for h in scopes if (h.scope == ACCOUNT or h.has_own_urls)
            and webhooks.serves(h.post_url, public, WEBHOOK_PATH)]
    if not ours:
        return fail(name, f"no post-event webhook points at {public[0]}{WEBHOOK_PATH} "
                    f"(account-wide: {account.post_url or 'none'})", CONFIGURE)
    for hooks in ours:
        option = "" if hooks.scope == ACCOUNT else f" --service {hooks.scope}"
        problem = webhooks.problem(hooks, needed)
        if problem:
            return fail(name, f"{hooks.label} points here {problem}", CONFIGURE + option)
    elsewhere = [h for h in services if h.has_own_urls and h not in ours]
    if account in ours and elsewhere:
        return warn(name, f"account-wide points here, but {elsewhere[0].label} has webhooks "
                    f"of its own ({elsewhere[0].post_url or elsewhere[0].pre_url}): its "
                    "conversations never reach this server",
                    f"{CONFIGURE} --service {elsewhere[0].scope}, if they should")
    return ok(name, f"{', '.join(h.label for h in ours)} -> {ours[0].post_url} "
              f"({', '.join(needed)})")


def check_public_url(ctx: Context) -> Check:
    public = ctx.settings.web.public_base_urls
    if not public:
        return fail("PUBLIC_BASE_URL", "not set: only loopback origins are served, so "
                    "Twilio's webhooks get 403", "set PUBLIC_BASE_URL=https://<your domain>")
    plain = [url for url in public if not url.startswith("https://")]
    if plain:
        return fail("PUBLIC_BASE_URL", f"{', '.join(plain)} is not https: customers' "
                    "messages would cross the Internet unencrypted",
                    "put TLS in front (nginx, Heroku) and list the https:// origin")
    return ok("PUBLIC_BASE_URL", ", ".join(public))


def check_health(ctx: Context) -> Check:
    public = ctx.settings.web.public_base_urls
    if not public:
        return warn("public /healthz", "not checked: PUBLIC_BASE_URL is not set")
    url = public[0] + "/healthz"
    try:
        response = requests.get(url, timeout=HEALTH_TIMEOUT, allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        return fail("public /healthz", f"{url}: TLS certificate refused ({exc}); Twilio "
                    "refuses it too", "install a valid certificate (e.g. Let's Encrypt)")
    except requests.RequestException as exc:
        return warn("public /healthz", f"{url} not reachable from here within "
                    f"{HEALTH_TIMEOUT:g} s ({type(exc).__name__})",
                    "if Twilio cannot reach it either: check DNS, the firewall, the proxy")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200 and body.get("status") == "ok":
        return ok("public /healthz", f"{url} answers 200 (database {body.get('database')}, "
                  f"sender {body.get('sender')})")
    if response.status_code == 503 and "reason" in body:
        return fail("public /healthz", f"{url} answers 503: {body['reason']}",
                    "see the server's log")
    return fail("public /healthz", f"{url} answers HTTP {response.status_code}, not this "
                "server's health", "check that the proxy forwards to the server (and "
                "that nothing redirects)")


def check_database(ctx: Context) -> Check:
    try:
        current, head = ctx.db.schema_revision()
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        return fail("database", f"unreachable: {_first_line(exc)}",
                    "check DATABASE_URL and that the database server runs")
    if current != head:
        return fail("database", f"schema at {current or 'nothing'}, the code needs {head}",
                    "flask --app wsgi db upgrade")
    return ok("database", f"reachable, schema at {head} (newest)")


def check_sender(ctx: Context) -> Check:
    if not ctx.passed("database"):
        return warn("sender", "not checked: the database is unreachable")
    lease = ctx.settings.sender.lease_seconds
    dialect = ctx.db.engine.dialect.name
    alive = SenderHeartbeat.heartbeat_at > clock.later(dialect, "minus_lease")
    query = select(func.coalesce(func.sum(case((alive, 1), else_=0)), 0),
                   func.max(SenderHeartbeat.heartbeat_at), clock.now(dialect))
    with ctx.db.read() as conn:
        live, newest, now = conn.execute(query, {"minus_lease": -lease}).one()
    if live:
        return ok("sender", f"{live} alive (last heartbeat {_ago(now, newest)} ago)")
    seen = f"the last one {_ago(now, newest)} ago" if newest else "none recorded"
    return fail("sender", f"no sender is running (no heartbeat within SEND_LEASE, {lease} s; "
                f"{seen})",
                "run web processes with SENDER_IN_PROCESS=true (the default), or a "
                "`flask --app wsgi sender` process (Procfile: worker)")


def check_queue(ctx: Context) -> Check:
    if not ctx.passed("database"):
        return warn("queue", "not checked: the database is unreachable")
    dialect = ctx.db.engine.dialect.name
    now_sql = clock.now(dialect)
    query = (select(func.count(), func.min(Reply.next_attempt_at), now_sql)
             .where(Reply.status.in_([ReplyStatus.QUEUED, ReplyStatus.SENDING]),
                    Reply.next_attempt_at <= now_sql))
    with ctx.db.read() as conn:
        due, oldest, now = conn.execute(query).one()
    if not due:
        return ok("queue", "no reply waiting")
    age = (now - oldest).total_seconds()
    detail = f"{due} repl{'y' if due == 1 else 'ies'} due, the oldest for {_ago(now, oldest)}"
    fix = "make sure a sender runs (above); `flask --app wsgi replies stats`"
    if age > QUEUE_FAIL_SECONDS:
        return fail("queue", detail + ": stuck", fix)
    if age > QUEUE_WARN_SECONDS:
        return warn("queue", detail + ": slow", fix)
    return ok("queue", detail)


def check_rules(ctx: Context) -> Check:
    path = ctx.settings.bot.rules_path
    if path is None:
        return ok("rules", "no rules file (RESPONDER_RULES not set): the default reply")
    from ..autoreply.compiler import load_rules  # with a rules file only
    from ..autoreply.rules import RulesError

    try:
        rules = load_rules(path)
    except (RulesError, OSError) as exc:
        return fail("rules", f"the file as it is now does not load: {_first_line(exc)}; "
                    "running servers keep what they started with, a restart will fail",
                    f"fix it (`flask --app wsgi rules check {path}` explains)")
    return ok("rules", f"{path}: {rules.summary()[0]}")


def check_addresses(ctx: Context) -> Check:
    if not ctx.passed("credentials") or not ctx.settings.web.public_base_urls:
        return warn("addresses", "not checked: no working credentials or no PUBLIC_BASE_URL")
    return Check("addresses", *addresses.diagnose(ctx.rest(), ctx.settings.web.public_base_urls))


CHECKS: list[Callable[[Context], Check]] = [
    check_settings, check_credentials, check_webhooks, check_public_url, check_health,
    check_database, check_sender, check_queue, check_rules, check_addresses,
]


def run(ctx: Context, checks=None) -> list[Check]:
    """Run the checks in order; each sees the results of those before it."""
    results = []
    for check in checks or CHECKS:
        result = check(ctx)
        ctx.results[result.name] = result
        results.append(result)
    return results


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
