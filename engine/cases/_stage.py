"""A run's case stage: read and check the case table, join it to the registry, roll up,
score the cases with the kernel, and apply one act one fine. Everything is columns; the
only Python loops are over columns, roll-ups, finding slots, rejected rows, partitions and
parts. The table is read into partitions of about a million cases spilled to disk, every
case of an enterprise in one (``_spill.py``), and a partition at a time is loaded, checked,
linked, scored and handed to the store's writer (``_write.CaseWriter``): memory follows a
partition, not the table. Within a partition the windowed roll-ups, the kernel and one act
one fine work a part at a time (``_parts.py``). What is whole: the enterprise side (the
registry's rows of the enterprises the table names, and their roll-ups), the duplicate
case_ids and the rejects.

The stage runs before the registry is scored, because the enterprise policies read the
roll-ups: ``EnterpriseSide.rollups`` then gives each registry batch its roll-up columns.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from ecorules.fastcalc._validate_common import Validated, ValidColumn
from ecorules.rules import EcorulesError, Kind
from ecorules.rules._arrow import from_numbers

from .._sources import (
    ColumnResolver,
    Registry,
    Reject,
    fingerprint,
    stat_fingerprint,
)
from ..sources import list_registry
from ..sources._pg_url import PostgresUrl
from . import _enterprises, _spill
from ._acts import one_act_one_fine
from ._checks import checks_failed, failed_rows, reject_failed_checks
from ._enterprises import EnterpriseSide, enterprise_side, read_enterprises, side_columns
from ._law import LawResult, decision_days, law_days, reject_outside_law_dates, score_by_law
from ._parts import by_enterprise, in_rows
from ._plan import CasePlan
from ._rollups import onto_cases, onto_enterprises, window_orders
from ._spill import spill_cases
from ._table import CaseTable, check_values, link, read_cases, reject_refused
from ._uncountable import Unknown, uncountable_enterprises


class CaseStageError(EcorulesError):
    """The kernel disagreed with the case checks (a bug, never a silent drop)."""


@dataclass
class CaseResults:
    """What the stage found, for the store: the scored rows and the kernel's outputs."""

    cases: CaseTable
    side: EnterpriseSide
    scored: np.ndarray  # int64 case rows scored (the valid ones)
    # the case program's ScoreResult over ``scored`` (a LawResult when the kind has ``dates:``);
    # None: no case policy
    result: object | None = None
    # fine slot -> per fired row of that slot (in row order): "policy rule (case_id)" of the
    # fine that supersedes it, null where the fine is imposed
    superseded_by: dict[int, pa.Array] = field(default_factory=dict)
    # (audit9, store version 13) the windowed roll-ups per case row, and what the store keeps
    # of each case finding's trace (_factors.CaseFactors; None: nothing to keep)
    windowed: dict[str, np.ndarray] = field(default_factory=dict)
    factors: object | None = None

    @property
    def lighter_law(self) -> int:
        """Cases judged, for some statute, by the lighter law of the decision date (从轻)."""
        lighter = getattr(self.result, "lighter", None)
        return 0 if lighter is None else int(lighter.sum())

    @property
    def rows_in(self) -> int:
        return self.cases.rows_in

    @property
    def rows_scored(self) -> int:
        return int(self.scored.size)

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.rows_scored

    @property
    def rejects(self) -> list[Reject]:
        return [*self.cases.read_rejects, *self.cases.rejects]

    def per_file(self) -> dict[str, list[int]]:
        """Each file of the case table -> [rows in, rows rejected], for the files read."""
        cases = self.cases
        rejected = np.ones(cases.n, bool)
        rejected[self.scored] = False
        counts = {source: [0, 0] for source in cases.sources}
        for index, source in enumerate(cases.sources):
            mine = cases.source == index
            counts[source] = [int(mine.sum()), int((mine & rejected).sum())]
        return counted_unreadable(counts, cases.read_rejects)


