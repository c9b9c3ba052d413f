"""The batch commands of the ``ecorules`` command line: run, export, changes, gen-registry.

Registered by ``_cli.py`` through :data:`COMMANDS`. Exit codes as everywhere in ecorules: 0
done, 1 done but with rejected rows, 2 failed. Diagnostics go to stderr through logging; the
summary goes to stdout (``--format json`` for other systems).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from ecorules.rules import EcorulesError

from ._cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    FORMAT_OPTION,
    LOCATION,
    POLICIES_OPTION,
    STORE,
    STORE_HELP,
    Date,
    print_json,
    registry_options,
)

log = logging.getLogger("ecorules")


def _fail(message: str, output_format: str = "text") -> None:
    if output_format == "json":
        print_json({"status": "failed", "exit_code": EXIT_FAILED, "error": message})
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILED)




_DB = click.option("--db", type=STORE, default=Path("results.sqlite"), show_default=True,
                   help=f"The results store written by `ecorules run`: {STORE_HELP}.")

@click.command()
@registry_options
@click.option("--out", type=STORE, default=Path("results.sqlite"), show_default=True,
              help=f"The results store (created if missing; runs accumulate in it): {STORE_HELP}.")
@click.option("--cases", type=LOCATION, default=None,
              help="A case table (one row per case; same formats as --registry), judged by the case "
                   "policies and rolled up onto the registry's enterprises.")
@click.option("--cases-table", default=None, help="Table to read when the case table is an SQLite database.")
@click.option("--records", "kind_tables", multiple=True, metavar="KIND=PATH",
              help="A table of records of another kind, scored by that kind's policies (repeatable, one per "
                   "kind): KIND is a kind the policy folder declares (`kind:` in its catalogue, e.g. river_section, "
                   "district, report, dust_site, approval), PATH a CSV, Parquet, DB.sqlite:TABLE or folder, with the "
                   "kind's facts as columns (Chinese labels accepted). Each row is judged on its own, as "
                   "`ecorules explain --domain KIND` judges one record; findings and list entries carry the kind "
                   "and the record's key, rejects their row and column, district totals what the kind's findings "
                   "book to districts. A kind that belongs to enterprises (the case) is given with --cases.")
@click.option("--cases-sheet", default=None,
              help="Sheet to read when the case table is an Excel workbook: its name, or its position from 1.")
@POLICIES_OPTION
@click.option("--as-of", type=Date(), default=None, help="Judge under the law in force on this date. Default: today.")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Threads in all (reading, scoring, writing overlap). Default: all cores.")
@click.option("--aliases", "aliases_file", type=click.Path(exists=True, path_type=Path), default=None,
              help="YAML mapping fact -> [extra column headers], e.g. 'uscc: [统一代码]'.")
@click.option("--batch-rows", type=click.IntRange(1), default=None, help="Rows per batch (memory vs. overhead). Default: 262144.")
@click.option("--force", is_flag=True, help="Score again even if a run already scored this input (it is replaced).")
@click.option("--reassess", "reassess", multiple=True, is_flag=False, flag_value="*", metavar="[CASE_ID]",
              help="Assess again cases an earlier run assessed (一例一次 otherwise reports them as already "
                   "assessed): alone, every case of the case table; with a case id, that case (repeatable).")
@click.option("--duplicates", type=click.Choice(["reject", "last", "sum"]), default="reject", show_default=True,
              help="A USCC on several rows: 'reject' keeps its first row and rejects the later ones, naming "
                   "the first; 'last' keeps its last row and rejects the earlier ones; 'sum' adds their counts "
                   "when every other fact agrees, else rejects them all saying which fact differs.")
@click.option("--allow-failing-tests", is_flag=True,
              help="Score even if the policies' own YAML test cases fail (refused by default).")
@click.option("--allow-unset-parameters", is_flag=True,
              help="Score even if a policy in force has a parameter without a value on --as-of that its rules "
                   "read (a figure no source gives, marked UNVERIFIED, which legal staff must set; refused by "
                   "default). The rules reading it are not judged, and the summary warns of each.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr. Default: only on a terminal.")
@click.option("--engine", type=click.Choice(["local", "dask", "spark"]), default="local", show_default=True,
              help="Where the registry is scored: this process, a Dask cluster or Spark (a Parquet registry; "
                   "`pip install \"ecorules[dask]\"` or `[spark]`). The results store is the same.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="--engine dask: the scheduler's address (tcp://host:8786). Default: a local cluster of "
                   "--threads worker processes on 127.0.0.1.")
@click.option("--master", default=None, help="--engine spark: Spark's master (yarn, spark://host:7077). "
                                             "Default: local[--threads], on 127.0.0.1.")
@click.option("--out-format", type=click.Choice(["sqlite", "parquet", "hive"]), default="sqlite", show_default=True,
              help="--engine dask|spark: 'parquet' also writes the findings, list entries, rejects and district "
                   "totals as Parquet tables beside the store (results.sqlite -> results.parquet/TABLE/run_id=N/), "
                   "each part written by the worker that scored it. --engine spark: 'hive' also writes them as "
                   "tables of Spark's catalogue (Hive's metastore on a cluster) in --out-database: DB.findings, "
                   "DB.list_entries, DB.rejects, DB.district_totals, partitioned by run_id, copied from the store "
                   "once it committed the run (the case table's and other kinds' rows too); a run written again "
                   "replaces its partition.")
@click.option("--out-database", default=None, metavar="DB",
              help="--out-format hive: the database of Spark's catalogue to write the tables to (made if missing; "
                   "DB or hive:DB).")
@FORMAT_OPTION
def run(registry, out, cases, cases_table, cases_sheet, kind_tables, policies_dir, as_of, threads, encoding, table,
        sheet, recurse, aliases_file, batch_rows, force, reassess, duplicates, allow_failing_tests, allow_unset_parameters, progress,
        engine, scheduler, master, out_format, out_database, output_format):
    """Score the enterprise registry and store the results in an SQLite database.

    Streams the registry in bounded memory; Chinese column headers (统一社会信用代码, 企业名称,
    所属区县, ...) are recognised through the policies' labels and aliases. Bad rows are
    stored as rejects with file, row, column and reason; they never stop the run. Running
    again on the same input, policies and date reuses the earlier run (see --force).

    With a case table, a case's deduction or fine is assessed once (一例一次): a later run
    that still lists it reports it as already assessed, counting nothing, unless its decision
    date changed or --reassess asks for it.

    Tables of other kinds (--records KIND=PATH) are scored beside the registry, each by the
    policies of its kind: a river cross-section's month, a district's year, a report, a site.

    A parameter that a policy in force reads and that has no value on --as-of (a figure the
    sources do not give, left for legal staff to set) refuses the run, naming it at its
    file:line:col, unless --allow-unset-parameters.

    Exit code 0 done, 1 done with rejected rows, 2 failed or refused.

    \b
    Example:
      ecorules run --registry registry.parquet --out results.sqlite --as-of 2012-04-14
      ecorules run --registry 名录.csv --encoding gb18030 --format json
      ecorules run --registry 名录.xlsx --sheet 2024年 --out results.sqlite
      ecorules run --registry enterprises.csv --cases cases.csv --out results.sqlite
      ecorules run --registry registry/ --engine dask --scheduler tcp://10.0.0.5:8786
      ecorules run --registry hive:eco.registry --engine spark --master yarn \\
                   --out-format hive --out-database eco_results
      ecorules run --registry enterprises.csv --records river_section=sections.csv \\
                   --records district=districts.csv --out results.sqlite --as-of 2012-12-31
    """
    from ._kind_tables import parse_table_options
    from ._nightly import run_nightly
    from ._sources import DEFAULT_BATCH_ROWS, hash_ahead, read_alias_file

    # the input's content fingerprint, on the core that the policies' loading and tests leave idle
    click.get_current_context().call_on_close(hash_ahead(registry, cases))
    if cases_table is not None and cases_sheet is not None:
        _fail("give --cases-table (SQLite) or --cases-sheet (Excel), not both", output_format)

    try:
        from ecorules.fastcalc import compile_program
    except ImportError as error:
        _fail(f"the fastcalc kernel is not available ({error}); reinstall ecorules", output_format)
    from ecorules.rules import load_policies

    try:  # loaded once: checked by their own test cases, then scored with
        policies = load_policies(policies_dir)
    except EcorulesError as error:
        _fail(str(error), output_format)
    if not allow_failing_tests:
        _refuse_failing_tests(policies, output_format)
    try:
        tables = parse_table_options(kind_tables)
    except EcorulesError as error:
        _fail(str(error), output_format)
    if not allow_unset_parameters:
        _refuse_unset_parameters(policies, tables, cases is not None, as_of, output_format)
    if threads:
        import pyarrow

        pyarrow.set_cpu_count(threads)  # Parquet decoding and CSV conversion too
    try:
        aliases = read_alias_file(aliases_file) if aliases_file else None
        distributed = {}
        if engine != "local":
            import importlib.util

            module = {"dask": "distributed", "spark": "pyspark"}[engine]
            if importlib.util.find_spec(module) is None:
                _fail(f"--engine {engine} needs {module}, which is not installed: pip install \"ecorules[{engine}]\"",
                      output_format)
            from .distributed._run import run_distributed

            distributed = {"engine": engine, "scheduler": scheduler, "master": master, "out_format": out_format,
                           "out_database": out_database}
        elif scheduler or master or out_format != "sqlite" or out_database:
            _fail("--scheduler, --master, --out-format parquet|hive and --out-database are for --engine dask and "
                  "--engine spark",
                  output_format)
        # the CLI owns its process, so the case stage may tune its allocator (engine/cases/_memory.py)
        process = distributed or {"tune_allocator": True}
        summary = (run_distributed if distributed else run_nightly)(
            registry, out, **process, policies=policies, as_of=as_of, threads=threads, encoding=encoding,
            table=table, batch_rows=batch_rows or DEFAULT_BATCH_ROWS, aliases=aliases, force=force,
            progress=progress, compile_program=compile_program, cases=cases,
            # the case table's reader takes a workbook's sheet where an SQLite file's table goes
            cases_table=cases_table if cases_sheet is None else cases_sheet,
            reassess=True if "*" in reassess else reassess, tables=tables, sheet=sheet, recurse=recurse,
            duplicates=duplicates, allow_unset_parameters=True,  # (checked above, naming the option)
        )
    except (EcorulesError, LookupError) as error:  # LookupError: an unknown --encoding
        _fail(str(error), output_format)
    except Exception as error:  # noqa: BLE001 - a failed run is exit 2 with the reason, not a traceback
        log.debug("run failed", exc_info=True)
        _fail(f"{type(error).__name__}: {error}", output_format)
    if output_format == "json":
        print_json(summary.to_dict())
    else:
        click.echo(summary.render_text())
    sys.exit(summary.exit_code)


def _refuse_failing_tests(policies, output_format) -> None:
    """A policy set whose own test cases fail says its rules are not what legal staff wrote
    down: a nightly run on it would write a ledger nobody vouches for. The python backend
    judges the cases (about a second; the differential tests hold durable equal to it)."""
    from ._testing import run_tests

    try:
        report = run_tests(policies, backend="python", explain=False)
    except EcorulesError as error:
        _fail(str(error), output_format)
    if report.failed:
        first = report.failed[0]
        _fail(
            f"{len(report.failed)} of the policies' own test cases fail (first: {first.policy.key} "
            f"'{first.case.name}' at {first.where}: {first.problems[0]}); fix the policy or its cases "
            "(ecorules test shows them all), or score anyway with --allow-failing-tests",
            output_format,
        )


def _refuse_unset_parameters(policies, tables, with_cases: bool, as_of, output_format) -> None:
    """The library's refusal (engine/_kind_tables.py), before the policies are compiled,
    naming the command's option."""
    import datetime as dt

    from ._kind_tables import UnsetParametersError, refuse_unset_parameters, run_domains
    from ._nightly import DOMAIN

    try:
        refuse_unset_parameters(policies, run_domains(policies, DOMAIN, tables, with_cases), as_of or dt.date.today(),
                                "--allow-unset-parameters")
    except UnsetParametersError as error:
        _fail(str(error), output_format)


