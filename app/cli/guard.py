"""Every command ends with one line, not a traceback, when the database cannot be
reached or has no schema yet: that line is what Heroku's release phase and systemd's
`ExecStartPre` (both `flask --app wsgi db upgrade`) show. `doctor` reports the database
as one of its checks instead.
"""

from __future__ import annotations

import copy
import functools
import sys

import click
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..services import services
from ..store.database import SchemaBehind

EXIT_STATUS = 1
_UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a missing table


def add_commands(app: Flask, *commands: click.Command) -> None:
    """Attach commands to the app's CLI, each guarded (see `guarded`)."""
    for command in commands:
        app.cli.add_command(guarded(command))


def guarded(command: click.Command) -> click.Command:
    """A copy of `command` (with its subcommands) whose database errors end it with one
    line on stderr and exit status 1; the original stays as it was."""
    copied = copy.copy(command)
    copied.invoke = functools.partial(_invoke, command.invoke)
    return copied


def _invoke(invoke, ctx: click.Context):
    try:
        return invoke(ctx)
    except SQLAlchemyError as exc:
        app = ctx.ensure_object(ScriptInfo).load_app()  # loaded already: the command ran
        click.echo(f"error: {describe(exc, services(app).settings.database.url)}", err=True)
        sys.exit(EXIT_STATUS)


def describe(exc: SQLAlchemyError, database_url: str) -> str:
    """One line: which database, what went wrong, what to do."""
    url = _shown(database_url)
    if isinstance(exc, SchemaBehind):  # a serving process's hold (store/database.py)
        found = (f"schema {exc.current}, older than the code's" if exc.current else
                 "no schema yet")
        return f"the database {url} has {found} -- fix: flask --app wsgi db upgrade"
    cause = getattr(exc, "orig", None) or exc  # the driver's own words, when it has some
    if "no such table" in str(cause) or getattr(cause, "sqlstate", None) == _UNDEFINED_TABLE:
        return (f"the database {url} has no schema yet ({_first_line(cause)}) -- fix: "
                "flask --app wsgi db upgrade")
    fix = ("check DATABASE_URL: an SQLite database file this user may read and write"
           if url.startswith("sqlite") else
           "check DATABASE_URL and that the database server runs")
    return f"the database {url} cannot be used: {_first_line(cause)} -- fix: {fix}"


def _shown(url: str) -> str:
    """The URL as DATABASE_URL spells it, without the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(DATABASE_URL)"
    if parsed.drivername.startswith("postgresql"):
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # SQLAlchemy appends its background link and the statement on lines of their own.
    return (text.splitlines() or [type(exc).__name__])[0]
