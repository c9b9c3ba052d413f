"""The registry's side of a case run: the enterprises the case table names, and their
roll-ups handed to each registry batch.

The first pass reads only the columns the case side and the enterprise policies check, keeps
only the rows whose uscc appears in the case table (``pc.is_in``), and validates those with
the kernel's validators: memory follows the case table, not the registry. Valid rows come
first, so that ``index_in`` maps a uscc written twice to a row that can be scored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.fastcalc._validate import validate_column
from ecorules.fastcalc._validate_common import Rejects, Validated, ValidColumn
from ecorules.rules._arrow import bools, from_numbers
from ecorules.rules._workdays import uses_calendar

from .._sources import Registry
from .._unset_rollups import with_absent
from ._checks import checks_failed
from ._plan import CasePlan
from ._table import indexed, linked, positions


@dataclass
class EnterpriseSide:
    usccs: pa.Array  # stripped, one per kept registry row, valid rows first
    table: pa.Table  # the columns the case side reads, same rows
    rejected: dict[int, str] = field(default_factory=dict)  # side row -> why its cases are rejected
    rollups: dict[str, np.ndarray] = field(default_factory=dict)  # name -> int64 per side row
    key_fact: object = None  # the enterprise key's fact (uscc), for comparing keys as written
    # the validated columns (the kernel's view; placeholders on rejected rows, whose cases are rejected)
    columns: dict[str, ValidColumn] = field(default_factory=dict)
    # side row -> (roll-up, value, reason): a roll-up that cannot be counted for it
    # (_uncountable.py), so its registry row is a reject (drop_uncountable)
    uncountable: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    # side row -> (source index, row number) in the registry, and the sources, where known
    origin: np.ndarray | None = None
    sources: list = field(default_factory=list)
    _index: object = field(default=None, repr=False, compare=False)  # of usccs, built when first asked

    @property
    def index(self):
        """``usccs`` indexed (``_table.indexed``): looked up by each partition's cases and each
        registry batch (Arrow's ``index_in`` built a table of every enterprise for each)."""
        if self._index is None:
            self._index = indexed(self.usccs)
        return self._index

    def __getstate__(self):  # sent to a cluster's workers without the index (each builds its own)
        return {**self.__dict__, "_index": None}

    def where(self, row: int) -> str:
        """Where side row ``row`` was read, as the rejects of its cases say it."""
        if self.origin is None:
            return f"row of {self.usccs[row].as_py()}"
        return f"row {int(self.origin[row, 1])} of {self.sources[int(self.origin[row, 0])]}"

    @property
    def n(self) -> int:
        return len(self.usccs)


def read_enterprises(registry: Registry, plan: CasePlan, wanted: pa.Array, checked: tuple[str, ...],
                     as_of=None) -> EnterpriseSide:
    """``wanted``: the distinct stripped usccs of the case table (or their hashes,
    ``kept_rows``); ``checked``: the columns
    validated (those the enterprise policies check, and those the case side reads)."""
    names = side_columns(plan, checked)
    kept = (kept_rows(plan.facts[plan.link], batch.table, batch.source, batch.rows, wanted, names)
            for batch in registry.batches())
    return enterprise_side((found for found in kept if found is not None), plan, checked, as_of)


def side_columns(plan: CasePlan, checked: tuple[str, ...]) -> list[str]:
    """The registry's columns the case side reads: the link (uscc), then ``checked``."""
    return list(dict.fromkeys((plan.link, *checked)))


def kept_rows(link, table: pa.Table, source: str, rows: np.ndarray, wanted: pa.Array, names: list[str]):
    """The rows of one registry batch whose enterprise the case table names: (their columns
    ``names``, the batch's source, their row numbers), or None. Where the registry is read
    by a cluster (engine/distributed/), its workers call this on their pieces. ``wanted``: the
    keys, or their hashes (sorted uint64, ``_spill.text_hashes``): a row whose key hashes
    alike is kept (its enterprise, should no case name it, has no case to link to)."""
    keys = linked(link, table[link.name])
    if isinstance(wanted, np.ndarray):
        from ._spill import text_hashes

        hashes = text_hashes(keys)
        # looked up in ascending order: each search starts near the last one's place in
        # ``wanted`` (its cache lines), 4-5x faster than in the registry's order
        order = np.argsort(hashes)
        at = np.empty(hashes.size, np.int64)
        at[order] = np.minimum(np.searchsorted(wanted, hashes[order]), max(wanted.size - 1, 0))
        keep = np.flatnonzero(wanted[at] == hashes) if wanted.size else np.zeros(0, np.int64)
    else:
        keep = np.flatnonzero(bools(pc.is_in(keys, value_set=wanted)))
    if not keep.size:
        return None
    table = with_absent(table, names)  # a column the registry may leave out (may_be_absent): empty
    return table.select(names).take(from_numbers(keep)), source, rows[keep]


def enterprise_side(kept, plan: CasePlan, checked: tuple[str, ...], as_of=None) -> EnterpriseSide:
    """The side from the kept rows of the registry's batches (:func:`kept_rows`), in the
    registry's order."""
    key = plan.link
    names = side_columns(plan, checked)
    tables, sources, origin = [], [], []  # origin: (source index, row number) per kept row
    for table, source, rows in kept:
        tables.append(table.select(names))
        if source not in sources:
            sources.append(source)
        origin.append(np.stack([np.full(len(rows), sources.index(source)), rows], axis=1))
    if tables:
        table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    else:
        table = pa.table({name: pa.array([], pa.string()) for name in names})
    n = table.num_rows
    origin = np.concatenate(origin) if origin else np.empty((0, 2), np.int64)

    def where(row: int) -> str:
        return f"row {int(origin[row, 1])} of {sources[int(origin[row, 0])]}"

    problem: dict[int, str] = {}
    columns = {}
    for name in checked:
        found = Rejects()
        # kept as the kernel reads it: the case programs take their enterprise's row of it
        columns[name] = validate_column(plan.facts[name], table[name], n, True, found)
        for rows, values, reasons in zip(found.rows, found.values, found.reasons, strict=True):
            for row, value, reason in zip(rows.tolist(), values.tolist(), reasons.tolist(), strict=True):
                problem.setdefault(row, f"its registry {where(row)} was rejected ({name} {value!r}: {reason})")
    program = plan.parent_check_program
    if program is not None and n:  # the enterprise kind's checks, on the rows whose values passed
        good = np.setdiff1d(np.arange(n), np.fromiter(problem, np.int64, len(problem)))
        result = program.score({name: table[name].take(from_numbers(good)) for name in program.columns},
                               as_of=as_of, threads=1)
        if checks_failed(result) is not None:
            for at, name, value, reason in zip(result.reject_rows.tolist(), result.reject_columns.tolist(),
                                               result.reject_values.tolist(), result.reject_reasons.tolist(), strict=True):
                row = int(good[at])
                problem.setdefault(row, f"its registry {where(row)} was rejected ({name} {value!r}: {reason})")
    bad = np.zeros(n, bool)
    bad[list(problem)] = True
    order = np.argsort(bad, kind="stable")  # valid rows first
    table = table.take(from_numbers(order))
    # the rejected rows are last (a loop over every kept row took 0.35 CPU-s at 1 M enterprises)
    rejected = {n - len(problem) + k: problem[int(row)] for k, row in enumerate(order[n - len(problem):].tolist())}
    columns = {name: Validated.taken(plan.facts[name], column, order).column for name, column in columns.items()}
    return EnterpriseSide(linked(plan.facts[key], table[key]), table, rejected, key_fact=plan.facts[key], columns=columns,
                          origin=origin[order], sources=sources)


def parent_program(policies, parent, as_of, compile_program: Callable[..., object]):
    """The enterprise policies compiled as the registry's (``policies``: every policy of the
    parent kind ``parent``), where one in force on ``as_of`` may reject an enterprise its
    values passed: a check of the policy's own, a working-day call of a rule (a day outside
    the holiday table, 行政处罚法 art 85, perhaps reached through a roll-up). None where none
    may: the kind's checks (which read no roll-up) are judged before the cases are read
    (``CasePlan.parent_check_program``), and so are the values (``enterprise_side``)."""
    in_force = [p for p in policies if p.in_force(as_of)]
    may_reject = any(p.checks or uses_calendar(p.rules) for p in in_force)
    return compile_program(policies, domain=parent.id) if may_reject else None


def judged_enterprises(program, plan: CasePlan, side: EnterpriseSide, owners: np.ndarray, as_of,
                       threads: int = 1) -> dict[int, str]:
    """Side rows that ``program`` (``parent_program``) rejects with their roll-ups
    (``side.rollups``, their cases counted) -> why their cases are rejected: the first of the
    kernel's rejects of the row, as the registry's kernel rejects it (the library refuses the
    whole group, ``Evaluator.evaluate_group``). Only the enterprises named by ``owners`` (a
    partition's cases' side rows, -1: none) and not rejected already are scored."""
    named = np.zeros(side.n, bool)
    named[owners[owners >= 0]] = True
    named[np.fromiter(side.rejected, np.int64, len(side.rejected))] = False
    rows = np.flatnonzero(named)
    if not rows.size:
        return {}
    facts = program.compiled.facts
    columns: dict[str, object] = {}
    for name in program.columns:
        if name in side.rollups:
            columns[name] = from_numbers(side.rollups[name][rows])
        elif name == plan.link:
            columns[name] = _link_codes(facts[name], side, rows, program.compiled.kernel_facts)
        elif name in side.columns and facts[name] == plan.facts.get(name):  # validated once, not again
            columns[name] = Validated.taken(facts[name], side.columns[name], rows)
        elif name in side.table.column_names:
            columns[name] = side.table[name].take(from_numbers(rows))
        else:  # read by no policy in force (not read from the registry): neither checked nor read
            columns[name] = pa.nulls(rows.size, pa.string())
    result = program.score(columns, as_of=as_of, threads=threads)
    found: dict[int, str] = {}
    for at, name, value, reason in zip(result.reject_rows.tolist(), result.reject_columns.tolist(),
                                       result.reject_values.tolist(), result.reject_reasons.tolist(), strict=True):
        row = int(rows[at])
        found.setdefault(row, f"its registry {side.where(row)} was rejected ({name} {value!r}: {reason})")
    return found


def _link_codes(fact, side: EnterpriseSide, rows: np.ndarray, read) -> object:
    """The enterprise keys of side rows ``rows`` as the kernel reads them (a working-day check
    shows the key: read, each distinct text checked by ``check_value`` in Python, 5 CPU-s for
    200,000 enterprises): coded from the keys as linked (trimmed, in ASCII: the checked form)
    where a vectorized check finds every one a valid USCC; else as written, checked anew."""
    from ecorules.rules._uscc import uscc_problems

    keys = side.usccs.take(from_numbers(rows))
    if fact.format != "uscc" or keys.null_count or uscc_problems(keys).any():
        return side.table[fact.name].take(from_numbers(rows))
    if fact.name not in read:
        return Validated(fact, ValidColumn(None), int(rows.size))  # checked, not read
    encoded = pc.dictionary_encode(keys)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int32)
    return Validated(fact, ValidColumn(codes, tuple(encoded.dictionary.to_pylist())), int(rows.size))


