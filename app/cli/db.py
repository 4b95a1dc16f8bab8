"""`flask --app wsgi db ...`: the database schema (Alembic migrations)."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from ..services import services
from .guard import add_commands

group = AppGroup("db", help="Database schema (Alembic migrations).")


@group.command("upgrade")
def db_upgrade():
    """Apply every migration not yet applied (the release phase runs this)."""
    db = services().db
    db.upgrade()
    current, head = db.schema_revision()
    click.echo(f"database schema at {current} (newest: {head})")


@group.command("check")
def db_check():
    """Fail if the models and the migrations disagree (a migration is missing)."""
    differences = services().db.schema_differences()
    for diff in differences:
        click.echo(diff)
    sys.exit(1 if differences else 0)


@group.command("current")
def db_current():
    """Print the schema revision of the database and of the code."""
    current, head = services().db.schema_revision()
    click.echo(f"database: {current or 'empty'}; code: {head}")
    sys.exit(0 if current == head else 1)


def init_app(app: Flask) -> None:
    add_commands(app, group)