def counted_unreadable(counts: dict[str, list[int]], read_rejects: list[Reject]) -> dict[str, list[int]]:
    """``counts`` (file -> [rows in, rows rejected]) with the lines the reader could not read:
    each a row in and a row rejected."""
    for reject in read_rejects:
        count = counts.setdefault(reject.source, [0, 0])
        count[0] += 1
        count[1] += 1
    return counts


@dataclass
class CaseRun:
    """What a run's case stage found over all partitions, for the run's summary and the
    registry's batches (the enterprise side with every enterprise's roll-ups)."""

    sources: list[str]
    read_rejects: list[Reject]  # rows that could not be read
    described: list[dict[str, str]]
    warnings: list[str]
    rows_in: int = 0  # readable rows + rows the reader rejected
    rows_scored: int = 0
    lighter_law: int = 0
    side: EnterpriseSide | None = None
    stage_rejects: list[Reject] = field(default_factory=list)  # problems of readable rows
    files: dict[str, list[int]] = field(default_factory=dict)  # source -> [rows in, rejected], readable rows

    @classmethod
    def whole(cls, results: CaseResults) -> CaseRun:
        """A run of one partition, the whole table (``results`` of ``CaseStage.read``)."""
        cases = results.cases
        run = cls(cases.sources, list(cases.read_rejects), cases.described, cases.warnings, rows_in=cases.rows_in,
                  side=results.side)
        cases.read_rejects = []  # counted by the run's per_file, not the partition's
        try:
            run.add(results)
        finally:
            cases.read_rejects = run.read_rejects
        return run

    def add(self, results: CaseResults) -> None:
        self.rows_scored += results.rows_scored
        self.lighter_law += results.lighter_law
        self.stage_rejects.extend(results.cases.rejects)
        for source, (rows_in, rejected) in results.per_file().items():
            count = self.files.setdefault(source, [0, 0])
            count[0] += rows_in
            count[1] += rejected

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.rows_scored

    @property
    def rejects(self) -> list[Reject]:
        """The reader's rejects, then the stage's in the table's row order (a row's own in
        the order they were found): the same whichever partitions the rows were in."""
        index = {source: i for i, source in enumerate(self.sources)}
        found = sorted(self.stage_rejects, key=lambda r: (index.get(r.source, len(index)), r.row))
        return [*self.read_rejects, *found]

    def per_file(self) -> dict[str, list[int]]:
        """Each file of the case table -> [rows in, rows rejected], for the files read."""
        counts = {source: list(count) for source, count in self.files.items()}
        for source in self.sources:
            counts.setdefault(source, [0, 0])
        return counted_unreadable(counts, self.read_rejects)


@dataclass
class ScoredParts:
    """The kernel's outputs of rows scored a part at a time, put together: what the store
    writer, the law's choice (_law.py) and one act one fine read of a ``ScoreResult``."""

    as_of: dt.date
    fired: np.ndarray  # uint8 (rules, rows)
    amounts: np.ndarray  # int64 (findings, rows)
    sanctions: np.ndarray  # uint8 (sanctions, rows)
    dates: np.ndarray | None  # int64 (n_dates, rows): list entries' from:/until:, lifts' from:
    warnings: tuple[str, ...] = ()
    valid: np.ndarray | None = None  # bool per row: accepted (no check failed)

    @classmethod
    def empty(cls, n: int, first) -> ScoredParts:
        dates = None if first.dates is None else np.zeros((first.dates.shape[0], n), np.int64)
        return cls(first.as_of, np.zeros((first.fired.shape[0], n), np.uint8),
                   np.zeros((first.amounts.shape[0], n), np.int64), np.zeros((first.sanctions.shape[0], n), np.uint8),
                   dates, valid=np.zeros(n, bool))

    def put(self, piece: slice, result) -> None:
        self.valid[piece] = result.valid
        self.fired[:, piece] = result.fired
        self.amounts[:, piece] = result.amounts
        self.sanctions[:, piece] = result.sanctions
        if self.dates is not None:
            self.dates[:, piece] = result.dates
        self.warnings = tuple(dict.fromkeys((*self.warnings, *result.warnings)))


