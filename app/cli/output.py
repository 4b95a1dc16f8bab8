"""How commands print: lines as they come, and a refusal (one line on stderr, an exit
status) when a command cannot do what it was asked."""

from __future__ import annotations

import sys

import click


def echo_lines(lines) -> None:
    for line in lines:
        click.echo(line)


def refuse(message: str, status: int = 2):
    click.echo(f"error: {message}", err=True)
    sys.exit(status)
