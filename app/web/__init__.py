"""HTTP in and out: each module adds its own blueprint and hooks to the app (its
`init_app`); errors become responses in one place (errors.py).

The operator's pages, the JSON API (/api/) and the dashboard (/admin), exist only with
ADMIN_TOKEN: without it they are 404 (the start-up banner says which).
"""

from flask import Flask, request

from ..services import services
from ..timeline.counters import DUPLICATES, HourlyCounts
from . import admin, api, arrival, errors, headers, health, metrics, webhooks

FEATURES = (arrival, webhooks, health, metrics, api, admin, headers, errors)


def init_app(app: Flask) -> None:
    for feature in FEATURES:
        feature.init_app(app)
    count_duplicates(app)


def count_duplicates(app: Flask) -> None:
    """Duplicates dropped are counted per hour for the operator's statistics (signature
    failures: in errors.py)."""
    counts = app.extensions["hourly_counts"] = HourlyCounts(services(app).db)

    @app.after_request
    def _count_duplicate(response):
        if request.blueprint == "webhooks" and \
                response.headers.get("X-Webhook-Outcome") == "duplicate":
            counts.add(DUPLICATES)
        return response
