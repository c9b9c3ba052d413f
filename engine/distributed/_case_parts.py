"""The case table judged a part at a time, each part holding every case of its enterprises
and their registry rows: what a cluster's task does with its partition (``_spark_cases.py``),
and how the driver writes the parts into the run's store (the local run's ``CaseWriter``, each
part a partition). No Spark here.

What looks across cases looks within one enterprise (roll-ups, windowed roll-ups, one act one
fine, the link to the registry's rows), so a part of whole enterprises is judged by the same
steps as the whole table (engine/cases/_stage.py's ``CaseStage.run``), with one exception: a
repeated case_id is decided over the whole table (the first row, which may be another
enterprise's), so the cluster decides it first and each row comes with the row it repeats
(``first_source``, ``first_row``), rejected here with the local run's words.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import EcorulesError
from ecorules.rules._arrow import from_numbers

from ..cases._enterprises import EnterpriseSide, enterprise_side, kept_rows
from ..cases._stage import CaseResults, CaseRun, CaseStage
from ..cases._table import CaseTable, _stripped, check_values, linked

SOURCE, ROW = "_source", "_row"
FIRST_SOURCE, FIRST_ROW = "_first_source", "_first_row"  # the row a repeated case_id repeats
KEY, LINK, PART = "_key", "_link", "_part"
PARTS_PER_TASK = 16  # parts hashed onto each task: whole enterprises, spread evenly enough


def part_numbers(keys: pa.Array, parts: int) -> np.ndarray:
    """A part number in 0..parts-1 per enterprise key (crc32: the same on every worker, which
    Python's salted ``hash`` is not); 0 for a missing key."""
    distinct = pc.dictionary_encode(keys)
    numbers = np.array([zlib.crc32(k.encode()) % parts if k is not None else 0
                        for k in distinct.dictionary.to_pylist()], np.int32)
    codes = np.asarray(distinct.indices.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    return numbers[codes] if numbers.size else np.zeros(len(keys), np.int32)


def keyed(table: pa.Table, key_name: str, link_fact) -> tuple[pa.Array, pa.Array]:
    """The stripped case_id (null where empty: no case_id to repeat) and the enterprise key
    as the registry's are compared (``linked``) of each case row, as ``check_values`` codes them."""
    key = _stripped(table[key_name])
    key = pc.if_else(pc.equal(pc.utf8_length(key), 0), pa.scalar(None, pa.string()), key)
    return key, linked(link_fact, table[link_fact.name])


@dataclass
class PartResult:
    """One part's judged cases (the driver writes every part's rejects in the table's order,
    as a local run does)."""

    results: CaseResults


class _PartStage(CaseStage):
    """The case stage's steps on a part handed over (no files of its own to list or read)."""

    def _listed(self):
        return [], []


def judge_part(plan, cases: CaseTable, side_rows: Iterable[tuple], first_source: pa.Array, first_row: np.ndarray,
               checked: tuple[str, ...], *, as_of: dt.date, aliases=None) -> PartResult:
    """The cases of a part (``cases``: rows in the table's order, every case of their
    enterprises) judged as ``CaseStage.run`` judges a whole table. ``side_rows``: the
    registry's rows of their enterprises, (table, source, row numbers) in the registry's order;
    ``first_source``/``first_row``: per case row, the row its case_id repeats (null: none)."""
    stage = _PartStage(plan, "", as_of=as_of, threads=1, batch_rows=1, aliases=aliases)
    check_values(cases, plan, _DecidedRepeats(cases, plan.kind.key, first_source, first_row))
    wanted = cases.usccs_of(cases.valid)
    names = list(dict.fromkeys((plan.link, *checked)))
    kept = (kept_rows(plan.facts[plan.link], table, source, rows, wanted, names) for table, source, rows in side_rows)
    side = enterprise_side((found for found in kept if found is not None), plan, checked, as_of)
    # the local run's steps for a partition, the same function: linked to any of the part's
    # enterprises (they are all its own), rejects, roll-ups, scoring, art 29
    return PartResult(stage._partition(cases, side))


@dataclass
class _DecidedRepeats:
    """The repeated case_ids of a part as the whole table decided them (Spark's window): per
    case row, the (source, row) where its case_id first appears, null where it does not
    repeat; handed to ``check_values`` as ``_spill.Duplicates`` hands a partition's, so that
    they are rejected in the same words."""

    cases: CaseTable
    key: str
    first_source: pa.Array
    first_row: np.ndarray

    def of(self, _ordinals) -> tuple[np.ndarray, list[str], list[str]]:
        repeats = np.flatnonzero(np.asarray(self.first_source.is_valid()))
        if not repeats.size:
            return repeats, [], []
        values = self.cases.keys.take(from_numbers(self.cases.key_code[repeats])).to_pylist()
        sources = self.first_source.take(from_numbers(repeats)).to_pylist()
        return repeats, values, [f"duplicate {self.key} {value!r}: first at row {int(row)} of {source}"
                                 for value, row, source in zip(values, self.first_row[repeats].tolist(), sources,
                                                               strict=True)]


class PartsError(EcorulesError):
    """The parts of a case table do not add up (a bug, never a silent drop)."""


def write_parts(parts: Iterable[PartResult], plan, writer, run_id: int, acc, *, first_slot: int,
                first_sanction_slot: int, memory, reading) -> CaseRun:
    """The parts written by the local run's writer (engine/cases/_write.py's ``CaseWriter``),
    each part as a partition of the table (every case of its enterprises): its findings,
    list entries, lifts and assessments as it comes, in the run's transaction; then the
    counts and every part's rejects in the table's order of sources and rows. A run killed
    between parts commits nothing, and its rerun writes everything once. ``reading``: what
    reading the table found (``_spark_cases.CaseFrame``), its reader's rejects read once the
    parts are (executors reading a file find them as they judge)."""
    from ..cases import CaseWriter

    run = CaseRun(list(reading.sources), [], list(reading.described), list(reading.warnings))
    out = CaseWriter(plan, writer, run_id, acc, first_slot=first_slot, first_sanction_slot=first_sanction_slot,
                     memory=memory)
    out.begin(run)
    sides = []
    for part in parts:
        results = part.results
        run.rows_in += results.rows_in
        run.add(results)
        out.partition(results)
        side = results.side  # what the registry's scoring reads of it (not its rows: the part is let go)
        sides.append(EnterpriseSide(side.usccs, side.table.slice(0, 0), rollups=side.rollups, key_fact=side.key_fact,
                                    uncountable=side.uncountable))
    run.side = merged_side(sides, plan)
    run.read_rejects = list(reading.read_rejects)
    run.rows_in += reading.unreadable_rows
    out.finish(run)
    return run


def merged_side(sides: list[EnterpriseSide], plan) -> EnterpriseSide:
    """The parts' enterprise sides as one, for the registry's scoring (its roll-ups, and the
    enterprises a roll-up cannot be counted for): an enterprise's rows are all in one part,
    valid rows first, so a key's first row among them all is its part's."""
    key_fact = plan.facts[plan.link]
    if not sides:
        return EnterpriseSide(pa.array([], pa.string()), pa.table({plan.link: pa.array([], pa.string())}),
                              key_fact=key_fact)
    offsets = np.cumsum([0, *(side.n for side in sides)])
    names = {name for side in sides for name in side.rollups}
    rollups = {name: np.concatenate([side.rollups.get(name, np.zeros(side.n, np.int64)) for side in sides])
               for name in names}
    uncountable = {int(offset) + row: why for side, offset in zip(sides, offsets, strict=False)
                   for row, why in side.uncountable.items()}
    usccs = pa.concat_arrays([side.usccs.cast(pa.string()) for side in sides])
    return EnterpriseSide(usccs, sides[0].table.slice(0, 0), rollups=rollups, key_fact=key_fact,
                          uncountable=uncountable)


def case_table(table: pa.Table, plan, headers: Mapping[str, str], sources: pa.Array, rows: np.ndarray) -> CaseTable:
    """A part's case rows (the table's order) as the case stage holds a table it read."""
    encoded = pc.dictionary_encode(sources)
    names = encoded.dictionary.to_pylist()
    columns = {}
    for fact in plan.case_columns:
        column = table[fact].combine_chunks() if fact in table.column_names else pa.nulls(table.num_rows, pa.string())
        if pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        columns[fact] = column
    return CaseTable(pa.table(columns), names, np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int32),
                     np.asarray(rows, np.int64), dict(headers), table.num_rows)


__all__ = ["PartResult", "case_table", "judge_part", "keyed", "merged_side", "part_numbers", "write_parts"]
