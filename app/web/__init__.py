"""HTTP in and out: the blueprints and the one place errors become responses."""

import logging

from flask import Flask, request

from ..services import services
from ..timeline.counters import DUPLICATES, HourlyCounts
from . import admin, api, arrival, errors, headers, health, metrics, webhooks

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    arrival.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    register_operator_pages(app)
    headers.install(app)
    errors.register_error_handlers(app)


def register_operator_pages(app: Flask) -> None:
    """The JSON API (/api/) and the dashboard (/admin), only with ADMIN_TOKEN: without it
    they are 404 (the start-up banner says which). Duplicates dropped are counted per hour
    for their statistics (signature failures: in errors.py)."""
    counts = app.extensions["hourly_counts"] = HourlyCounts(services(app).db)

    @app.after_request
    def _count_duplicate(response):
        if request.blueprint == "webhooks" and \
                response.headers.get("X-Webhook-Outcome") == "duplicate":
            counts.add(DUPLICATES)
        return response

    if not services(app).settings.web.admin_token:
        return
    app.register_blueprint(api.bp)
    admin.register(app)
