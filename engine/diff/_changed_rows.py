"""The changed rows of a diff: which to keep, and how they become Python objects.

Only rows whose outcome differs are kept, and of those only the ``limit`` that matter most
(|difference| descending, then USCC), so memory is bounded by the listing, not by how many
enterprises a draft touches. Turning the kept rows into objects is the one per-row Python
work of the diff; it is arranged so that the loops visit only (row, responsible rule) pairs.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import Fact, Kind, RecordError
from ecorules.rules._records import coerce

from ._impact_types import DISTRICT, NO_DISTRICT, ChangedEnterprise, RuleChange


class Pairing(Protocol):
    """How the slots of the two programs pair up (built by ``_impact._Accumulator``)."""

    rule_keys: Sequence[tuple[str, str]]  # (policy id, rule id)
    finding_keys: Sequence[tuple[str, str, int]]  # (policy id, rule id, finding index)
    sanction_keys: Sequence[tuple[str, str, str]]  # (policy id, rule id, list id)
    lists: Sequence[str]
    list_slots: Sequence[list[int]]  # per list, its positions in sanction_keys

    def money(self, amount: int) -> int | Decimal:  # an amount of the outputs' unit, in yuan
        ...


class MostChanged:
    """The ``limit`` changed rows that matter most, kept as the batches go by.

    Order: |difference| descending, then USCC. Memory is bounded by ``limit``, not by how
    many rows change: each batch offers at most ``limit`` candidates (an Arrow top-k), and
    once twice ``limit`` rows are kept they are cut back to ``limit``.
    """

    FIELDS = ("total", "amounts", "present", "flags", "fired")  # arrays whose last axis is the row

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[tuple[pa.Table, dict[str, np.ndarray]]] = []
        self.size = 0

    def candidates(self, batch, rows: np.ndarray, difference: np.ndarray) -> np.ndarray:
        if rows.size <= self.limit or not self.limit:
            return rows[: self.limit]
        subjects = batch.column("uscc").take(pa.array(rows)) if "uscc" in batch.schema.names else pa.array(rows)
        return rows[_top(difference, subjects, self.limit)]

    def add(self, table: pa.Table | pa.RecordBatch, **arrays: np.ndarray) -> None:
        if not self.limit:
            return
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self.parts.append((table, arrays))
        self.size += table.num_rows
        if self.size >= 2 * self.limit:
            self.parts = [self._ordered(self.limit)]
            self.size = self.parts[0][0].num_rows

    def _ordered(self, limit: int) -> tuple[pa.Table, dict[str, np.ndarray]]:
        table = pa.concat_tables(_same_types([t for t, _ in self.parts])).combine_chunks()
        arrays = {name: np.concatenate([a[name] for _, a in self.parts], axis=-1) for name in self.FIELDS}
        difference = arrays["total"][1] - arrays["total"][0]
        subjects = table.column("uscc") if "uscc" in table.column_names else pa.array(np.arange(table.num_rows))
        order = _top(difference, subjects, limit)
        return table.take(pa.array(order)), {name: value[..., order] for name, value in arrays.items()}

    def result(self) -> tuple[pa.Table, dict[str, np.ndarray]] | None:
        """The kept rows in order, at most ``limit`` of them; None if none changed."""
        if not self.parts:
            return None
        return self._ordered(self.limit)


def _same_types(tables: list[pa.Table]) -> list[pa.Table]:
    """The tables with one type per column, text where the files of a folder disagree.

    A folder's CSV gives a count as text and its workbook as an integer; both were accepted,
    and the kept rows are only shown (``_typed_rows`` reads text as the rules did)."""
    names = tables[0].column_names
    differing = {name for name in names if len({t.schema.field(name).type for t in tables}) > 1}
    if not differing:
        return tables
    return [t.select(names).cast(pa.schema([pa.field(n, pa.string()) if n in differing else t.schema.field(n)
                                             for n in names])) for t in tables]


def _top(difference: np.ndarray, subjects, k: int) -> np.ndarray:
    """Positions of the first ``k`` rows by |difference| descending then subject, in order."""
    keys = pa.table({"magnitude": -np.abs(difference), "subject": subjects})
    sort_keys = [("magnitude", "ascending"), ("subject", "ascending")]
    if k < keys.num_rows:
        chosen = pc.select_k_unstable(keys, k, sort_keys=sort_keys)
        keys = keys.take(chosen)
        return chosen.to_numpy()[pc.sort_indices(keys, sort_keys=sort_keys).to_numpy()]
    return pc.sort_indices(keys, sort_keys=sort_keys).to_numpy()


_ARROW_TYPES = {Kind.INTEGER: pa.int64(), Kind.BOOLEAN: pa.bool_()}


def _typed_rows(table: pa.Table, facts: Mapping[str, Fact]) -> list[dict[str, Any]]:
    """The rows as the rules saw their values: a CSV gives text, and '3' is the integer 3.

    Columns are converted whole with Arrow where they can be (these rows were accepted, so
    integers and true/false convert); any other column, or one in words such as 是/否, goes
    value by value through the same coercion the single-case engine uses.
    """
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        fact = facts.get(name)
        if fact is not None and column.type == pa.string() and fact.type.kind in _ARROW_TYPES:
            try:
                columns[name] = pc.cast(column, _ARROW_TYPES[fact.type.kind]).to_pylist()
                continue
            except pa.ArrowInvalid:
                pass
        values = column.to_pylist()
        if fact is not None and column.type == pa.string() and fact.type.kind not in (Kind.STRING, Kind.ENUM):
            values = [_coerced(fact, value) for value in values]
        columns[name] = values
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _coerced(fact: Fact, raw: Any) -> Any:
    try:
        return coerce(fact, raw)
    except RecordError:
        return raw


def _list_tuples(list_ids: list[str], masks: list[np.ndarray], n: int) -> list[tuple[str, ...]]:
    """Per row, the lists (of ``list_ids``) whose mask is set; fast for the usual 0 or 1 list."""
    if not masks:
        return [()] * n
    if len(masks) == 1:
        one = (list_ids[0],)
        return [one if hit else () for hit in masks[0].tolist()]
    columns = [mask.tolist() for mask in masks]
    return [tuple(x for x, hit in zip(list_ids, row, strict=True) if hit) for row in zip(*columns, strict=True)]


@contextlib.contextmanager
def _without_cyclic_gc():
    """Build many small acyclic objects without the cyclic collector walking them all again.

    Creating tens of thousands of tuples, lists and dicts triggers full collections that
    scan every live object; measured here, they doubled the time of ``_materialize``. None
    of these objects can form a cycle, so nothing is lost by collecting after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def materialize(acc: Pairing, table: pa.Table, parts, facts: Mapping[str, Fact]) -> list[ChangedEnterprise]:
    """The kept rows (``MostChanged.result()``) as :class:`ChangedEnterprise` values."""
    with _without_cyclic_gc():
        return _build_rows(acc, table, parts, facts)