@click.command()
@click.option("--run", "run_id", required=True, help="Run id, or 'latest'.")
@click.option("--table", required=True, type=click.Choice(["runs", "findings", "district_totals", "sanctions", "rejects", "assessed",
                                                          "case_factors"]),
              help="case_factors: what placed each case finding (its roll-ups and levels, as explain's trace).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output file: .csv or .parquet.")
@click.option("--encoding", type=click.Choice(["utf-8", "utf-8-sig", "gb18030"]), default="utf-8", show_default=True,
              help="CSV encoding; utf-8-sig lets Excel open it directly.")
@_DB
@FORMAT_OPTION
def export(run_id, table, out, encoding, db, output_format):
    """Write one table of one run to CSV or Parquet (by the extension of --out).

    \b
    Example:
      ecorules export --run latest --table findings --out findings.parquet
      ecorules export --run 3 --table rejects --out rejects.csv --encoding utf-8-sig
    """
    from ._export import export_table

    try:
        run_number, rows = export_table(db, run_id, table, out, encoding=encoding)
    except EcorulesError as error:
        _fail(str(error), output_format)
    if output_format == "json":
        print_json({"status": "done", "exit_code": EXIT_OK, "run": run_number, "table": table, "rows": rows, "out": out})
    else:
        click.echo(f"run {run_number}: {rows:,} rows of {table} -> {out}")
    sys.exit(EXIT_OK)


