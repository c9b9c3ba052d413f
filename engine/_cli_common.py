"""What every ``ecorules`` command shares: exit codes, the date type, options, JSON output.

Exit codes are part of the interface: 0 done; 1 done, but something needs attention (a test
failed, rows were rejected); 2 failed (bad usage, unreadable or invalid policy, bad input).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import click

EXIT_OK, EXIT_ATTENTION, EXIT_FAILED = 0, 1, 2


class Date(click.ParamType):
    """A YYYY-MM-DD option value, as a :class:`datetime.date`."""

    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date in the form YYYY-MM-DD", param, ctx)


POLICIES_OPTION = click.option(
    "--policies", "policies_dir", type=click.Path(exists=True, path_type=Path), default=None,
    help="Folder (or file) of policies. Default: the shipped Zhengzhou set.",
)
FORMAT_OPTION = click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people, json for other systems.",
)


def _json_default(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | Path):
        return str(value)  # exact text: money and decimals never become floats
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=_json_default))
