"""The nightly run: stream the registry, score each batch, write the results, summarize.

    summary = run_nightly("registry.parquet", "results.sqlite", as_of=date(2012, 4, 14))
    summary.exit_code      # 0 done, 1 done with rejects, 2 failed

Three things overlap: a thread reads the next batch (pyarrow releases the GIL), the caller's
thread scores the current one (the kernel releases it too), and the store's writer thread
inserts the previous batch's findings into SQLite. Memory holds a few batches, whatever the
size of the registry. Only what is needed is written: findings (one per fired rule's finding,
0 yuan included, as ``ecorules explain`` shows them), sanctions, rejects; district totals are
summed across batches in memory.

Every run checks ``rows_in = rows_scored + rows_rejected`` before it may commit.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ecorules.rules import EcorulesError, PolicySet, load_policies

from . import store
from ._chunks import _json_rows, entries_json, sanction_slot_rows
from ._duplicates import POLICIES as DUPLICATE_POLICIES
from ._duplicates import DuplicateFilter, streamed, take_census, unique_key
from ._kind_tables import (
    KindTableError,
    plan_kind_tables,
    refuse_unset_parameters,
    run_domains,
    unjudged_policies,
)
from ._ledger_money import FEN, YUAN, in_yuan, unit_name, yuan_json, yuan_text
from ._lists import update_entries
from ._prefetch import prefetch
from ._progress import Progress
from ._scored import (
    ScoredBatch,
    Scoring,
    entries_escaped,
    make_scoring,
    score_batch,
)
from ._seen_keys import SeenUsccs
from ._sources import DEFAULT_BATCH_ROWS, Batch, ColumnResolver, Registry, SourceError
from ._unset_rollups import unset_rollups, with_unset
from .sources._pg_url import as_location
from .sources._types import made_contiguous

log = logging.getLogger("ecorules.nightly")

EXIT_DONE, EXIT_REJECTS, EXIT_FAILED = 0, 1, 2
DOMAIN = "enterprise"


class NightlyError(EcorulesError):
    """The run failed; the database holds the failed run (if it could be opened)."""


def ecorules_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ecorules")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


@dataclass
class Summary:
    """What a run did, as printed at the end (text or ``--format json``)."""

    run_id: int | None
    status: str
    db: str
    source: str
    as_of: dt.date
    reused: bool = False
    replaced_run: int | None = None
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    total_fen: int = 0
    unit: str = YUAN  # of the total: fen if any finding is (engine/_ledger_money.py)
    findings: int = 0
    # district, deduction_yuan (exact: int, or Decimal in fen), cases, deduction_fen, unit
    districts: list[dict[str, Any]] = field(default_factory=list)
    lists: dict[str, int] = field(default_factory=dict)  # list id -> entries
    rejects_by_reason: list[dict[str, Any]] = field(default_factory=list)  # column, reason, rows
    seconds: float = 0.0
    encodings: dict[str, str] = field(default_factory=dict)
    # each file read: source, format, how (encoding and why, separator, sheet), rows in and rejected
    sources: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    tables: dict[str, dict[str, int]] = field(default_factory=dict)  # with a case table: rows per table
    already_assessed: int = 0  # with a case table: findings an earlier run assessed (一例一次)
    lighter_law: int = 0  # with a case table: cases judged by the lighter law of the decision (从轻)

    @property
    def total_yuan(self) -> int | Decimal:
        """The run's total in yuan, exactly: an int, or a two-place Decimal where it is in fen."""
        return in_yuan(self.total_fen, self.unit)

    @property
    def exit_code(self) -> int:
        if self.status != "done":
            return EXIT_FAILED
        return EXIT_REJECTS if self.rows_rejected else EXIT_DONE

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "status": self.status, "exit_code": self.exit_code, "db": self.db,
            "source": self.source, "as_of": self.as_of.isoformat(), "reused": self.reused,
            "replaced_run": self.replaced_run, "rows_in": self.rows_in, "rows_scored": self.rows_scored,
            "rows_rejected": self.rows_rejected, "total_yuan": yuan_json(self.total_fen, self.unit),
            "total_fen": self.total_fen, "unit": self.unit, "findings": self.findings,
            "district_totals": [{**d, "deduction_yuan": yuan_json(d["deduction_fen"], d["unit"])} for d in self.districts],
            "list_entries": self.lists,
            "rejects_by_reason": self.rejects_by_reason, "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_in / self.seconds) if self.seconds > 0 else None,
            "encodings": self.encodings, "sources": self.sources, "warnings": self.warnings, "error": self.error,
            **({"tables": self.tables, "already_assessed": self.already_assessed, "lighter_law": self.lighter_law}
               if self.tables else {}),
        }

    def render_text(self) -> str:
        if self.status != "done":
            return f"run {self.run_id} 失败 failed: {self.error}"
        head = f"run {self.run_id}  {self.source}  as of {self.as_of}"
        if self.reused:
            head += "  (已是最新 up to date: same input, policies and date; nothing recomputed)"
        lines = [head]
        rate = f"  {self.rows_in / self.seconds:,.0f} rows/s" if self.seconds > 0 and not self.reused else ""
        lines.append(
            f"行数 rows: {self.rows_in:,} in, {self.rows_scored:,} scored, {self.rows_rejected:,} rejected"
            f"  ({self.seconds:.1f} s{rate})"
        )
        for name, rows in self.tables.items():
            money = "".join(f", {_exact(rows[key]):,} 元 {word}" for key, word in (("total_yuan", "owed"), ("rewards_yuan", "rewards"))
                            if rows.get(key) and _exact(rows[key]))
            lines.append(f"  {name}: {rows['rows_in']:,} in, {rows['rows_scored']:,} scored, {rows['rows_rejected']:,} rejected{money}")
        if len(self.sources) > 1 or any(s.get("encoding_why") or s.get("notes") for s in self.sources):
            lines.append("读取 files read:")
            for s in self.sources:
                how = "; ".join(s[k] for k in ("encoding_why", "notes") if s.get(k))
                separator = f", {s['separator']}-separated" if s.get("separator") not in (None, "comma") else ""
                lines.append(f"  {s['source']}: {s.get('rows_in', 0):,} rows, {s.get('rows_rejected', 0):,} rejected"
                             f"{separator}{f' ({how})' if how else ''}")
        lines.append(f"扣款合计 total deductions: {yuan_text(self.total_fen, self.unit)} 元 in {self.findings:,} findings")
        if self.already_assessed:
            lines.append(f"已处理 already assessed by earlier runs (一例一次, not counted): {self.already_assessed:,} findings")
        if self.lighter_law:
            lines.append(f"从轻 judged by the lighter law of the decision date (行政处罚法第三十七条): {self.lighter_law:,} cases")
        if self.districts:
            # the roll-up is per payer: the district, or the 责任单位 the registry names instead
            lines.append("按缴款单位 by payer (区县 or 责任单位):")
            width = max(len(d["district"]) for d in self.districts)
            for d in self.districts:
                pad = " " * (2 * (width - len(d["district"])))  # CJK characters are two columns wide
                lines.append(f"  {d['district']}{pad}  {yuan_text(d['deduction_fen'], d['unit']):>16} 元  {d['cases']:>8,} cases")
        if self.lists:
            lines.append("名单 list entries: " + ", ".join(f"{k} {v:,}" for k, v in self.lists.items()))
        if self.rejects_by_reason:
            lines.append("拒收 rejects (rows by column and reason; a row with several problems counts under each):")
            for r in self.rejects_by_reason[:10]:
                # the reason as a reject says it; "e.g." where like reasons with other values count too
                example = r.get("example") or r["reason"]
                shown = f"e.g. {example}" if example != r["reason"] and r["rows"] > 1 else example
                lines.append(f"  {r['rows']:>10,}  {r['column'] or '(whole row)'}: {shown}")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        return "\n".join(lines)


