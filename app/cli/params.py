"""Command-line parameter types: what an option takes, checked before the command runs
(a bad value is a usage error, exit 2, that says why)."""

from __future__ import annotations

from datetime import timedelta

import click

from config import parse_duration


class Duration(click.ParamType):
    """A duration as the settings write it (30m, 2h, 7d; at most 100 years)."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, timedelta):
            return value
        try:
            return timedelta(seconds=parse_duration(str(value)))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
