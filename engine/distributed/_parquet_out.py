"""``ecorules run --engine dask|spark --out-format parquet``: the run's results also as Parquet
tables beside the results store, written where they were scored (each worker or executor
writes its own part files, so the rows do not pass through the driver twice).

    results.sqlite                         the store, as a local run writes it
    results.parquet/findings/run_id=7/     uscc, policy, rule, kind, amount_yuan, payer
                                           (yuan: int64, or decimal(22, 2) where a policy rounds to the fen)
    results.parquet/list_entries/run_id=7/ uscc, list, policy, rule, start, planned_end
    results.parquet/rejects/run_id=7/      source, row, column, value, reason
    results.parquet/district_totals/run_id=7/ district, deduction_yuan, cases

One folder per run (Hive-style ``run_id=N``: ``pyarrow.dataset``, Spark and DuckDB read the
run id from it), so that tables of several runs sit side by side as the store's runs do.

The rows the driver scored itself (the case table's findings, list entries and rejects, and
those of the other kinds' tables, ``--records``) are no worker's: once the store has committed
the run they are read back from it and written as one more part file of each folder,
``part-driver.parquet`` (:func:`write_driver_part`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import _frames, _store_rows

TABLES = ("findings", "list_entries", "rejects")
TOTALS_SCHEMA = pa.schema([("district", pa.string()), ("deduction_yuan", pa.int64()), ("cases", pa.int64())])


@dataclass(frozen=True)
class ParquetOut:
    root: str  # the folder beside the store
    run_id: int

    def folder(self, table: str) -> Path:
        return Path(self.root) / table / f"run_id={self.run_id}"

    def clear(self) -> None:
        """A run id used again (a store replaced by hand): its folders start empty."""
        for table in (*TABLES, "district_totals"):
            shutil.rmtree(self.folder(table), ignore_errors=True)

    def write_totals(self, districts: dict[str, tuple], money: pa.DataType) -> None:
        """The district totals, as the driver added them: yuan as the findings' ``money``
        (int64, or decimal(22, 2) where a policy rounds to the fen: _frames.money_type)."""
        rows = sorted(districts.items())
        schema = TOTALS_SCHEMA.set(1, pa.field("deduction_yuan", money))
        table = pa.table([pa.array([d for d, _ in rows], pa.string()), pa.array([t[0] for _, t in rows], money),
                          pa.array([t[1] for _, t in rows], pa.int64())], schema=schema)
        self.folder("district_totals").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.folder("district_totals") / "part-00000.parquet")


def folder_beside(out) -> str:
    """``results.sqlite`` -> ``results.parquet`` (a store named by a URL: refused by the caller)."""
    path = Path(out)
    return str(path.with_suffix(".parquet") if path.suffix != ".parquet" else path.with_name(path.name + ".d"))


def tables_of(batches: list, slot_names) -> dict[str, pa.Table]:
    """The findings, list entries and rejects of some scored batches, as the Parquet tables hold them."""
    return {"findings": _frames.findings_table(batches, slot_names),
            "list_entries": _frames.entries_table(batches, slot_names),
            "rejects": _frames.rejects_table(batches)}


def write_part(out: ParquetOut, number: int, batches: list, slot_names) -> int:
    """One piece's tables as part files named by the piece (on the worker that scored it);
    the rows written."""
    written = 0
    for name, table in tables_of(batches, slot_names).items():
        folder = out.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"part-{number:05d}.parquet")
        written += table.num_rows
    return written


# what the driver wrote of a run, as the store's views hold it, in the workers' parts' columns:
# findings and list entries of other records than the registry's enterprises, rejects of the
# driver's sources (the case table's files, the other kinds')
_DRIVER_ROWS = {
    "findings": ("findings", {"uscc": "text", "policy": "text", "rule": "text", "kind": "text", "amount_yuan": "money",
                              "payer": "text"}),
    "list_entries": ("sanctions", {"uscc": "text", "list": "text", "policy": "text", "rule": "text", "start": "date",
                                   "planned_end": "date"}),
    "rejects": ("rejects", {"source": "text", "row": "int", "column": "text", "value": "text", "reason": "text"}),
}


def write_driver_part(out: ParquetOut, target, sources: set[str], money: pa.DataType) -> int:
    """The rows of the run the driver scored (see the module's doc), from the store at
    ``target``, as ``part-driver.parquet`` of each folder; the rows written. Amounts as the
    workers' parts have them (``money``): :class:`_store_rows.NotWholeYuan` for an amount with
    fen in a table of whole yuan."""
    connection = _store_rows.connect(target)
    written = 0
    try:
        for name, (view, columns) in _DRIVER_ROWS.items():
            if name == "rejects":
                marks = ", ".join("?" * len(sources))
                where, params = (f" AND source IN ({marks})", tuple(sorted(sources))) if sources else (" AND 0 = 1", ())
            else:
                where, params = " AND record_kind <> 'enterprise'", ()
            chunks = list(_store_rows.run_rows(connection, view, columns, out.run_id, where=where, params=params,
                                               money=money))
            if not chunks:
                continue
            table = pa.concat_tables(chunks)
            out.folder(name).mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out.folder(name) / "part-driver.parquet")
            written += table.num_rows
    finally:
        connection.close()
    return written


__all__ = ["TABLES", "TOTALS_SCHEMA", "ParquetOut", "folder_beside", "tables_of", "write_driver_part", "write_part"]
