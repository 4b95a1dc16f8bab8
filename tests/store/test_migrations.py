"""Migrations: they create the schema, and they agree with the models."""

from sqlalchemy import inspect

from app.services import services
from tests.servers import flask_cli


def test_models_and_migrations_agree(app):
    """After `upgrade`, comparing the models with the database finds nothing missing."""
    assert services(app).db.schema_differences() == []


def test_upgrade_is_at_head_and_repeatable(app):
    db = services(app).db
    db.upgrade()  # a second upgrade is a no-op
    current, head = db.schema_revision()
    assert current == head
    tables = set(inspect(db.engine).get_table_names())
    assert {"processed_events", "replies", "delivery_receipts", "job_runs"} <= tables


def test_db_commands(env):
    """`db upgrade`, `db current` and `db check` work from the command line."""
    env = {**env, "DATABASE_AUTO_UPGRADE": "false"}
    before = flask_cli(env, "db", "current")
    assert before.returncode == 1 and "database: empty" in before.stdout
    upgraded = flask_cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert flask_cli(env, "db", "current").returncode == 0
    check = flask_cli(env, "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