@click.command()
@click.option("--since", required=True, help="The earlier run: an id, or 'previous'.")
@click.option("--run", "run_id", default="latest", show_default=True, help="The later run: an id, or 'latest'.")
@click.option("--limit", type=click.IntRange(0), default=100, show_default=True, help="Items listed per kind of change (0: all).")
@_DB
@FORMAT_OPTION
def changes(since, run_id, limit, db, output_format):
    """What changed since an earlier run: list entries, findings, district totals.

    List entries: those entered and those ended (expired, lifted, no longer justified, by a
    decision) by the runs after --since up to --run, with their reasons.

    \b
    Example:
      ecorules changes --since previous
      ecorules changes --since 3 --run 5 --db results.sqlite --format json
    """
    from ._changes import compare_runs, render_text

    try:
        report = compare_runs(db, since, run_id, limit=limit)
    except EcorulesError as error:
        _fail(str(error), output_format)
    if output_format == "json":
        print_json(report)
    else:
        click.echo(render_text(report))
    sys.exit(EXIT_OK)


@click.command("lists")
@click.option("--as-of", "as_of", type=Date(), default=None, help="The day asked about. Default: today.")
@click.option("--list", "list_id", default=None, help="Only this list (its id, e.g. green_credit_blacklist).")
@click.option("--uscc", default=None, help="Only this enterprise.")
@click.option("--end", "end_id", type=int, default=None, metavar="ENTRY_ID",
              help="End this open entry by an explicit decision (exit 'decision'; needs --reason).")
