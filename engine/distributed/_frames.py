"""ScoredBatches as Arrow tables: findings, list entries, rejects, partial totals (Dask's
pandas frames of them are made in dask.py, so that Spark's workers never import pandas).

Money is exact from end to end. Amounts in yuan are int64 where no policy rounds to the fen;
where one does (``rounding: {unit: fen}``), every amount of the run's frames is a
decimal(22, 2) of yuan (:func:`money_type`, decided by the policies, not by the data, so that
a frame's schema is the same every night): a yuan amount is a whole number of them, a fen one
to the fen. Partial totals travel in fen (int64) with whether a finding in fen is booked to
them, and are added as Python ints on the driver, as the store adds them (engine/_nightly.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import numpy as np
import pyarrow as pa

from .._ledger_money import FEN, FEN_PER_YUAN, YUAN, in_yuan
from ._partition import Plan, _scoring

YUAN_DECIMAL = pa.decimal128(22, 2)  # 10^20 yuan: past any int64 of fen

ENTRIES_SCHEMA = pa.schema([("uscc", pa.string()), ("list", pa.string()), ("policy", pa.string()),
                            ("rule", pa.string()), ("start", pa.date32()), ("planned_end", pa.date32())])
REJECTS_SCHEMA = pa.schema([("source", pa.string()), ("row", pa.int64()), ("column", pa.string()),
                            ("value", pa.string()), ("reason", pa.string())])
# one row per district of a batch (in_fen: some finding in fen is booked to it), and one row
# (district null) with the batch's counts (in_fen: some finding of the batch is in fen)
PARTIALS_SCHEMA = pa.schema([("district", pa.string()), ("deduction_fen", pa.int64()), ("cases", pa.int64()),
                             ("rows_in", pa.int64()), ("rows_scored", pa.int64()), ("rows_rejected", pa.int64()),
                             ("total_fen", pa.int64()), ("in_fen", pa.bool_())])
COUNTS = ("rows_in", "rows_scored", "rows_rejected", "total_fen")


def money_type(slot_names) -> pa.DataType:
    """int64 yuan, or decimal(22, 2) yuan where some finding slot is in fen."""
    return YUAN_DECIMAL if any(per_yuan != 1 for per_yuan in slot_names[2]) else pa.int64()


def findings_schema(slot_names) -> pa.Schema:
    return pa.schema([("uscc", pa.string()), ("policy", pa.string()), ("rule", pa.string()), ("kind", pa.string()),
                      ("amount_yuan", money_type(slot_names)), ("payer", pa.string())])


FINDINGS_SCHEMA = findings_schema(((), (), ()))  # of policies in whole yuan


def names(plan: Plan) -> tuple[list[tuple], list[tuple], tuple[int, ...]]:
    """What each finding slot and sanction slot is: (policy, rule, kind) and (list, policy,
    rule); and how many of each finding slot's unit make a yuan (1, or 100: fen)."""
    scoring = _scoring(plan.policies, plan.fingerprint)
    return ([(s.policy, s.rule, s.kind.value) for s in scoring.slots],
            [(list_id, policy, rule) for policy, rule, list_id in scoring.sanction_slots],
            tuple(s.per_yuan for s in scoring.slots))


