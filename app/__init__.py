"""Twilio Conversations auto-reply bot: the application factory.

`create_app()` reads like a table of contents: settings, logging, proxies, services
(database, client, pipeline, background work), routes, errors, commands, and the
start-up banner (banner.py: once per server). Nothing starts a thread here: background
work starts in the process that serves (see `start_background_work`).
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping
from datetime import timedelta
from functools import partial

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from config import BotSettings, ConfigError, Settings, environment, load_settings

from . import banner, cli, logs, web
from .autoreply import Policy
from .autoreply.handoff import Handoff
from .compose.composer import Composer
from .delivery import registry
from .delivery.media import MediaLibrary
from .delivery.sender import Sender
from .handlers import build_router
from .jobs.catchup import CatchUp
from .jobs.periodic import Jobs
from .jobs.rules_reload import RulesReload
from .jobs.supervisor import Supervisor
from .knowledge import Thresholds
from .observability.exposition import MetricsPort
from .pipeline.processor import Processor
from .pipeline.state import StateReader
from .services import Services, services
from .store.database import Database, behind, schema_behind
from .timeline.counters import HourlyCounts
from .twilio.async_client import make_async_client
from .twilio.client import make_client
from .web import devtoken
from .web.signature import Validator

log = logging.getLogger(__name__)
_METRICS_PORT = "metrics_port"


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `env` (default: the process environment over `.env`)."""
    settings = load_settings(environment() if env is None else env)
    app = Flask(__name__, instance_path=str(settings.instance_dir))
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.web.max_body_bytes
    # A CLI command (`flask --app wsgi ...`) loads the app inside a click context: it
    # starts no background work, and its logs must not mix with the command's output.
    app.config["SERVING"] = click.get_current_context(silent=True) is None
    logs.configure(settings.log_level, settings.observability.log_format,
                   stderr=not app.config["SERVING"], serving=app.config["SERVING"])
    register_proxy_fix(app, settings)
    build_services(settings, serving=app.config["SERVING"]).install(app)
    check_schema(app)
    register_background_work(app)
    web.init_app(app)
    cli.init_app(app)
    if app.config["SERVING"]:
        banner.announce(settings, services(app).signing_token)
    return app


def register_proxy_fix(app: Flask, settings: Settings) -> None:
    """Trust X-Forwarded-* from exactly PROXY_COUNT proxies (Heroku's router: 1)."""
    n = settings.web.proxy_count
    if n:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n,
                                x_prefix=n)


def build_services(settings: Settings, *, serving: bool = True) -> Services:
    """Wire the services: database, client, pipeline, sender, jobs, hourly counts, and the
    supervisor of this process's background work: a serving process's hourly counts (and
    its sender and jobs with SENDER_IN_PROCESS), a command's sender and jobs (`sender`)."""
    try:
        db = Database(settings.database.url, timeout=settings.database.timeout)
    except OSError as exc:  # the SQLite file cannot be created (read-only, not a folder)
        raise ConfigError([f"DATABASE_URL: cannot create the SQLite database "
                           f"{exc.filename}: {exc.strerror}"]) from None
    client = make_client(settings.twilio)
    sender = Sender(db, client, settings.sender, make_api=partial(
        make_async_client, settings.twilio, pool_size=settings.sender.concurrency_limit),
        media=MediaLibrary(db, settings.twilio))
    policy = build_policy(settings.bot, answer_model=settings.answer_model.enabled)
    composer = build_composer(settings, db, policy, sender)
    processor = Processor(db, build_router(), policy, on_commit=partial(wake, sender, composer),
                          keep_texts=settings.jobs.text_retention_seconds > 0)
    catch_up = CatchUp(db, client, processor, policy, settings.jobs)
    jobs = Jobs(db, catch_up, settings.jobs)
    counts = HourlyCounts(db)
    sending = [sender, composer] + ([jobs] if jobs.enabled else [])
    if serving:
        loops = (sending if settings.sender.in_process else []) + [counts]
    else:
        loops = sending
    if settings.bot.rules_path:  # `rules reload`: a changed file, in every process
        holders = [processor, catch_up, composer]
        loops.append(RulesReload(db, settings.bot.rules_path, holders))
    try:
        token = (devtoken.load_or_create(settings.instance_dir) if settings.dry_run
                 else settings.twilio.auth_token)
    except OSError as exc:
        raise ConfigError([f"INSTANCE_DIR: cannot keep the development token in "
                           f"{settings.instance_dir}: {exc.strerror}"]) from None
    return Services(settings=settings, db=db, client=client, policy=policy, processor=processor,
                    sender=sender, catch_up=catch_up, jobs=jobs, counts=counts,
                    supervisor=Supervisor(loops), validator=Validator(token),
                    signing_token=token, composer=composer)


