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


class Location(click.ParamType):
    """A file or folder (a Path), or a ``postgresql://`` table or query (a PostgresUrl, whose
    text is safe to show: a URL with a password is refused here, before anything echoes it)."""

    name = "PATH|URL"

    def convert(self, value, param, ctx):
        from .sources._pg_url import PostgresUrl, is_postgres_url
        from .sources._types import SourceError

        if isinstance(value, (Path, PostgresUrl)):
            return value
        if is_postgres_url(value):
            try:
                return PostgresUrl.parse(value)
            except SourceError as error:
                self.fail(str(error), param, ctx)
        return Path(value)


LOCATION = Location()


class StoreLocation(click.ParamType):
    """The results store: an SQLite file (a Path) or ``postgresql:///DB?schema=NAME`` (the URL's
    text, checked here: a URL with a password is refused before anything echoes it)."""

    name = "FILE|URL"

    def convert(self, value, param, ctx):
        from .store import StoreError, is_url

        if isinstance(value, Path):
            return value
        if is_url(value):
            from .store.postgres import StoreUrl

            try:
                StoreUrl.parse(value)
            except StoreError as error:
                self.fail(str(error), param, ctx)
            return value.strip()
        return Path(value)


STORE = StoreLocation()
STORE_HELP = ("an SQLite file, or a schema of a PostgreSQL database: postgresql:///DB?schema=NAME (default schema "
              "ecorules; no password in the URL: PGPASSWORD, ~/.pgpass or a service file)")

POLICIES_OPTION = click.option(
    "--policies", "policies_dir", type=click.Path(exists=True, path_type=Path), default=None,
    help="Folder (or file) of policies. Default: the shipped Zhengzhou set.",
)
FORMAT_OPTION = click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people, json for other systems.",
)


REGISTRY_HELP = ("The enterprise registry: CSV or text (comma, tab or semicolon; UTF-8, GBK or UTF-16), Parquet, "
                 "Excel (.xlsx, .xls), DB.sqlite:TABLE, a folder of such files, or a PostgreSQL table or read-only "
                 "query: postgresql:///DB?table=NAME or postgresql:///DB?query=SELECT ... (no password in the URL: "
                 "PGPASSWORD, ~/.pgpass or a service file). With --engine spark, also hive:DB.TABLE, a table of "
                 "Spark's catalogue (Hive's metastore on a cluster).")


def registry_options(function):
    """--registry and how to read it, shared by every command that reads one (run, diff), so
    that they read the same sources the same way."""
    options = [
        click.option("--registry", required=True, type=LOCATION, help=REGISTRY_HELP),
        click.option("--encoding", default=None,
                     help="Encoding of CSV files (e.g. gb18030, gbk, utf-8, utf-16). Default: decided per file."),
        click.option("--table", default=None, help="Table to read when the registry is an SQLite database."),
        click.option("--sheet", default=None,
                     help="Sheet to read when the registry is an Excel workbook: its name, or its position "
                          "from 1. Default: the only sheet, or the only one with the registry's columns."),
        click.option("--recurse/--no-recurse", default=True, show_default=True,
                     help="With a folder as --registry: read its subfolders too."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _json_default(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | Path):
        return str(value)  # exact text: money and decimals never become floats
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=_json_default))