def yuan_amounts(amounts: pa.Array, per_yuan: int, money: pa.DataType) -> pa.Array:
    """A slot's amounts (whole units of it) as the frames' money: int64 yuan, or decimal(22, 2)
    yuan made exactly from the fen (a decimal's 128-bit unscaled value is the fen)."""
    if money == pa.int64():
        return amounts.cast(pa.int64())
    fen = np.asarray(amounts.cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64) * (FEN_PER_YUAN // per_yuan)
    wide = np.empty((fen.size, 2), np.int64)
    wide[:, 0], wide[:, 1] = fen, fen >> 63  # little-endian low word, sign-extended high word
    return pa.Array.from_buffers(money, fen.size, [None, pa.py_buffer(wide.tobytes())])


def yuan_value(fen: int, in_fen: bool, money: pa.DataType) -> int | Decimal:
    """A total in fen as the frames give it: an int of yuan, or a two-place Decimal."""
    return in_yuan(fen, FEN if in_fen or money != pa.int64() else YUAN)


def _repeat(value: str, n: int) -> pa.Array:
    return pa.array([value] * n, pa.string())


def _days(days, n: int) -> pa.Array:
    if days is None:
        return pa.nulls(n, pa.date32())
    return pa.array(np.asarray(days, np.int64).astype(np.int32), pa.int32()).cast(pa.date32())


def _finding_columns(part, names: tuple[str, ...], per_yuan: int, money: pa.DataType) -> list[pa.Array]:
    n = len(part.subjects)
    return [part.subjects.cast(pa.string()), *(_repeat(name, n) for name in names),
            yuan_amounts(part.amounts, per_yuan, money), part.payers.cast(pa.string())]


def _entry_columns(part, names: tuple[str, ...], _per_yuan: int, _money: pa.DataType) -> list[pa.Array]:
    n = len(part.keys)
    return [part.keys.cast(pa.string()), *(_repeat(name, n) for name in names), _days(part.start, n),
            _days(part.end, n)]


# what each table reads of a ScoredBatch: its parts, which of the slot names, the columns of a part
_PARTS = {"findings": (findings_schema, 0, _finding_columns), "entries": (lambda _names: ENTRIES_SCHEMA, 1, _entry_columns)}


def parts_table(what: str, batches: Iterable, slot_names) -> pa.Table:
    """The findings or the list entries (``what``) of scored batches as one Arrow table, each
    part's slot named by its policy, rule and kind (findings) or list, policy and rule (entries)."""
    schema_of, names, columns = _PARTS[what]
    schema, money = schema_of(slot_names), money_type(slot_names)
    units = slot_names[2]
    parts = [pa.table(columns(part, slot_names[names][part.slot], units[part.slot] if what == "findings" else 1, money),
                      schema=schema)
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


def partial_rows(scored) -> list[tuple]:
    """A scored batch's rows of PARTIALS_SCHEMA: its counts, then one per district."""
    return [(None, None, None, scored.rows_in, scored.rows_scored, scored.rows_rejected, scored.total_fen,
             scored.has_fen),
            *[(district, fen, cases, None, None, None, None, district in scored.fen_payers)
              for district, (fen, cases) in scored.districts.items()]]


def partials_table(batches: Iterable) -> pa.Table:
    rows = [row for scored in batches for row in partial_rows(scored)]
    columns = list(zip(*rows, strict=True)) if rows else [[]] * len(PARTIALS_SCHEMA)
    return pa.table([pa.array(list(c), f.type) for c, f in zip(columns, PARTIALS_SCHEMA, strict=True)],
                    schema=PARTIALS_SCHEMA)


def add_partials(partials, slot_names) -> tuple[dict[str, list], dict[str, int]]:
    """The district totals ({district: [deduction_yuan, cases]}) and counts (rows_in,
    rows_scored, rows_rejected, total_yuan, total_fen) of a run from its partials (an Arrow
    table, or Dask's pandas frame of one), added as Python ints; yuan as :func:`yuan_value`."""
    table = partials if isinstance(partials, pa.Table) else pa.Table.from_pandas(partials, preserve_index=False)
    money = money_type(slot_names)
    totals: dict[str, list] = {}
    counts = dict.fromkeys(COUNTS, 0)
    some_fen = False
    for row in table.to_pylist():
        if row["district"] is None:
            for name in COUNTS:
                counts[name] += row[name]
            some_fen = some_fen or bool(row["in_fen"])
        else:
            total = totals.setdefault(row["district"], [0, 0, False])
            total[0] += row["deduction_fen"]
            total[1] += row["cases"]
            total[2] = total[2] or bool(row["in_fen"])
    counts["total_yuan"] = yuan_value(counts["total_fen"], some_fen, money)
    return ({district: [yuan_value(fen, in_fen, money), cases] for district, (fen, cases, in_fen) in sorted(totals.items())},
            counts)


__all__ = ["ENTRIES_SCHEMA", "FINDINGS_SCHEMA", "PARTIALS_SCHEMA", "REJECTS_SCHEMA", "add_partials", "entries_table",
           "findings_schema", "findings_table", "money_type", "names", "partial_rows", "partials_table",
           "rejects_table", "yuan_amounts", "yuan_value"]