class CaseStage:
    def __init__(self, plan: CasePlan, path, *, as_of: dt.date, threads: int = 1, encoding: str | None = None,
                 table: str | None = None, batch_rows: int, aliases: Mapping[str, Iterable[str]] | None = None,
                 recurse: bool = True):
        self.plan, self.path, self.as_of, self.threads = plan, path, as_of, threads
        self.encoding, self.table, self.batch_rows, self.aliases = encoding, table, batch_rows, aliases
        self.recurse = recurse  # --no-recurse: a case folder's subfolders are not read either
        self.files, self.warnings = self._listed()
        self._failed_checks: list = []  # (case rows, columns, values, reasons) of failed checks
        # where a cluster reads the registry (engine/distributed/_run.py): a function of
        # (registry, options, link fact, wanted usccs, columns) giving the kept rows of the
        # registry's pieces in its order (_enterprises.kept_rows), read on the workers
        self.enterprise_rows = None
        # (``run``) the run's roll-ups onto the enterprises, each partition writing its own
        # enterprises' (None: a partition's are made apart, as a cluster's parts are)
        self._rollups: dict[str, np.ndarray] | None = None

    def _listed(self) -> tuple[list, list[str]]:
        """The case table's files, and what the run's summary must say of the listing (as for
        the registry: a subfolder or a file left unread). A cluster's table of its own
        catalogue has none (engine/distributed/_case_table.py)."""
        if isinstance(self.path, PostgresUrl):  # a table or query: no files
            return [], []
        listing = list_registry(self.path, self.table, recurse=self.recurse)
        return list(listing.files), [f"{s.path}: not read, {s.why}" for s in listing.skipped if s.warn]

    def read(self) -> CaseTable:
        """The case table's needed columns, whole (a cluster may read it otherwise; ``run``
        reads it in partitions)."""
        return read_cases(self.path, self.plan, encoding=self.encoding, table=self.table,
                          batch_rows=self.batch_rows, aliases=self.aliases, recurse=self.recurse)

    def _database(self):
        """The case table's reader, for the fingerprints of a PostgreSQL table or query."""
        needed = self.plan.needed()
        resolver = ColumnResolver(self.plan.facts, needed, self.aliases, optional=self.plan.optional_columns)
        return Registry(self.path, resolver, batch_rows=self.batch_rows)

    def fingerprint(self) -> str:
        if isinstance(self.path, PostgresUrl):
            return self._database().fingerprint()
        return fingerprint(self.files, self.path)

    def stat_fingerprint(self) -> str:
        if isinstance(self.path, PostgresUrl):
            return self._database().stat_fingerprint()
        return stat_fingerprint(self.files, self.path)

    def run(self, registry_path, registry_options: Mapping, enterprise_checked: Iterable[str], sink=None) -> CaseRun:
        """The case table a partition at a time (_spill.py): each partition's results handed
        to ``sink.partition`` (the store's writer, _write.CaseWriter) before the next is
        loaded; ``sink.begin`` is given the run once the table is read."""
        plan = self.plan
        # the registry's first pass: only the enterprises the case table names
        checked = tuple(dict.fromkeys(n for n in (*enterprise_checked, *plan.enterprise_columns) if n != plan.link))
        self._buckets = self._spilled = None  # the spill and its bucket count (_tables)
        self._side = None  # the run's enterprise side, once read: the partitions loaded after link ahead
        tables = self._tables()
        try:
            wanted, run = next(tables)
            if self.enterprise_rows is not None:
                kept = self.enterprise_rows(registry_path, registry_options, plan.facts[plan.link], wanted,
                                            side_columns(plan, checked))
                side = enterprise_side(kept, plan, checked, self.as_of)
            else:
                resolver = ColumnResolver(plan.facts, {n: ["the case table's enterprises"] for n in (plan.link, *checked)},
                                          self.aliases)
                registry = Registry(registry_path, resolver, **registry_options)
                side = read_enterprises(registry, plan, wanted, checked, self.as_of)
            run.side = side
            if self._spilled is not None:
                # the next partitions are linked in the thread loading them (``_ahead``), which
                # reads the index: made here, once, not by two threads at once
                side.index  # noqa: B018
                self._side = side
            if sink is not None:
                sink.begin(run)
                if self._spilled is not None and hasattr(sink, "spilled"):
                    sink.spilled(self._spilled)  # (the memory of earlier runs into its buckets: _remembered.py)
            # an enterprise's cases are all in one partition: its roll-ups are that partition's,
            # written into the run's arrays by each partition (onto_enterprises' ``into``)
            self._rollups = {}
            for buckets, cases in tables:
                results = self._partition(cases, side)
                run.add(results)
                if sink is not None:
                    sink.partition(results, buckets)
                del results, cases
            side.rollups = self._rollups
            return run
        finally:
            tables.close()
            self._spilled = None
            self._rollups = None
            self._side = None

    def _tables(self):
        """First (the distinct enterprise keys of the table, the run), then the table's
        partitions, checked, with their buckets (None: the whole table). The files and databases the stage reads are spilled in
        partitions (_spill.py); a table read otherwise (a cluster's catalogue, ``read``
        overridden) is one partition, read whole."""
        plan = self.plan
        if type(self).read is not CaseStage.read:
            cases = self.read()
            check_values(cases, plan)
            run = CaseRun(cases.sources, list(cases.read_rejects), cases.described, cases.warnings, rows_in=cases.rows_in)
            cases.read_rejects, cases.rows_in = [], cases.n
            yield cases.usccs_of(cases.valid), run
            yield None, cases
            return
        # the registry read here is filtered by the hashes of the table's enterprise keys (a
        # key of the same hash only adds an enterprise no case names); a cluster's workers
        # are handed the keys themselves
        spilled = spill_cases(self.path, plan, encoding=self.encoding, table=self.table, batch_rows=self.batch_rows,
                              aliases=self.aliases, recurse=self.recurse, texts=self.enterprise_rows is not None)
        self._buckets, self._spilled = spilled.buckets, spilled
        try:
            duplicates = spilled.duplicates(plan.kind.key)
            partitions = spilled.partitions(_spill.PARTITION_ROWS)

            def checked(buckets: list[int], side: EnterpriseSide | None) -> CaseTable:
                cases = spilled.load(buckets)
                check_values(cases, plan, duplicates)
                if side is not None:
                    self._ahead(cases, side)
                return cases

            # the next partition loaded and checked in a thread of its own while this one is
            # judged (one partition more in memory): on 2 cores the judging thread had the
            # run's critical path to itself, the other core idle but for the store's writer
            with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ecorules-case-partition") as pool:
                ahead = pool.submit(checked, partitions[0], None)  # (the enterprises not read yet)
                try:
                    yield spilled.wanted if spilled.wanted is not None else spilled.wanted_hashes, CaseRun(
                        spilled.sources, spilled.read_rejects, spilled.described, spilled.warnings, rows_in=spilled.rows_in)
                    for k, buckets in enumerate(partitions):
                        cases = ahead.result()
                        ahead = pool.submit(checked, partitions[k + 1], self._side) if k + 1 < len(partitions) else None
                        yield buckets, cases
                finally:
                    if ahead is not None:
                        ahead.cancel()  # (one already loading is waited for: the files are removed after)
        finally:
            spilled.close()

    def _partition(self, cases: CaseTable, side: EnterpriseSide) -> CaseResults:
        """One partition's cases (every case of its enterprises), checked: linked (through the
        side's index of every enterprise, built once: a mask of the partition's own buckets'
        enterprises would narrow nothing), scored."""
        plan = self.plan
        side.rollups = {}
        if cases.enterprise is None:
            link(cases, plan, side.usccs, side.rejected, index=side.index)
        else:  # linked ahead (``_ahead``): the enterprises rejected since (none of this partition's, as a rule)
            reject_refused(cases, plan, side.rejected)
        linked_rejects = len(cases.rejects)
        if plan.kind.law_date is not None:
            reject_outside_law_dates(plan.kind, cases)
        self._reject_uncountable(cases, side, linked_rejects)
        results = self._scored(cases, side)
        if self._failed_checks:
            # cases failing a check (rules/_checks.py) are rejects, and count in no roll-up:
            # the stage runs again without them. A check reads no roll-up, so the cases
            # that passed still pass, and once is enough.
            reject_failed_checks(cases, self._failed_checks)
            self._failed_checks = []
            results = self._scored(cases, side)
            if self._failed_checks:
                raise CaseStageError("a case passed the policies' checks once and failed them on the second pass")
        return self._judge_enterprises(cases, side, results, linked_rejects)

    def _ahead(self, cases: CaseTable, side: EnterpriseSide) -> None:
        """In the thread loading a partition, while the one before is judged: the partition
        linked (``_partition`` then rejects only the cases of enterprises rejected since,
        given a copy of those rejected so far), and its windows' orders made for the rows
        then valid (``_scored`` uses them where no row was rejected since: nearly always).
        Neither reads the kernel's outputs, the roll-ups or anything another partition
        writes; on two cores the judging thread had the run's critical path to itself."""
        plan = self.plan
        link(cases, plan, side.usccs, dict(side.rejected), index=side.index)
        if plan.onto_cases:
            valid = cases.valid.copy()
            scored = np.flatnonzero(valid).astype(np.int64)
            parts, count = by_enterprise(cases.enterprise[scored])
            cases.ahead = (valid, window_orders(plan.onto_cases, cases, [scored[p] for p in parts], count))

    def _judge_enterprises(self, cases: CaseTable, side: EnterpriseSide, results: CaseResults,
                           linked_rejects: int) -> CaseResults:
        """An enterprise its own policies reject once its cases' roll-ups are known (a working
        day outside the holiday table, a check: ``plan.parent_program``) is a reject of the
        registry, and the library refuses its whole group: its cases are rejects saying so
        (_enterprises.refuse_groups), and the partition is scored again without them (an
        enterprise's roll-ups count its own cases only). Its roll-ups stay those it was judged
        with, so that the registry's kernel rejects its row for the same reason."""
        program = self.plan.parent_program
        if program is None or not side.n:
            return results
        found = _enterprises.judged_enterprises(program, self.plan, side, cases.enterprise, self.as_of, self.threads)
        if not found:
            return results
        refused = np.fromiter(found, np.int64, len(found))
        judged_with = {name: values[refused].copy() for name, values in side.rollups.items()}
        _enterprises.refuse_groups(cases, self.plan.link, side, found, linked_rejects)
        results = self._scored(cases, side)
        if self._failed_checks:
            raise CaseStageError("a case passed the policies' checks and failed them once an enterprise was rejected")
        for name, values in judged_with.items():
            side.rollups[name][refused] = values
        return results

    def _scored(self, cases: CaseTable, side: EnterpriseSide) -> CaseResults:
        """Roll-ups over the valid cases, then the case policies on each (rows failing a
        check are collected in ``_failed_checks``), then one act one fine."""
        plan = self.plan
        where = self._where(cases, side)
        side.rollups = onto_enterprises(plan.onto_parent, cases, side.n, where, self.as_of, self._rollups)
        if self._rollups is not None:
            self._rollups.update(side.rollups)
        results = CaseResults(cases, side, np.flatnonzero(cases.valid).astype(np.int64))
        # what looks across cases looks within an enterprise: done a part at a time (_parts.py)
        parts, count = by_enterprise(cases.enterprise[results.scored])
        # the windows' orders made ahead (``_ahead``) hold for the same valid rows: the same parts
        ahead, cases.ahead = cases.ahead, None
        ordered = ahead[1] if ahead is not None and np.array_equal(ahead[0], cases.valid) else None
        windowed = onto_cases(plan.onto_cases, cases, where, [results.scored[p] for p in parts], count, ordered)
        results.windowed = windowed
        results.factors = self._case_factors()  # (audit9: the roll-ups and levels kept per finding)
        if plan.case_program is not None and plan.timeline is not None:
            results.result = self._score_by_law(cases, side, results.scored, windowed)
            results.superseded_by = self._one_act_one_fine(results, parts, count)
        elif plan.case_program is not None:
            results.result = self._score_rows(plan.case_program, cases, side, results.scored, windowed)
            results.superseded_by = self._one_act_one_fine(results, parts, count)
        elif plan.check_program is not None:  # no case policy: the kind's checks alone
            self._score_rows(plan.check_program, cases, side, results.scored, windowed)
        return results

    def _case_factors(self):
        """(audit9) What the store keeps of each case finding's trace (_factors.py), planned
        once per stage."""
        from ._factors import CaseFactors, factor_plan

        if not hasattr(self, "_factor_plan"):
            from ecorules.fastcalc import compile_program

            self._factor_plan = factor_plan(self.plan, compile_program)
        return None if self._factor_plan is None else CaseFactors(self._factor_plan, self)

    # -- steps ---------------------------------------------------------------------------------
    def _joined(self, program, cases: CaseTable, side: EnterpriseSide, rows: np.ndarray,
                windowed: Mapping[str, np.ndarray]) -> dict[str, object]:
        """The columns ``program`` reads, for the case rows ``rows``: the case's own, its
        enterprise's (gathered by index) and the roll-ups."""
        every = rows.size == cases.n  # no row rejected (the rows are ascending): no copies of the case's own columns
        # a part of consecutive rows (every row of it valid, _score_rows): views, no copies either
        span = slice(int(rows[0]), int(rows[-1]) + 1) if rows.size and int(rows[-1]) - int(rows[0]) + 1 == rows.size else None
        own = None if every else span if span is not None else rows  # how the case's own columns are picked
        take = from_numbers(rows)
        owners = cases.enterprise[rows]
        read = set(program.compiled.kernel_facts)
        facts = program.compiled.facts
        columns: dict[str, object] = {}
        for name in program.columns:
            # a column the case checks (check_values, read_enterprises) validated for the
            # same declaration is handed over validated: no value is checked twice
            same = facts[name] is self.plan.facts.get(name) or facts[name] == self.plan.facts.get(name)
            if name in windowed:
                columns[name] = windowed[name] if own is None else windowed[name][own]
            elif name in side.rollups:
                columns[name] = side.rollups[name][owners]
            elif same and name in cases.columns:
                whole = Validated(facts[name], cases.columns[name], cases.n)
                columns[name] = (whole if every else whole.rows(span.start, span.stop) if span is not None else
                                 Validated.taken(facts[name], cases.columns[name], rows))
            elif same and name in side.columns:
                columns[name] = Validated.taken(facts[name], side.columns[name], owners)
            elif same and name not in read and name in cases.table.column_names:
                columns[name] = Validated(facts[name], ValidColumn(None), int(rows.size))  # checked, not read
            elif name == self.plan.link:
                columns[name] = _rows_of(cases.uscc, every, span, take)
            elif name in cases.columns:
                columns[name] = _checked(self.plan.facts[name], cases.columns[name], own)
            elif name in cases.table.column_names:
                columns[name] = _rows_of(cases.table[name], every, span, take)
            else:
                columns[name] = side.table[name].take(from_numbers(owners))
        return columns

    def _score_by_law(self, cases: CaseTable, side: EnterpriseSide, scored: np.ndarray,
                      windowed: Mapping[str, np.ndarray]) -> LawResult:
        """行政处罚法 art 37: each case by the law in force on its law date, or the lighter law
        of its decision date, statute by statute (_law.py)."""
        plan, program = self.plan, self.plan.case_program
        law = law_days(plan.kind.law_date, cases.columns, scored)
        decided = decision_days(cases.columns.get(plan.decision) if plan.decision else None, scored, self.as_of)

        def score(positions: np.ndarray, day: dt.date, without: frozenset[str] = frozenset()):
            return self._score_rows(program, cases, side, scored[positions], windowed, law_date=day, without=without)

        def score_together(positions: np.ndarray, days: tuple):
            # (its rejects are not judged: score_by_law scores those rows again, a law at a time)
            return self._score_rows(program, cases, side, scored[positions], windowed, law_date=days, judged=False)

        return score_by_law(program, plan.timeline, law, decided, score, score_together)

    def _score_rows(self, program, cases: CaseTable, side: EnterpriseSide, rows: np.ndarray,
                    windowed: Mapping[str, np.ndarray], law_date: dt.date | tuple | None = None, judged: bool = True,
                    without: frozenset[str] = frozenset()):
        """The case rows ``rows`` scored by ``program`` a part of rows at a time (rows are
        scored independently; a part's input columns stay small, _parts.py), the parts'
        outputs put together in the order of ``rows``. ``judged`` False: the kernel's
        rejects are left to the caller (``_score``). ``without``: versions taken as not in
        force (``Program.score``)."""
        pieces = in_rows(rows.size)
        if len(pieces) == 1:
            return self._score(program, self._joined(program, cases, side, rows, windowed), law_date=law_date, rows=rows,
                               judged=judged, without=without)
        merged = None
        for piece in pieces:
            part = rows[piece]
            result = self._score(program, self._joined(program, cases, side, part, windowed), law_date=law_date,
                                 rows=part, judged=judged, without=without)
            if merged is None:
                merged = ScoredParts.empty(rows.size, result)
            merged.put(piece, result)
        return merged

    def _score(self, program, table, law_date: dt.date | tuple | None = None, rows: np.ndarray | None = None,
               judged: bool = True, without: frozenset[str] = frozenset()):
        """Score ``table`` (the case rows ``rows``); the kernel may reject rows only by the
        policies' checks, which are collected, never by validation the case checks passed.
        ``judged`` False: its rejects are neither (scored under several laws at once, a row
        may fail a check of a version that is not its own: the caller scores it again)."""
        result = program.score(table, as_of=self.as_of, threads=self.threads, law_date=law_date, without=without)
        if not judged:
            return result
        failed = checks_failed(result)
        if failed is not None and rows is not None:
            self._failed_checks.append(failed_rows(result, rows))
            unexpected = np.flatnonzero(~result.valid & ~failed)
        else:
            unexpected = np.flatnonzero(~result.valid)
        if unexpected.size:
            raise CaseStageError(
                f"the kernel rejected {len(result.reject_rows)} case rows the case checks accepted, e.g. "
                f"{result.reject_columns[0]}: {result.reject_reasons[0]}"
            )
        return result

    def _where(self, cases: CaseTable, side: EnterpriseSide, unknown: Unknown | None = None) -> dict[str, np.ndarray]:
        """Each roll-up's where, per case row: the fired rows of the where programs. A row
        whose where counts working days outside the holiday table is in no count; it is
        noted in ``unknown`` (see _uncountable.py), its enterprise rejected before scoring."""
        programs = self.plan.where_program
        if programs is None:
            return {}
        valid = cases.valid.astype(bool, copy=False)
        rows = np.flatnonzero(valid).astype(np.int64)
        where = {}
        # noting the unknown rows, only the programs of the wheres counting working days
        scored = programs.programs if unknown is None else programs.programs[len(programs.programs) - programs.counting:]
        for program in scored:
            result = program.score(self._joined(program, cases, side, rows, {}), as_of=self.as_of, threads=self.threads)
            names = [name for _policy, name in program.rules]
            if result.reject_rows.size:
                if checks_failed(result) is None or len(names) != 1:
                    raise CaseStageError(f"the where of roll-up {names[0]} rejected case rows the case checks accepted: "
                                         f"{result.reject_columns[0]}: {result.reject_reasons[0]}")
                if unknown is not None:
                    failing = unknown.rows.setdefault(names[0], {})
                    for at, value, reason in zip(result.reject_rows.tolist(), result.reject_values.tolist(),
                                                 result.reject_reasons.tolist(), strict=True):
                        # the reason as the reference words it: the call's origin is the roll-up
                        failing.setdefault(int(rows[at]), (value, f"{reason.rpartition(' (')[0]} (roll-up {names[0]})"))
            for r, name in enumerate(names):
                if rows.size == cases.n:  # every row valid: the kernel's flags are the rows' own
                    where[name] = np.array(result.fired[r], bool)
                    continue
                flags = np.zeros(cases.n, bool)
                flags[valid] = np.asarray(result.fired[r], bool)  # (a mask's put: in order, not at random)
                where[name] = flags
        return where

    def _reject_uncountable(self, cases: CaseTable, side: EnterpriseSide, since: int) -> None:
        """An enterprise a roll-up cannot be counted for (_uncountable.py) is rejected, in the
        registry (``side.uncountable``) and with every case of it: a case rejected since the
        link (``cases.rejects[since:]``: its law date outside the holiday table) too, its own
        reject given way, as the library refuses the whole group with the roll-up's reason
        before it judges any case (engine/_group.judge_group)."""
        if self.plan.where_program is None or not self.plan.where_program.counting:
            return
        unknown = Unknown({})
        self._where(cases, side, unknown)
        if not unknown.rows:
            return
        found = uncountable_enterprises(self.plan, cases, unknown, self.as_of)
        why = {}
        for enterprise, (name, value, reason) in found.items():
            side.uncountable[enterprise] = (name, value, reason)
            why[enterprise] = f"its registry {side.where(enterprise)} was rejected ({name} {value!r}: {reason})"
        if why:
            _enterprises.refuse_groups(cases, self.plan.link, side, why, since)

    def _one_act_one_fine(self, results: CaseResults, parts: list[np.ndarray], count: int) -> dict[int, pa.Array]:
        """行政处罚法 art 29 over the fired fines (_acts.py), a part of the enterprises at a time."""
        return one_act_one_fine(self.plan.case_program, results.result, results.cases, results.scored, parts, count)


