"""HTTP in and out: the blueprints and the one place errors become responses."""

from flask import Flask

from . import errors, health, metrics, webhooks


def register(app: Flask) -> None:
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    errors.register_error_handlers(app)