def _build_rows(acc: Pairing, table: pa.Table, parts, facts) -> list[ChangedEnterprise]:
    """Python objects for the shown rows only: the responsible rules, lists entered and left.

    Per rule, which rows it is responsible for is one vectorized comparison; the Python loop
    then visits only (row, responsible rule) pairs.
    """
    m = table.num_rows
    shown = _typed_rows(table, facts)
    amounts, present, flags, fired = parts["amounts"], parts["present"], parts["flags"], parts["fired"]
    totals = parts["total"].tolist()
    changes: list[list[RuleChange]] = [[] for _ in range(m)]
    for index, key in enumerate(acc.rule_keys):
        findings = [i for i, k in enumerate(acc.finding_keys) if k[:2] == key]
        sanctions = [i for i, k in enumerate(acc.sanction_keys) if k[:2] == key]
        money = amounts[findings].sum(axis=0) if findings else np.zeros((2, m), np.int64)
        entered = [flags[i, 1] & ~flags[i, 0] for i in sanctions]
        left = [flags[i, 0] & ~flags[i, 1] for i in sanctions]
        responsible = money[0] != money[1]
        for i in findings:  # a finding that appears or goes, 0 yuan or not
            responsible |= present[i, 0] != present[i, 1]
        for mask in entered + left:
            responsible |= mask
        hits = np.flatnonzero(responsible)
        if not hits.size:
            continue
        before, after = [acc.money(v) for v in money[0, hits].tolist()], [acc.money(v) for v in money[1, hits].tolist()]
        fired_before, fired_after = fired[index, 0, hits].tolist(), fired[index, 1, hits].tolist()
        list_ids = [acc.sanction_keys[i][2] for i in sanctions]
        entered_t = _list_tuples(list_ids, [mask[hits] for mask in entered], hits.size)
        left_t = _list_tuples(list_ids, [mask[hits] for mask in left], hits.size)
        for position, j in enumerate(hits.tolist()):
            changes[j].append(RuleChange(
                key[0], key[1], before[position], after[position], fired_before[position], fired_after[position],
                entered_t[position], left_t[position],
            ))
    entered_lists: list[list[str]] = [[] for _ in range(m)]
    left_lists: list[list[str]] = [[] for _ in range(m)]
    for list_index, list_id in enumerate(acc.lists):
        slots = acc.list_slots[list_index]
        on_before, on_after = flags[slots, 0].any(axis=0), flags[slots, 1].any(axis=0)
        for j in np.flatnonzero(on_after & ~on_before).tolist():
            entered_lists[j].append(list_id)
        for j in np.flatnonzero(on_before & ~on_after).tolist():
            left_lists[j].append(list_id)
    return [
        ChangedEnterprise(
            str(row.get("uscc")), row.get("name"), row.get(DISTRICT) or NO_DISTRICT, acc.money(totals[0][j]),
            acc.money(totals[1][j]),
            tuple(entered_lists[j]), tuple(left_lists[j]), tuple(changes[j]), row,
        )
        for j, row in enumerate(shown)
    ]


__all__ = ["MostChanged", "Pairing", "materialize"]