@click.option("--reason", default=None, help="With --end: the decision's reason.")
@_DB
@FORMAT_OPTION
def lists(as_of, list_id, uscc, end_id, reason, db, output_format):
    """Who is on which list on a day: since when, until when, why; and the exits.

    The state is the one the runs left in the results database: each run enters the list
    entries its rules justify and ends those that expired (on the list through their planned
    end day), were lifted, or are no longer justified.

    \b
    Example:
      ecorules lists --db results.sqlite --as-of 2013-06-30 --list green_credit_blacklist
      ecorules lists --uscc 91410100123456788Y --format json
      ecorules lists --end 12 --as-of 2013-05-01 --reason "复议决定撤销"
    """
    import datetime as dt

    from ._lists import end_by_decision, lists_as_of, render_lists

    day = as_of or dt.date.today()
    try:
        if end_id is not None:
            if not reason:
                _fail("--end needs --reason (why the decision ends the entry)", output_format)
            entry = end_by_decision(db, end_id, day, reason)
            if output_format == "json":
                print_json(entry)
            else:
                click.echo(f"entry {entry['id']}: {entry['list']} {entry['uscc']} ended {entry['ended']} (decision: {entry['exit_reason']})")
            sys.exit(EXIT_OK)
        report = lists_as_of(db, day, list_id=list_id, uscc=uscc)
    except EcorulesError as error:
        _fail(str(error), output_format)
    if output_format == "json":
        print_json(report)
    else:
        click.echo(render_lists(report))
    sys.exit(EXIT_OK)


