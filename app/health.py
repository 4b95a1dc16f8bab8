"""Health: `GET /healthz` is 200 when the app and its database answer, 503 otherwise."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    app = current_app
    sender = app.extensions["sender"]
    report = {
        "mode": "dry-run" if app.config["DRY_RUN"] else "live",
        "sender": "running" if sender.running else (
            "not started" if app.config["SENDER_IN_PROCESS"] else "separate process"),
    }
    try:
        app.extensions["db"].ping()
    except SQLAlchemyError as exc:
        log.warning("health check: database unavailable: %s", exc.__class__.__name__)
        return {**report, "status": "unavailable", "database": "unavailable"}, 503
    return {**report, "status": "ok", "database": "ok"}, 200