def _rows_of(column, every: bool, span: slice | None, take: pa.Array):
    """The rows of an Arrow column: all of them, a slice of consecutive ones (a view), or a take."""
    if every:
        return column
    return column.slice(span.start, span.stop - span.start) if span is not None else column.take(take)


def _checked(fact, column, rows: np.ndarray | slice | None):
    """A column the case checks already validated, handed to the kernel in the form its
    validators pass fastest (dates as datetime64, numbers as int64, flags as bool; an
    optional fact's empty cells masked), instead of parsing the text a second time. ``rows``
    None: every row; a slice: those rows, as views."""
    values = column.values if rows is None else column.values[rows]
    if fact.type.kind is Kind.DECIMAL:  # already scaled: as int64 the kernel would scale it again
        present = None if column.present is None else (column.present if rows is None else column.present[rows])
        return _scaled_decimals(values, present)
    if fact.type.kind is Kind.DATE:
        values = values.astype("datetime64[D]")
    elif fact.type.kind is Kind.BOOLEAN:
        values = values.astype(bool)
    if column.present is None:
        return values
    present = column.present if rows is None else column.present[rows]
    return np.ma.masked_array(values, mask=~present.astype(bool))


def _scaled_decimals(values: np.ndarray, present: np.ndarray | None) -> pa.Array:
    """Checked decimals (int64, scaled by 10^4) as the Arrow decimal128(38, 4) they stand for,
    from buffers: 16-byte two's complement integers of the scaled value; null where absent."""
    raw = np.empty((values.size, 2), np.int64)
    raw[:, 0] = values
    raw[:, 1] = values >> 63  # the sign, extended
    validity = None if present is None else pa.py_buffer(np.packbits(present.astype(bool), bitorder="little"))
    return pa.Array.from_buffers(pa.decimal128(38, 4), values.size, [validity, pa.py_buffer(raw)])


__all__ = ["CaseResults", "CaseRun", "CaseStage", "CaseStageError"]