@click.command("gen-registry")
@click.option("--rows", required=True, type=click.IntRange(0), help="Number of enterprises.")
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same file.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output file: .csv or .parquet.")
@click.option("--headers", type=click.Choice(["names", "labels"]), default="names", show_default=True,
              help="Column headers: the facts' names (uscc, ...) or the Chinese labels staff use.")
@FORMAT_OPTION
def gen_registry(rows, seed, out, headers, output_format):
    """Write a synthetic, realistic registry of Zhengzhou enterprises (deterministic per seed).

    \b
    Example:
      ecorules gen-registry --rows 10000000 --seed 1 --out registry.parquet
      ecorules gen-registry --rows 1000 --seed 7 --out 名录.csv --headers labels
    """
    from ecorules.rules import load_policies

    from ._generate import generate_registry, write_registry

    if out.suffix.lower() not in (".csv", ".parquet"):
        _fail(f"{out}: cannot tell the format; the name must end in .csv or .parquet", output_format)
    table = generate_registry(rows, seed)
    if headers == "labels":
        facts = load_policies().facts
        table = table.rename_columns([(facts[c].label if c in facts and facts[c].label else c) for c in table.column_names])
    try:
        write_registry(table, out)
    except OSError as error:
        _fail(f"{out}: cannot write: {error.strerror or error}", output_format)
    if output_format == "json":
        print_json({"status": "done", "exit_code": EXIT_OK, "rows": rows, "seed": seed, "out": out})
    else:
        click.echo(f"{rows:,} rows -> {out}")
    sys.exit(EXIT_OK)


@click.group("db")
def db_group():
    """The results store itself."""


@db_group.command("upgrade")
@click.option("--out", type=STORE, required=True, help=f"The results store: {STORE_HELP}.")
@FORMAT_OPTION
def db_upgrade(out, output_format):
    """Make the results store, or bring its schema to this ecorules' version (every run does
    this first; idempotent).

    \b
    Example:
      ecorules db upgrade --out "postgresql:///bureau?schema=ecorules"
    """
    from . import store

    try:
        connection = store.connect(out)
        connection.close()
    except EcorulesError as error:
        _fail(str(error), output_format)
    if output_format == "json":
        print_json({"status": "done", "exit_code": EXIT_OK, "store": store.shown(out),
                    "schema_version": store.SCHEMA_VERSION})
    else:
        click.echo(f"{store.shown(out)}: results schema version {store.SCHEMA_VERSION}")
    sys.exit(EXIT_OK)


COMMANDS = [run, export, changes, lists, gen_registry, db_group]

__all__ = ["COMMANDS"]