def refuse_groups(cases, link: str, side: EnterpriseSide, found: Mapping[int, str], since: int) -> None:
    """The cases of the enterprises ``found`` (side row -> why) rejected saying why, recorded
    in ``side.rejected``; a case the stage rejected after the link (``cases.rejects[since:]``:
    a check, its law date) too, its own reject given way: judged before its enterprise, its
    failure is the first the library meets, and the group is refused all the same."""
    side.rejected.update(found)
    mine = np.flatnonzero(np.isin(cases.enterprise, np.fromiter(found, np.int64, len(found))))
    where = {(cases.sources[cases.source[row]], int(cases.rows[row])): row for row in mine.tolist()}
    later = cases.rejects[since:]
    again = {where[(r.source, r.row)] for r in later if (r.source, r.row) in where}
    cases.rejects[since:] = [r for r in later if (r.source, r.row) not in where]
    bad = sorted(again | set(mine[cases.valid[mine]].tolist()))
    cases.reject(bad, link, cases.uscc.take(pa.array(bad, pa.int64())).to_pylist(),
                 [side.rejected[int(cases.enterprise[row])] for row in bad])


def rollup_columns(side: EnterpriseSide, uscc_column, rollups: Mapping[str, object]) -> dict[str, pa.Array]:
    """The roll-up columns of one registry batch: each row's enterprise's values, or the
    roll-up's empty value for an enterprise without cases."""
    index = positions(side.index, linked(side.key_fact, uscc_column))
    found = index >= 0
    columns = {}
    for name, rollup in rollups.items():
        values = np.full(index.size, rollup.empty, np.int64)
        if side.n:
            values[found] = side.rollups[name][index[found]]
        columns[name] = from_numbers(values)
    return columns


def drop_uncountable(side: EnterpriseSide, batch, uscc_column) -> None:
    """Take the rows of an enterprise a roll-up cannot be counted for out of a registry
    ``batch`` (engine/sources Batch), as rejects naming the roll-up, the case and its date."""
    if not side.uncountable:
        return
    from ..sources import Reject

    index = positions(side.index, linked(side.key_fact, uscc_column))
    bad = np.isin(index, np.fromiter(side.uncountable, np.int64, len(side.uncountable)))
    if not bad.any():
        return
    for at in np.flatnonzero(bad).tolist():
        name, value, reason = side.uncountable[int(index[at])]
        batch.rejects.append(Reject(batch.source, int(batch.rows[at]), name, value, reason))
    keep = np.flatnonzero(~bad)
    batch.table = batch.table.take(from_numbers(keep))
    batch.rows = batch.rows[keep]


__all__ = ["EnterpriseSide", "drop_uncountable", "enterprise_side", "judged_enterprises", "kept_rows", "parent_program",
           "read_enterprises", "refuse_groups", "rollup_columns", "side_columns"]
