"""Health: `GET /healthz` is 200 when the app can take webhooks, 503 otherwise.

503 when the database does not answer (within DATABASE_TIMEOUT) or its schema is behind
the code (not migrated for this release), or when this process should run a sender and
its loop is dead (the supervisor is restarting it).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from ..services import services
from ..store.database import DatabaseUnavailable, SchemaBehind

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz():
    bot = services()
    in_process = bot.settings.sender.in_process and current_app.config["SERVING"]
    sender = bot.supervisor.report()["sender"] if in_process else "separate process"
    report = {"mode": "dry-run" if bot.settings.dry_run else "live", "sender": sender}
    problems = []
    try:
        bot.db.ping()
        report["database"] = "ok"
    except SchemaBehind as exc:
        report["database"] = "schema behind"
        problems.append(str(exc))
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        log.warning("health check: database unavailable: %s", exc.__class__.__name__)
        report["database"] = "unavailable"
        problems.append("database unavailable")
    if in_process and sender not in ("running", "not started"):
        problems.append(f"sender {sender}")
    if problems:
        return {**report, "status": "unavailable", "reason": "; ".join(problems)}, 503
    return {**report, "status": "ok"}, 200