def build_composer(settings: Settings, db: Database, policy: Policy, sender: Sender) -> Composer:
    """The composer of deferred replies (debounce, the answer model): it runs in every
    process that runs a sender, so that a burst left by a stopped one is composed."""
    model = settings.answer_model
    if model.enabled:  # only then the `openai` package loads
        from .answering.answerer import Answerer
    return Composer(db, StateReader(db), policy, poll_seconds=min(
        1.0, settings.sender.poll_seconds), lease_seconds=2 * model.timeout + 30,
        answerer=Answerer(db, model) if model.enabled else None, on_queued=sender.wake)


def wake(sender: Sender, composer: Composer) -> None:
    """An event was committed: a reply or a deferral may be waiting."""
    sender.wake()
    if composer.policy.answer_model:
        composer.wake()  # due now (with a debounce, due later: its poll finds it)


def build_policy(bot: BotSettings, *, answer_model: bool = False) -> Policy:
    """The auto-reply policy, once: settings and the rules file (a broken file stops the
    start-up with a message naming the file, the rule and the field)."""
    rules = None
    if bot.rules_path:  # only then pydantic, Jinja2's sandbox and the holidays load
        from .autoreply.compiler import load_rules
        from .autoreply.preload import preloaded
        from .autoreply.rules import RulesError

        try:  # gunicorn's master may have loaded it already (autoreply/preload.py)
            rules = preloaded(bot.rules_path) or load_rules(bot.rules_path)
        except RulesError as exc:
            raise ConfigError([f"RESPONDER_RULES: {exc}"]) from None
    return Policy.build(
        bot_identity=bot.identity, agent_identities=bot.agent_identities,
        auto_reply_text=bot.auto_reply_text, cooldown=timedelta(seconds=bot.cooldown_seconds),
        budget=bot.budget, handoff_window=timedelta(seconds=bot.handoff_seconds),
        rules=rules, enabled=bot.auto_reply_enabled,
        # Built even with no phrases (HANDOFF_PHRASES=none): the rules file's
        # `on_decline = "handoff"` needs its message too.
        handoff=Handoff.build(bot.handoff_phrases, bot.handoff_message,
                              on_decline=bot.handoff_on_decline),
        debounce=timedelta(seconds=bot.debounce_seconds), answer_model=answer_model,
        faq_thresholds=Thresholds(answer=bot.faq_answer_score, margin=bot.faq_margin,
                                  clarify=bot.faq_clarify_score))


def check_schema(app: Flask) -> None:
    """Bring a local schema up to date, or insist that it is. A serving process whose
    schema is behind (or could not be checked) starts anyway, since gunicorn halts when a
    worker cannot boot, and answers 503 saying why until the schema is current."""
    settings, db = services(app).settings, services(app).db
    serving = app.config["SERVING"]
    if settings.database.auto_upgrade:
        try:
            db.upgrade()
        except SQLAlchemyError as exc:
            if serving:
                log.error("database unavailable at start-up, schema not brought up to date:"
                          " %s", exc.__class__.__name__)
                db.hold("database schema not brought up to date yet: the database was "
                        "unavailable at start-up", upgrade=True)
            # A command that needs the database says so in one line (cli.guard); the
            # others (send-event, rules check, webhooks) need none.
    elif serving:
        try:
            current, head = db.schema_revision()
        except SQLAlchemyError as exc:
            log.error("database unavailable at start-up: %s", exc.__class__.__name__)
            db.hold("database schema not checked yet: the database was unavailable at "
                    "start-up")
            return
        if behind(current):
            log.error("%s", schema_behind(current, head))
            db.hold(schema_behind(current, head), found=current)
        elif current != head:
            log.warning("database schema is at %s, which this code (at %s) does not know: a "
                        "later release's? serving as if it were current", current, head)


def register_background_work(app: Flask) -> None:
    """A serving process's background work (its supervisor's loops, and METRICS_PORT's
    server): started by gunicorn after the fork (gunicorn.conf.py), or by the first
    request under any other server; the loops are stopped gracefully at exit."""
    if not app.config["SERVING"]:
        return
    settings = services(app).settings
    if settings.observability.metrics_port:
        port = app.extensions[_METRICS_PORT] = MetricsPort(
            services(app).db, registry.live_senders(settings.sender.lease_seconds),
            settings.observability.metrics_host, settings.observability.metrics_port)
        app.before_request(port.start)
    supervisor = services(app).supervisor
    app.before_request(supervisor.start)
    atexit.register(supervisor.stop)


def start_background_work(app) -> None:
    """Start the background work now (gunicorn's post_worker_init calls this with
    whatever app it serves; any other WSGI app is left alone)."""
    if not (isinstance(app, Flask) and app.config.get("SERVING")):
        return
    if _METRICS_PORT in app.extensions:
        app.extensions[_METRICS_PORT].start()
    services(app).supervisor.start()
