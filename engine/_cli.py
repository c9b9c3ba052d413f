"""The ``ecorules`` command line.

Exit codes are part of the interface: 0 done; 1 done, but something needs attention (a test
failed, rows were rejected); 2 failed (bad usage, unreadable or invalid policy, bad input).
Human output goes to stdout in Chinese with English labels; diagnostics go through logging
to stderr; ``--format json`` prints one JSON document instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from decimal import Decimal
from pathlib import Path

import click
from ecorules.rules import EcorulesError, PolicyError, by_fact_name, check_policies, load_policies
from ecorules.rules._concurrence import concurrence_warnings

from ._cli_common import (
    EXIT_ATTENTION,
    EXIT_FAILED,
    EXIT_OK,
    FORMAT_OPTION,
    POLICIES_OPTION,
    Date,
    print_json,
)

log = logging.getLogger("ecorules")


def _load(policies_dir: Path | None):
    try:
        return load_policies(policies_dir)
    except PolicyError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_FAILED)


def _set_verbosity(ctx: click.Context, _param: click.Parameter, verbose: int) -> None:
    """-v wherever it is written (``ecorules -v run`` or ``ecorules run -v``): the louder wins."""
    if not verbose:
        return
    root = ctx.find_root()
    root.meta["ecorules.verbose"] = verbose = max(verbose, root.meta.get("ecorules.verbose", 0))
    logging.getLogger().setLevel(max(logging.WARNING - 10 * verbose, logging.DEBUG))


def _verbose_option() -> click.Option:
    return click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_set_verbosity,
                        help="More log output on stderr (-vv for debug).")


class _Commands(click.Group):
    """Every subcommand also takes -v (people type it after the command as often as before)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        for command in (cmd, *getattr(cmd, "commands", {}).values()):  # a group's (ecorules db upgrade) too
            if not any("--verbose" in getattr(p, "opts", ()) for p in command.params):
                command.params.append(_verbose_option())
        super().add_command(cmd, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.version_option(package_name="ecorules")
def main(verbose: int) -> None:
    """Environmental regulations as code: check policies, test them, judge cases.

    \b
    Start here:
      ecorules check policies/                 validate the YAML policies
      ecorules test policies/                  run the test cases written in them
      ecorules explain --record examples/records/untreated_outfalls.json
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@FORMAT_OPTION
def check(paths, output_format):
    """Validate policy files; print file:line:col: message for each error.

    Warnings (exit code still 0): a rule whose condition can never be true with the declared
    ranges of its facts, a parameter with no value in force today, and two rules that can
    fine one record of a kind that declares no act (one act, one fine would not apply).

    \b
    Example:
      ecorules check policies/zhengzhou/
    """
    policies, errors = check_policies(paths)
    today = dt.date.today()
    across: dict[str, list] = {}
    for policy, warning in concurrence_warnings(policies or ()):
        across.setdefault(policy.key, []).append(warning)

    def warnings_of(policy):
        return (*policy.warnings(today), *across.get(policy.key, ()))

    if output_format == "json":
        print_json({
            "ok": not errors,
            "errors": [
                {"file": e.span.file if e.span else None, "line": e.span.line if e.span else None,
                 "column": e.span.column if e.span else None, "message": e.message, "suggestion": e.suggestion}
                for e in errors
            ],
            "warnings": [
                {"policy": p.key, "file": w.span.file if w.span else None, "line": w.span.line if w.span else None,
                 "column": w.span.column if w.span else None, "message": w.message}
                for p in policies or () for w in warnings_of(p)
            ],
            "policies": [p.key for p in policies] if policies else [],
        })
    else:
        for error in errors:
            click.echo(str(error))
        if policies:
            for policy in policies:
                rules = len(policy.rules)
                click.echo(f"ok  {policy.key}  {policy.title}  ({rules} rules, {len(policy.tests)} test cases)")
                for warning in warnings_of(policy):
                    click.echo(f"    warning: {warning}")
    sys.exit(EXIT_FAILED if errors else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--backend", type=click.Choice(["durable", "python"]), default="durable", show_default=True,
              help="Which evaluator judges the cases.")
@FORMAT_OPTION
def test(paths, backend, output_format):
    """Run the YAML test cases of the policies under PATHS.

    Prints pass/fail per case, expected against actual on failure, and the rules that no
    case makes fire. Exit code 1 if any case fails.

    \b
    Example:
      ecorules test policies/
    """
    from ._testing import run_tests

    policies = _load(list(paths))
    report = run_tests(policies, backend=backend)
    if output_format == "json":
        print_json({
            "passed": sum(r.passed for r in report.results),
            "failed": len(report.failed),
            "cases": [
                {"policy": r.policy.key, "case": r.case.name, "where": r.where, "passed": r.passed, "problems": list(r.problems)}
                for r in report.results
            ],
            "unexercised_rules": [{"policy": p, "rule": r} for p, r in report.unexercised],
        })
    else:
        for result in report.results:
            mark = "PASS" if result.passed else "FAIL"
            click.echo(f"{mark}  {result.policy.key}  {result.case.name}  ({result.where})")
            for problem in result.problems:
                click.echo(f"      {problem}")
        click.echo(f"\n{len(report.results) - len(report.failed)} passed, {len(report.failed)} failed")
        for policy_key, rule in report.unexercised:
            click.echo(f"no case makes this rule fire: {policy_key} {rule}")
    sys.exit(EXIT_ATTENTION if report.failed else EXIT_OK)


@main.command()
@click.option("--record", "record_path", required=True, type=click.Path(allow_dash=True),
              help="A JSON file with one record (the registry fields), or - for stdin.")
@POLICIES_OPTION
@click.option("--as-of", type=Date(), default=None,
              help="Judge under the law in force on this date. Default: the record's as_of, else today.")
@click.option("--domain", default=None, help="Kind of record (enterprise, approval). Default: the record's domain, else enterprise.")
@FORMAT_OPTION
def explain(record_path, policies_dir, as_of, domain, output_format):
    """Judge one record and explain the outcome, citing the clauses.

    The record is a JSON object of facts, e.g. {"uscc": "91410100123456788Y", "district":
    "金水区", "untreated_outfalls": 3, ...}, or {"as_of": ..., "domain": ..., "facts": {...}},
    or an enterprise with its cases: {"as_of": ..., "enterprise": {...}, "cases": [{...}, ...]}
    (roll-ups computed from the cases; one act, one fine across cases sharing act_id).

    \b
    Example:
      ecorules explain --record examples/records/untreated_outfalls.json --as-of 2012-04-14
      cat case.json | ecorules explain --record - --format json
    """
    from ._evaluator import Evaluator
    from ._explain import render_group_text, render_text

    try:
        raw = sys.stdin.read() if record_path == "-" else Path(record_path).read_text(encoding="utf-8-sig")
        document = json.loads(raw, parse_float=Decimal)
    except OSError as error:
        click.echo(f"{record_path}: cannot read: {error.strerror}", err=True)
        sys.exit(EXIT_FAILED)
    except json.JSONDecodeError as error:
        click.echo(f"{record_path}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}", err=True)
        sys.exit(EXIT_FAILED)
    if not isinstance(document, dict):
        click.echo(f"{record_path}: a record must be a JSON object", err=True)
        sys.exit(EXIT_FAILED)
    facts = document.get("facts", document) if isinstance(document.get("facts"), dict) else document
    try:
        as_of = as_of or (dt.date.fromisoformat(document["as_of"]) if "as_of" in document else dt.date.today())
    except (TypeError, ValueError):
        click.echo(f"{record_path}: as_of {document['as_of']!r} is not a date YYYY-MM-DD", err=True)
        sys.exit(EXIT_FAILED)
    domain = domain or document.get("domain", "enterprise")
    policies = _load(policies_dir)
    # {"enterprise": {...}, "cases": [...]}: an enterprise judged with its cases
    group = isinstance(document.get("cases"), list) and isinstance(document.get("enterprise"), dict)
    try:
        # keys as the registry's headers (统一社会信用代码), and none that names no fact
        if group:
            enterprise = by_fact_name(document["enterprise"], policies.facts, what="enterprise")
            cases = [by_fact_name(case, policies.facts, what=f"case {number}") if isinstance(case, dict) else case
                     for number, case in enumerate(document["cases"], 1)]
        else:
            facts = by_fact_name(facts, policies.facts, besides=() if facts is not document else _RECORD_SETTINGS)
        with Evaluator(policies) as evaluator:
            if group:
                decision = evaluator.evaluate_group(enterprise, cases, kind=document.get("kind", "case"), as_of=as_of)
            else:
                decision = evaluator.evaluate(facts, as_of=as_of, domain=domain)
    except (EcorulesError, ValueError) as error:
        click.echo(f"{record_path}: {error}", err=True)
        sys.exit(EXIT_FAILED)
    if output_format == "json":
        print_json(decision.to_dict())
    else:
        click.echo(render_group_text(decision, policies) if group else render_text(decision, policies))
    sys.exit(EXIT_OK)


# what a record written as one flat object may say besides its facts
_RECORD_SETTINGS = ("as_of", "domain")


def _register_optional_commands() -> None:
    """Commands that live in their own modules (batch scoring, nightly run, diff)."""
    import importlib

    for module_name in ("_cli_batch", "_cli_diff"):
        try:
            module = importlib.import_module(f"ecorules.engine.{module_name}")
        except ModuleNotFoundError as error:
            if error.name != f"ecorules.engine.{module_name}":
                raise
            continue
        for command in module.COMMANDS:
            main.add_command(command)


_register_optional_commands()

if __name__ == "__main__":
    main()