# --- helpers --------------------------------------------------------------------------------


def _exact(yuan: int | str) -> int | Decimal:
    """An amount of the summary's JSON (an int of yuan, or exact text in fen) as a number."""
    return Decimal(yuan) if isinstance(yuan, str) else yuan




class _Background:
    """``function()`` computed in a thread of its own; ``result()`` waits (and re-raises)."""

    def __init__(self, function: Callable[[], Any]):
        self._value: Any = None
        self._error: BaseException | None = None

        def work() -> None:
            try:
                self._value = function()
            except BaseException as error:  # noqa: BLE001 - re-raised by result()
                self._error = error

        self._thread = threading.Thread(target=work, name="ecorules-fingerprint", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Accumulator:
    """Sums over the whole run, kept in memory (a few hundred bytes per district)."""

    def __init__(self) -> None:
        self.rows_in = self.rows_scored = self.rows_rejected = 0
        self.total_fen = 0  # totals in fen while summed, exact whatever the units of the parts
        self.in_fen = False  # some finding of the run is in fen: its total is shown in fen
        self.findings = 0
        self.districts: dict[str, list[int]] = {}  # district -> [deduction_fen, cases]
        self.fen_districts: set[str] = set()  # districts some finding in fen is booked to
        self.lists: Counter[str] = Counter()
        self.reasons: Counter[tuple[str | None, str]] = Counter()
        self.examples: dict[tuple[str | None, str], str] = {}  # (column, reason class) -> its first reason
        self.warnings: dict[str, None] = {}
        self.seconds: dict[str, float] = dict.fromkeys(("read (waiting)", "score", "results"), 0.0)
        self.tables: dict[str, list[int]] = {}  # with a case table: rows in, scored, rejected per table
        self.already_assessed = 0  # case findings an earlier run assessed
        self.lighter_law = 0  # cases judged by the lighter law of their decision date (从轻)
        self.lifts = 0  # lifts that fired (list entries they may end)
        self.money: dict[str, list[int]] = {}  # with kind tables: [total_fen, rewards_fen] per table
        self.fen_tables: set[str] = set()  # tables some finding in fen is of
        self.files: dict[str, list[int]] = {}  # registry file (label) -> [rows in, rows rejected]
        self.described: list[dict[str, str]] = []  # how each registry file is read (Registry.described)


def _seconds(parts: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f} s" for name, value in parts.items())


# --- the run --------------------------------------------------------------------------------


class NightlyRun:
    """One run from a registry into a results database; :meth:`execute` returns its Summary."""

    def __init__(self, registry: str | os.PathLike, out: str | os.PathLike, *,
                 policies: PolicySet | str | os.PathLike | None = None, as_of: dt.date | None = None,
                 threads: int | None = None, encoding: str | None = None, table: str | None = None,
                 batch_rows: int = DEFAULT_BATCH_ROWS, aliases: Mapping[str, Iterable[str]] | None = None,
                 force: bool = False, progress: bool | None = None,
                 compile_program: Callable[..., Any] | None = None, cases: str | os.PathLike | None = None,
                 cases_table: str | None = None, reassess: bool | Iterable[str] = False,
                 tables: Mapping[str, str | os.PathLike] | None = None, sheet: str | None = None,
                 recurse: bool = True, duplicates: str = "reject", allow_unset_parameters: bool = False,
                 tune_allocator: bool = False):
        self.registry_path, self.out = as_location(registry), (out.strip() if store.is_url(out) else Path(out))
        self.as_of = as_of or dt.date.today()
        self.threads = threads or os.cpu_count() or 1
        # Reading and writing run in threads of their own (mostly outside the GIL): the kernel
        # gets the other cores. On 2 cores a 2-thread kernel made whole runs ~20% slower.
        self.kernel_threads = max(1, self.threads - 1)
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise NightlyError(f"unknown encoding {encoding!r} (e.g. utf-8, gb18030, gbk)") from None
        self.encoding, self.table, self.batch_rows = encoding, table, batch_rows
        self.aliases, self.force, self.progress_enabled = aliases, force, progress
        self._unset_rollups: list[str] = []  # roll-ups over records this run is not given
        self.sheet, self.recurse = sheet, recurse  # an Excel registry's sheet; a folder's subfolders
        if duplicates not in DUPLICATE_POLICIES:
            raise NightlyError(f"--duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
        self.duplicates = duplicates  # what a key on several rows means (engine/_duplicates.py)
        # glibc's allocator is the process's, not ours: only the CLI, which owns its process,
        # lets the case stage change it (engine/cases/_memory.py); a host system's stays as is
        self.tune_allocator = tune_allocator
        if isinstance(policies, PolicySet):
            self.policies = policies
        else:
            self.policies = load_policies(policies)
        all_policies = self.policies
        self.policies = self.policies.for_domain(DOMAIN)
        if not len(self.policies):
            raise NightlyError(f"no policy of domain {DOMAIN!r} is loaded")
        subjects = {p.subject for p in self.policies}
        if len(subjects) != 1:
            raise NightlyError(f"the {DOMAIN} policies name different subjects: {', '.join(sorted(subjects))}")
        self.subject = subjects.pop()  # the fact that identifies an enterprise (uscc)
        if compile_program is None:
            from ecorules.fastcalc import compile_program
        self.compile_program = compile_program
        self.cases = None
        # 一例一次: assess again what earlier runs assessed (True: every case; or these case ids)
        self.reassess = reassess if reassess is True else frozenset(reassess or ())
        if self.reassess and cases is None:
            raise NightlyError("reassess applies to a case table's cases: give the case table too")
        if cases is not None:
            # a case table: judged by the policies of the case kind, rolled up onto the
            # enterprises before they are scored (engine/cases/)
            from .cases import CasePlanError, make_plan

            try:
                plan = make_plan(all_policies, DOMAIN, self.as_of, compile_program)
            except CasePlanError as error:
                raise NightlyError(str(error)) from error
            self.cases = self._new_case_stage(plan, cases, encoding=encoding, table=cases_table, batch_rows=batch_rows,
                                              aliases=aliases, recurse=recurse)
            self.case_policies = plan.case_policies
        # tables of the other kinds (river sections, districts, requests ...), each judged by
        # its kind's policies through the registry's batch path (see engine/_kind_tables.py)
        try:
            self.kind_tables = plan_kind_tables(all_policies, tables or {}, DOMAIN)
        except KindTableError as error:
            raise NightlyError(str(error)) from error
        # the list entries of a kind whose table this run was not given stay as they are
        self.left_alone = unjudged_policies(all_policies, DOMAIN, self.kind_tables)
        if not allow_unset_parameters:  # as ``ecorules run`` (engine/_kind_tables.py)
            refuse_unset_parameters(all_policies, run_domains(all_policies, DOMAIN, tables or {}, cases is not None),
                                    self.as_of, "allow_unset_parameters=True")

    # the steps, each small enough to read on its own

    def _program(self):
        self.scoring = self._scoring(self.policies, DOMAIN, self.subject)
        first, first_sanction = len(self.scoring.slots), len(self.scoring.sanction_slots)
        self.kind_scorings = []
        for table in self.kind_tables:
            scoring = self._scoring(table.policies, table.kind, table.subject, first, first_sanction)
            first += len(scoring.slots)
            first_sanction += len(scoring.sanction_slots)
            self.kind_scorings.append(scoring)
        self.next_slot, self.next_sanction_slot = first, first_sanction  # the case table's come last
        return self.scoring.program

    def _scoring(self, policies: PolicySet, kind: str, subject: str, first_slot: int = 0,
                 first_sanction_slot: int = 0) -> Scoring:
        return make_scoring(policies, kind, subject, self.compile_program, domain=DOMAIN,
                            first_slot=first_slot, first_sanction_slot=first_sanction_slot)

    def _new_case_stage(self, plan, cases, **options):
        """The stage of the case table ``cases`` (a cluster's run may read it from elsewhere:
        engine/distributed/_run.py)."""
        from .cases import CaseStage

        return CaseStage(plan, as_location(cases), as_of=self.as_of, threads=self.kernel_threads, **options)

    def _registry(self, program) -> Registry:
        needed_by = self.policies.required_facts()
        needed = {column: needed_by.get(column, []) for column in program.columns}
        if self.cases is not None:  # computed from the case table, not read from the registry
            needed = {column: by for column, by in needed.items() if column not in self.cases.plan.onto_parent}
        else:  # roll-ups over records the run is not given: unset where declared optional
            self._unset_rollups = unset_rollups(self.policies.facts, needed)
            needed = {column: by for column, by in needed.items() if column not in self._unset_rollups}
        resolver = ColumnResolver(self.policies.facts, needed, self.aliases)
        return Registry(self.registry_path, resolver, encoding=self.encoding, table=self.table,
                        batch_rows=self.batch_rows, sheet=self.sheet, recurse=self.recurse)

    def _kind_reader(self, table, scoring: Scoring) -> Registry:
        """A table of another kind, read as the registry is (same formats, headers by label),
        with the columns of its key, which its rows are unique by, whether read by a policy or not."""
        needed_by = scoring.policies.required_facts()
        needed = {column: needed_by.get(column, []) for column in scoring.program.columns}
        key = unique_key(scoring.policies, scoring.kind)
        for name in key.names if key is not None else ():
            needed.setdefault(name, [f"the key of the {scoring.kind} records"])
        resolver = ColumnResolver(scoring.policies.facts, needed, self.aliases)
        return Registry(table.path, resolver, encoding=self.encoding, batch_rows=self.batch_rows, recurse=self.recurse)

    def _all_policies(self) -> PolicySet:
        """The policies the run applies: the enterprise's, the other kinds' whose tables are
        given, and the cases' with a case table."""
        kinds = [p for table in self.kind_tables for p in table.policies]
        cases = () if self.cases is None or self.case_policies is None else tuple(self.case_policies)
        if not kinds and not cases:
            return self.policies
        return PolicySet((*self.policies, *kinds, *cases))

    def _policy_rows(self) -> list[dict[str, Any]]:
        return [
            {"id": p.id, "version": p.version, "content_hash": p.content_hash, "in_force": p.in_force(self.as_of)}
            for p in sorted(self._all_policies(), key=lambda p: p.key)
        ]

    def _fingerprints(self, registry: Registry) -> tuple[str, Callable[[], str]]:
        """The input's stat fingerprint, and a function hashing its content: of the registry,
        the case table and the tables of other kinds together (another table of any of them
        is another run), and of the reading options that change what is read from the same
        bytes (a rerun with another --encoding, --sheet, --duplicates or --no-recurse is
        another run, not the earlier one reused)."""
        others = [(f"{table.kind} ", reader) for table, reader in zip(self.kind_tables, self.kind_readers, strict=True)]
        if self.cases is not None:
            others.append(("cases ", self.cases))
        reading = "\nreading " + json.dumps({"encoding": self.encoding, "sheet": self.sheet,
                                             "duplicates": self.duplicates, "recurse": self.recurse}, sort_keys=True)

        def every() -> str:
            text = registry.fingerprint() + "".join(f"\n{label}{source.fingerprint()}" for label, source in others)
            return hashlib.sha256((text + reading).encode()).hexdigest()

        stat = registry.stat_fingerprint() + "".join(f"\n{label}{source.stat_fingerprint()}" for label, source in others)
        return hashlib.sha256((stat + reading).encode()).hexdigest(), every

    def execute(self) -> Summary:
        started = time.monotonic()
        connection = store.connect(self.out)  # first: its errors say best what is wrong with --out
        try:
            with store.run_lock(self.out):
                return self._locked(connection, started)
        except BaseException:
            # a run refused before it began (a registry that is not there, a bad column)
            # leaves no empty store behind; one that began keeps its row, status failed
            store.discard_unused(connection)
            raise
        finally:
            connection.close()

    def _locked(self, connection, started: float) -> Summary:
        program = self._program()
        registry = self._registry(program)
        self.kind_readers = [self._kind_reader(t, sc) for t, sc in zip(self.kind_tables, self.kind_scorings, strict=True)]
        stale = store.abandon_stale_runs(connection)
        if stale:
            log.warning("runs %s had been interrupted; marked failed", ", ".join(map(str, stale)))
        policy_fingerprint = self._all_policies().fingerprint
        input_stat, content = self._fingerprints(registry)
        hashing = _Background(content)
        if not self.force and not self.reassess:
            # Same files (names, sizes, times), policies and date as a finished run: confirm
            # by content, then reuse it. Otherwise the content is hashed while the run goes.
            candidate = store.find_done_run(connection, policy_fingerprint, self.as_of, input_stat=input_stat)
            if candidate is None and store.find_done_run(connection, policy_fingerprint, self.as_of, any_input=True):
                # This date and these policies were scored before, from other file times: a
                # touched or copied file may hold the same content. Its hash decides before any
                # scoring (a nightly run of a new date never waits for it).
                candidate = store.find_done_run(connection, policy_fingerprint, self.as_of,
                                                input_fingerprint=hashing.result())
            if candidate is not None and hashing.result() == store.run_row(connection, candidate)["input_fingerprint"]:
                log.info("run %s already scored this input under these policies on %s", candidate, self.as_of)
                with connection:  # the files' new times: the next run finds it without hashing
                    connection.execute("UPDATE runs SET input_stat = ? WHERE id = ?", (input_stat, candidate))
                summary = load_summary(connection, candidate, store.shown(self.out))
                summary.reused = True
                summary.seconds = time.monotonic() - started
                return summary
        self._memory = None
        if self.cases is not None:  # what earlier runs assessed (engine/cases/_assessed.py)
            from .cases import load_assessments

            self._memory = load_assessments(connection, policy_fingerprint=policy_fingerprint, as_of=self.as_of,
                                            content_fingerprint=hashing.result, reassess=self.reassess)
        run_id = store.start_run(
            connection, as_of=self.as_of, source=str(self.registry_path),
            policy_fingerprint=policy_fingerprint, policies=self._policy_rows(), version=ecorules_version(),
        )
        log.info("run %s: %s -> %s, as of %s, %s thread(s)", run_id, self.registry_path, store.shown(self.out), self.as_of, self.threads)
        described = registry.described()
        for about in described:
            if "encoding" in about:
                log.info("%s: read as %s (%s)", about["source"], about["encoding"], about["encoding_why"])
        acc = _Accumulator()
        acc.described = described
        others = [*self.kind_readers, *([self.cases] if self.cases is not None else [])]
        for warning in [*registry.warnings, *(w for source in others for w in source.warnings)]:
            log.warning("%s", warning)
            acc.warnings.setdefault(warning)
        writer = None
        progress = Progress(registry.estimated_rows, enabled=self.progress_enabled)
        try:
            writer = store.RunWriter(self.out, run_id)
            self._write_slots(writer, run_id)
            for scoring, reader in zip(self.kind_scorings, self.kind_readers, strict=True):
                self._kind_table(scoring, reader, writer, run_id, acc)
            if self.cases is not None:
                self._case_stage(program, writer, run_id, acc)
            self._score_registry(registry, writer, run_id, acc, progress)
            progress.close()
            if acc.rows_in != acc.rows_scored + acc.rows_rejected:
                raise NightlyError(
                    f"rows do not add up: {acc.rows_in} in, {acc.rows_scored} scored, {acc.rows_rejected} rejected"
                )
            if acc.tables:  # the registry's rows are what the other tables leave of the run's
                others = [sum(rows[i] for rows in acc.tables.values()) for i in range(3)]
                acc.tables = {"registry": [acc.rows_in - others[0], acc.rows_scored - others[1],
                                           acc.rows_rejected - others[2]], **acc.tables}
            extra = self._summary_extra(acc)
            fingerprint = hashing.result()
            # the same content scored before (a copy, a touched file, --force): replaced
            replaced = store.find_done_run(connection, policy_fingerprint, self.as_of, input_fingerprint=fingerprint)

            def finish(db) -> None:
                for district, (fen, cases) in sorted(acc.districts.items()):
                    unit = FEN if district in acc.fen_districts else YUAN
                    db.execute(store.INSERT_DISTRICT_TOTAL, (run_id, district, yuan_json(fen, unit), cases, fen, unit))
                unit = FEN if acc.in_fen else YUAN
                # the list entries' state, from this run's sanctions and lifts (engine/_lists.py)
                moved = update_entries(db, run_id, self.as_of, cases_judged=self.cases is not None, replaced=replaced,
                                       left_alone=self.left_alone)
                summary_json = json.dumps({**extra, "list_entries": moved}, ensure_ascii=False)
                if replaced is not None:
                    store.delete_run(db, replaced)
                db.execute(
                    "UPDATE runs SET status = 'done', finished = ?, input_fingerprint = ?, input_stat = ?, "
                    "rows_in = ?, rows_scored = ?, rows_rejected = ?, total_yuan = ?, total_fen = ?, unit = ?, "
                    "summary = ? WHERE id = ?",
                    (store.now(), fingerprint, input_stat, acc.rows_in, acc.rows_scored, acc.rows_rejected,
                     yuan_json(acc.total_fen, unit), acc.total_fen, unit, summary_json, run_id),
                )

            began = time.perf_counter()
            writer.commit(finish)
            acc.seconds["commit"] = time.perf_counter() - began
            acc.seconds["write (waiting)"] = writer.waited
            log.info("run %s: %s; writer busy %s", run_id, _seconds(acc.seconds), _seconds(writer.busy))
        except BaseException as error:
            progress.close()
            if writer is not None:
                writer.rollback()
            message = f"{type(error).__name__}: {error}" if not isinstance(error, EcorulesError) else str(error)
            if isinstance(error, KeyboardInterrupt):
                message = "interrupted (Ctrl-C)"
            try:
                store.fail_run(connection, run_id, message)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                log.exception("could not mark run %s failed", run_id)
            raise
        summary = load_summary(connection, run_id, store.shown(self.out))
        summary.replaced_run = replaced
        summary.seconds = time.monotonic() - started
        summary.encodings = registry.encodings
        log.info("run %s done: %s rows in %.2f s", run_id, f"{acc.rows_in:,}", summary.seconds)
        return summary

    def _score_registry(self, registry: Registry, writer: store.RunWriter, run_id: int, acc: _Accumulator,
                        progress: Progress) -> None:
        """The registry's rows, batch by batch, into the writer and the sums (a distributed
        run scores them elsewhere: engine/distributed/_run.py)."""
        keys = self._key_filter(self.policies, DOMAIN, self.registry_path, self.scoring.program.columns,
                                registry.estimated_rows, acc, self.duplicates, self.table)
        # the key check in the reading thread too: its kernel parts release the GIL, and on
        # 2 cores the scoring thread is the one to spare; so are the rows it held, decided
        # there while the last batches are scored
        batches = prefetch(map(made_contiguous, keys.filtered(registry.batches())), depth=2)
        try:
            while True:
                began = time.perf_counter()
                batch = next(batches, None)
                acc.seconds["read (waiting)"] += time.perf_counter() - began
                if batch is None:
                    break
                self._batch(self.scoring, batch, writer, run_id, acc)
                progress.update(batch.rows_in)
        finally:
            batches.close()  # stops the reading thread now, not when a traceback goes
        self._held(self.scoring, keys, writer, run_id, acc)

    def _held(self, scoring: Scoring, keys: DuplicateFilter, writer: store.RunWriter, run_id: int,
              acc: _Accumulator) -> None:
        """Score what the duplicate filter held to the end (--duplicates reject: later rows
        whose first was in an earlier batch; sum: the enterprises of several rows); a row
        merged into another was scored with it, and is counted under its own file."""
        held, merged_away = keys.end()
        for batch in held:
            self._batch(scoring, batch, writer, run_id, acc)
        for source, rows in merged_away.items():
            acc.rows_in += rows
            acc.rows_scored += rows
            acc.files.setdefault(source, [0, 0])[0] += rows

    def _batch(self, scoring: Scoring, batch: Batch, writer: store.RunWriter, run_id: int, acc: _Accumulator) -> None:
        n = batch.table.num_rows
        if n and scoring is self.scoring and self._unset_rollups:
            batch.table = with_unset(batch.table, self._unset_rollups)
        if n and scoring is self.scoring and self.cases is not None and self._case_results.side.uncountable:
            from .cases._enterprises import drop_uncountable

            # an enterprise a roll-up cannot be counted for is a reject (engine/cases/_uncountable.py)
            drop_uncountable(self._case_results.side, batch, batch.table[self.subject])
        if n and scoring is self.scoring and self.cases is not None and self.cases.plan.onto_parent:
            from .cases import rollup_columns

            added = rollup_columns(self._case_results.side, batch.table[self.subject], self.cases.plan.onto_parent)
            for name, column in added.items():
                batch.table = batch.table.append_column(name, column)
        began = time.perf_counter()
        # the previous batch's outputs are done with (the writer got copies): reused, they
        # save the page faults of ~8 MB of fresh arrays per batch
        scored = score_batch(scoring, batch, as_of=self.as_of, threads=self.kernel_threads, reuse=True)
        acc.seconds["score"] += time.perf_counter() - began
        began = time.perf_counter()
        self._record(scoring, scored, writer, run_id, acc)
        acc.seconds["results"] += time.perf_counter() - began

    def _record(self, scoring: Scoring, scored: ScoredBatch, writer: store.RunWriter, run_id: int,
                acc: _Accumulator) -> None:
        """Add a scored batch to the run: its counts and partial totals to the sums, its
        findings, list entries, lifts and rejects to the writer's queue."""
        acc.rows_in += scored.rows_in
        acc.rows_scored += scored.rows_scored
        acc.rows_rejected += scored.rows_rejected
        per_file = acc.files.setdefault(scored.source, [0, 0])
        per_file[0] += scored.rows_in
        per_file[1] += scored.rows_rejected
        acc.reasons.update(scored.reasons)
        for key, reason in scored.examples.items():
            acc.examples.setdefault(key, reason)
        acc.total_fen += scored.total_fen
        if scoring is not self.scoring:
            money = acc.money.setdefault(scoring.kind, [0, 0])
            money[0] += scored.total_fen
            money[1] += scored.rewards_fen
        if scored.has_fen:  # a finding in fen: the totals it adds to are shown in fen
            acc.in_fen = True
            if scoring is not self.scoring:
                acc.fen_tables.add(scoring.kind)
            acc.fen_districts.update(scored.fen_payers)
        for warning in scored.warnings:
            acc.warnings.setdefault(warning)
        for district, (fen, cases) in scored.districts.items():
            total = acc.districts.setdefault(district, [0, 0])
            total[0] += fen
            total[1] += cases
        for part in scored.findings:
            slot = scoring.slots[part.slot]
            safe = (scoring.subject in scoring.safe_facts, True, slot.payer in scoring.safe_facts)
            writer.execute(store.INSERT_FINDINGS, (run_id, scoring.first_slot + part.slot,
                                                   _json_rows([part.subjects, part.amounts, part.payers], safe)))
            acc.findings += len(part.subjects)
        for part in scored.entries:
            # valid USCCs: [0-9A-Y]{18}; a kind's key as its table writes it: the JSON form that escapes it
            writer.execute(store.INSERT_SANCTIONS, (run_id, scoring.first_sanction_slot + part.slot,
                                                    entries_json(part.keys, part.start, part.end,
                                                                 escape=entries_escaped(scoring, part))))
            acc.lists[part.list_id] += len(part.keys)
        if scored.lifts:
            writer.executemany(store.INSERT_LIFTS, [(run_id, *row) for row in scored.lifts])
            acc.lifts += len(scored.lifts)
        # The rejects last, the scorer's then the reading's, in one job: the writer's queue holds
        # a few jobs, and the rejects first (thousands of rows a batch of a registry with 1% bad
        # rows) kept the scoring thread waiting for room while the writer inserted them.
        rejects = scored.kernel_rejects.sql_rows(run_id) if scored.kernel_rejects is not None else []
        rejects += [(run_id, r.source, r.row, r.column, r.value, r.reason) for r in scored.read_rejects]
        if rejects:
            writer.executemany(store.INSERT_REJECTS, rejects)

    def _write_slots(self, writer: store.RunWriter, run_id: int) -> None:
        """What each column of the kernels' outputs means, once per run: the registry's slots
        as before (no record kind: the view reads them as the enterprise's), then each kind
        table's with its kind."""
        for scoring in (self.scoring, *self.kind_scorings):
            kind = None if scoring is self.scoring else scoring.kind
            writer.executemany(store.INSERT_UNIT_FINDING_SLOT, [
                (run_id, scoring.first_slot + k, slot.policy, slot.rule, slot.kind.value, slot.citation, kind,
                 None if slot.per_yuan == 1 else unit_name(slot.per_yuan))
                for k, slot in enumerate(scoring.slots)
            ])
            rows = sanction_slot_rows(scoring.policies, scoring.sanction_slots, run_id, scoring.first_sanction_slot)
            writer.executemany(store.INSERT_KIND_SANCTION_SLOT, [(*row, kind) for row in rows])

    def _kind_table(self, scoring: Scoring, reader: Registry, writer: store.RunWriter, run_id: int,
                    acc: _Accumulator) -> None:
        """A table of another kind, batch by batch through the registry's path (:meth:`_batch`):
        its rows, findings, list entries, rejects and district totals join the run's."""
        before = (acc.rows_in, acc.rows_scored, acc.rows_rejected)
        acc.money.setdefault(scoring.kind, [0, 0])
        acc.described.extend(reader.described())  # its files among the files read
        # one record, one row, by the key its kind declares (a district and a year), under
        # the run's --duplicates as for the registry
        keys = self._key_filter(scoring.policies, scoring.kind, reader.path, scoring.program.columns,
                                reader.estimated_rows, acc, self.duplicates, kind_table=True)
        for batch in prefetch(reader.batches(), depth=2):
            self._batch(scoring, keys.apply(batch), writer, run_id, acc)
        self._held(scoring, keys, writer, run_id, acc)
        acc.tables[scoring.kind] = [acc.rows_in - before[0], acc.rows_scored - before[1], acc.rows_rejected - before[2]]

    def _key_filter(self, policies: PolicySet, kind: str, path: Path, columns, estimated_rows: int, acc: _Accumulator,
                    policy: str, table: str | None = None, kind_table: bool = False) -> DuplicateFilter:
        """One record, one row, for a kind whose catalogue declares a key (why and how:
        engine/_duplicates.py). Under ``reject`` a USCC key is checked while the rows are
        scored (engine/_seen_keys.py); otherwise a first pass over the key columns finds the
        keys written on several rows before any row is scored. The registry's key is one the
        policies read; a kind table's may hold a fact they do not (its year), read for the key alone."""
        key = unique_key(policies, kind)
        if key is None or (not kind_table and not all(name in columns for name in key.names)):
            return DuplicateFilter(None, None, policy)
        resolver = ColumnResolver(policies.facts, {name: () for name in key.names}, self.aliases)

        @functools.cache
        def keys_only() -> Registry:  # the key columns alone, opened when needed (a CSV's encoding is decided again)
            return Registry(path, resolver, encoding=self.encoding, table=table, batch_rows=self.batch_rows,
                            sheet=None if kind_table else self.sheet, recurse=self.recurse)

        def key_batches():
            return keys_only().batches()

        record = "enterprise" if kind == DOMAIN else kind.replace("_", " ")
        unchecked = tuple(name for name in key.names if name not in columns)
        if streamed(key, policy) and not unchecked:
            return DuplicateFilter(key, None, policy, policies.facts, record=record,
                                   seen=SeenUsccs(estimated_rows))
        began = time.perf_counter()
        census = take_census(key, key_batches, policy, estimated_rows)
        acc.seconds[f"keys of {kind} (first pass)"] = time.perf_counter() - began
        return DuplicateFilter(key, census, policy, policies.facts, record=record, unchecked=unchecked)

    def _case_stage(self, program, writer: store.RunWriter, run_id: int, acc: _Accumulator) -> None:
        """The case table, before the registry: its findings are written, its roll-ups kept
        for the registry's batches (see engine/cases/)."""
        from .cases import CaseWriter
        from .cases._memory import reused_memory

        in_force = [p for p in self.policies if p.in_force(self.as_of)]
        checked = [name for name in program.columns if name not in self.cases.plan.onto_parent
                   and any(name in p.required_facts for p in in_force)]
        options = {"encoding": self.encoding, "table": self.table, "batch_rows": self.batch_rows,
                   "sheet": self.sheet, "recurse": self.recurse}
        with reused_memory() if self.tune_allocator else contextlib.nullcontext():
            began = time.perf_counter()
            # written a partition at a time (engine/cases/_spill.py): memory follows a partition, not the table
            out = CaseWriter(self.cases.plan, writer, run_id, acc, first_slot=self.next_slot,
                             first_sanction_slot=self.next_sanction_slot, memory=self._memory)
            self._case_results = self.cases.run(self.registry_path, options, checked, out)
            out.finish(self._case_results)
            acc.seconds["cases"] = time.perf_counter() - began
        acc.already_assessed = self._memory.already
        acc.lighter_law = self._case_results.lighter_law
        for case_id in sorted(self.reassess - self._memory.reassess_seen) if self.reassess is not True else ():
            acc.warnings.setdefault(f"--reassess {case_id}: no assessment of this case by an earlier run to make again")

    def _summary_extra(self, acc: _Accumulator) -> dict[str, Any]:
        """The run's ``summary`` column, but the list entries (known only in the commit)."""
        reasons = [
            {"column": column, "reason": reason, "rows": count,
             **({"example": acc.examples[(column, reason)]} if (column, reason) in acc.examples else {})}
            for (column, reason), count in acc.reasons.most_common(50)
        ]
        summary = {
            "findings": acc.findings, "lists": dict(sorted(acc.lists.items())),
            "rejects_by_reason": reasons, "warnings": list(acc.warnings),
        }
        if acc.lifts:
            summary["lifts"] = acc.lifts
        summary["sources"] = [
            {**about, "rows_in": acc.files.get(about["source"], [0, 0])[0],
             "rows_rejected": acc.files.get(about["source"], [0, 0])[1]}
            for about in acc.described
        ]
        if acc.tables:  # only with a case table: a run without one stays as it was
            summary["already_assessed"] = acc.already_assessed
            summary["lighter_law"] = acc.lighter_law
            summary["tables"] = {
                name: {"rows_in": rows_in, "rows_scored": scored, "rows_rejected": rejected,
                       **({key: yuan_json(fen, FEN if name in acc.fen_tables else YUAN)
                           for key, fen in zip(("total_yuan", "rewards_yuan"), acc.money[name], strict=True)}
                          if name in acc.money else {})}
                for name, (rows_in, scored, rejected) in acc.tables.items()
            }
        return summary


def load_summary(connection, run_id: int, db: str) -> Summary:
    """The summary of a finished run, from the database alone."""
    row = store.run_row(connection, run_id)
    if row is None:
        raise NightlyError(f"no run {run_id} in {db}")
    extra = json.loads(row["summary"] or "{}")
    districts = [
        {"district": d, "deduction_yuan": in_yuan(fen, unit), "cases": c, "deduction_fen": fen, "unit": unit}
        for d, fen, unit, c in connection.execute(
            "SELECT district, deduction_fen, unit, cases FROM district_totals WHERE run_id = ? "
            "ORDER BY deduction_fen DESC, district", (run_id,))
    ]
    return Summary(
        run_id=run_id, status=row["status"], db=db, source=row["source"],
        as_of=dt.date.fromisoformat(row["as_of"]), rows_in=row["rows_in"] or 0,
        rows_scored=row["rows_scored"] or 0, rows_rejected=row["rows_rejected"] or 0,
        total_fen=row["total_fen"] or 0, unit=row["unit"] or YUAN, findings=extra.get("findings", 0),
        districts=districts,
        lists=extra.get("lists", {}), rejects_by_reason=extra.get("rejects_by_reason", []),
        warnings=extra.get("warnings", []), error=row["error"], tables=extra.get("tables", {}),
        sources=extra.get("sources", []),
        already_assessed=extra.get("already_assessed", 0), lighter_law=extra.get("lighter_law", 0),
    )


def run_nightly(registry: str | os.PathLike, out: str | os.PathLike, **options: Any) -> Summary:
    """Score ``registry`` into the results database ``out``; see :class:`NightlyRun`."""
    return NightlyRun(registry, out, **options).execute()


__all__ = [
    "EXIT_DONE", "EXIT_FAILED", "EXIT_REJECTS", "NightlyError", "NightlyRun", "SourceError",
    "Summary", "load_summary", "run_nightly",
]
