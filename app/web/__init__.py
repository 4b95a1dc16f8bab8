"""HTTP in and out: each module adds its own blueprint and hooks to the app (its
`init_app`); errors become responses in one place (errors.py), webhooks' results are
counted in one place (tally.py).

The operator's pages, the JSON API (/api/) and the dashboard (/admin), exist only with
ADMIN_TOKEN: without it they are 404 (the start-up banner says which).
"""

from flask import Flask

from . import admin, api, arrival, errors, headers, health, metrics, webhooks

FEATURES = (arrival, webhooks, health, metrics, api, admin, headers, errors)


def init_app(app: Flask) -> None:
    for feature in FEATURES:
        feature.init_app(app)
