"""``ecorules diff``: the impact of a proposed policy set against the current one.

Registered by ``_cli._register_optional_commands`` through ``COMMANDS``. This module does not
import ``_cli`` (which imports it while loading), so it stands alone. Exit codes follow the
command line's convention: 0 done, whatever the impact; 1 done, but the proposal's own test
cases fail (so that a CI gate can rely on the exit code); 2 failed (bad policies, an
unreadable registry or one lacking a column, an HTML path that cannot be written).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

import click
from ecorules.rules import EcorulesError, PolicyError

from ._cli_common import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, Date, registry_options

log = logging.getLogger("ecorules.diff")


@click.command("diff")
@click.option("--base", "base_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="The policies in force (a folder or file), e.g. policies/.")
@click.option("--proposed", "proposed_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="The draft: a complete policy folder (copy the base folder, then edit).")
@registry_options
@click.option("--as-of", "as_of", type=Date(), default=None,
              help="Judge under the law in force on this date (both sets). Default: today.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a self-contained HTML report (chart, policy changes, sortable table).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for other systems (shape: see ecorules.engine.diff._report).")
@click.option("--top", type=click.IntRange(min=0), default=20, show_default=True,
              help="How many of the most changed enterprises to explain, with the clauses responsible.")
def diff(base_path, proposed_path, registry, encoding, table, sheet, recurse, as_of, html_path, output_format, top):
    """Test a rule change: score the registry under the base and the proposed policies.

    Reports the enterprises whose outcome changes (amounts, lists, the rules responsible with
    their citations), the fiscal impact per district and per rule, the test cases the draft
    breaks, and what changed in the policy text. One pass over the registry. Exit code 0,
    1 when the proposal's own test cases fail, 2 when it cannot be done.

    \b
    Example:
      ecorules diff --base policies/ --proposed drafts/ --registry examples/registry.csv \\
                    --as-of 2014-01-01 --html impact.html
    """
    from .diff._report import render_text
    from .diff._run import run_diff

    registry_path = registry
    # the registry is read as `ecorules run` reads it: the same options, the same reader
    reading = {"encoding": encoding, "table": table, "sheet": sheet, "recurse": recurse}
    try:
        document = run_diff(base_path, proposed_path, registry_path, as_of or dt.date.today(), top=top,
                            reading=reading)
    except PolicyError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_FAILED)
    except (EcorulesError, ValueError, KeyError, OSError) as error:
        click.echo(f"{registry_path}: {error}", err=True)
        sys.exit(EXIT_FAILED)
    if html_path is not None:
        from .diff._html import render_html

        try:
            html_path.write_text(render_html(document), encoding="utf-8")
        except OSError as error:
            click.echo(f"{html_path}: cannot write the HTML report: {error.strerror}", err=True)
            sys.exit(EXIT_FAILED)
        log.info("HTML report written to %s", html_path)
    if output_format == "json":
        click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))  # Decimal yuan: exact text
    else:
        click.echo(render_text(document))
        if html_path is not None:
            click.echo(f"\nHTML 报告 report: {html_path}")
    failing = document["tests"]["proposal"]["failed"]
    if failing and output_format != "json":  # JSON readers find it under tests.proposal
        click.echo(f"the proposal's own test cases fail: {failing} (exit code 1)", err=True)
    sys.exit(EXIT_ATTENTION if failing else EXIT_OK)


COMMANDS = [diff]
