"""ScoredBatches as Arrow tables: findings, list entries, rejects, partial totals (Dask's
pandas frames of them are made in dask.py, so that Spark's workers never import pandas). Amounts are int64 from end to end; the
totals are added as Python ints on the driver."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from ._partition import Plan, _scoring

FINDINGS_SCHEMA = pa.schema([("uscc", pa.string()), ("policy", pa.string()), ("rule", pa.string()),
                             ("kind", pa.string()), ("amount_yuan", pa.int64()), ("payer", pa.string())])
ENTRIES_SCHEMA = pa.schema([("uscc", pa.string()), ("list", pa.string()), ("policy", pa.string()),
                            ("rule", pa.string()), ("start", pa.date32()), ("planned_end", pa.date32())])
REJECTS_SCHEMA = pa.schema([("source", pa.string()), ("row", pa.int64()), ("column", pa.string()),
                            ("value", pa.string()), ("reason", pa.string())])
# one row per district of a batch, and one row (district null) with the batch's counts
PARTIALS_SCHEMA = pa.schema([("district", pa.string()), ("deduction_yuan", pa.int64()), ("cases", pa.int64()),
                             ("rows_in", pa.int64()), ("rows_scored", pa.int64()), ("rows_rejected", pa.int64()),
                             ("total_yuan", pa.int64())])
COUNTS = ("rows_in", "rows_scored", "rows_rejected", "total_yuan")


def names(plan: Plan) -> tuple[list[tuple], list[tuple]]:
    """What each finding slot and sanction slot is: (policy, rule, kind) and (list, policy, rule)."""
    scoring = _scoring(plan.policies, plan.fingerprint)
    return ([(s.policy, s.rule, s.kind.value) for s in scoring.slots],
            [(list_id, policy, rule) for policy, rule, list_id in scoring.sanction_slots])


def _repeat(value: str, n: int) -> pa.Array:
    return pa.array([value] * n, pa.string())


def _days(days, n: int) -> pa.Array:
    if days is None:
        return pa.nulls(n, pa.date32())
    return pa.array(np.asarray(days, np.int64).astype(np.int32), pa.int32()).cast(pa.date32())


def _finding_columns(part, names: tuple[str, ...]) -> list[pa.Array]:
    n = len(part.subjects)
    return [part.subjects.cast(pa.string()), *(_repeat(name, n) for name in names), part.amounts.cast(pa.int64()),
            part.payers.cast(pa.string())]


def _entry_columns(part, names: tuple[str, ...]) -> list[pa.Array]:
    n = len(part.keys)
    return [part.keys.cast(pa.string()), *(_repeat(name, n) for name in names), _days(part.start, n),
            _days(part.end, n)]


# what each table reads of a ScoredBatch: its parts, which of the slot names, the columns of a part
_PARTS = {"findings": (FINDINGS_SCHEMA, 0, _finding_columns), "entries": (ENTRIES_SCHEMA, 1, _entry_columns)}


def parts_table(what: str, batches: Iterable, slot_names) -> pa.Table:
    """The findings or the list entries (``what``) of scored batches as one Arrow table, each
    part's slot named by its policy, rule and kind (findings) or list, policy and rule (entries)."""
    schema, names, columns = _PARTS[what]
    parts = [pa.table(columns(part, slot_names[names][part.slot]), schema=schema)
             for scored in batches for part in getattr(scored, what)]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def findings_table(batches: Iterable, slot_names) -> pa.Table:
    return parts_table("findings", batches, slot_names)


def entries_table(batches: Iterable, slot_names) -> pa.Table:
    return parts_table("entries", batches, slot_names)


def rejects_table(batches: Iterable) -> pa.Table:
    rows = [row for scored in batches for row in scored.reject_rows()]
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return pa.table([pa.array(list(c), f.type) for c, f in zip(columns, REJECTS_SCHEMA, strict=True)],
                    schema=REJECTS_SCHEMA)


def partials_table(batches: Iterable) -> pa.Table:
    rows = []
    for scored in batches:
        rows.append((None, None, None, scored.rows_in, scored.rows_scored, scored.rows_rejected, scored.total_yuan))
        rows += [(district, yuan, cases, None, None, None, None)
                 for district, (yuan, cases) in scored.districts_yuan.items()]
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 7
    return pa.table([pa.array(list(c), f.type) for c, f in zip(columns, PARTIALS_SCHEMA, strict=True)],
                    schema=PARTIALS_SCHEMA)


def add_partials(partials) -> tuple[dict[str, list[int]], dict[str, int]]:
    """The district totals and counts of a run from its partials (an Arrow table, or Dask's
    pandas frame of one), added as Python ints."""
    table = partials if isinstance(partials, pa.Table) else pa.Table.from_pandas(partials, preserve_index=False)
    totals: dict[str, list[int]] = {}
    counts = dict.fromkeys(COUNTS, 0)
    for row in table.to_pylist():
        if row["district"] is None:
            for name in COUNTS:
                counts[name] += row[name]
        else:
            total = totals.setdefault(row["district"], [0, 0])
            total[0] += row["deduction_yuan"]
            total[1] += row["cases"]
    return dict(sorted(totals.items())), counts


__all__ = ["ENTRIES_SCHEMA", "FINDINGS_SCHEMA", "PARTIALS_SCHEMA", "REJECTS_SCHEMA", "add_partials", "entries_table",
           "findings_table", "names", "partials_table", "rejects_table"]
