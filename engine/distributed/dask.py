"""The nightly scoring over a Dask cluster: ``score(ddf, policies, as_of=...)``.

    from dask.distributed import Client, LocalCluster
    from ecorules.engine.distributed.dask import read_registry, score

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster):
        ddf = read_registry("registry/", policies)    # or any dask.dataframe of the registry
        out = score(ddf, policies, as_of=date(2012, 4, 14))
        out.totals                                    # {district: [deduction_yuan, cases]}: ints
        out.findings.compute()                        # uscc, policy, rule, kind, amount_yuan, payer

Each partition is scored by ``map_partitions`` on its worker, as ``ecorules run`` scores a
batch (engine/distributed/_partition.py); the frames of findings, list entries and rejects
are made from the scored partitions, which are persisted, so nothing is scored twice. The
district totals are the partitions' partial totals added on the driver: a few integers per
district and partition, no shuffle. A key written on several rows is decided first, over
the whole frame (two passes over the key column), as a local run decides it: the digests of
the keys are shuffled by value across the workers, and only the repeated ones reach the driver.

Columns travel as Arrow (pandas' ArrowDtype): an integer column with gaps stays integers
with nulls, never float NaN, and a null is a reject like a blank cell.

``ecorules run --engine dask`` (:func:`scored_batches`) hands the workers the Parquet row
groups themselves (``client.map``): each is read with its own file's headers, so that its
rejects name them as a local run does, and its ScoredBatches come back in the registry's
order to be written to the results store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from . import _frames
from ._parquet_out import ParquetOut, write_part
from ._partition import (
    ROW,
    SOURCE,
    Part,
    Plan,
    census_key,
    key_columns,
    make_plan,
    needed_columns,
    repeated_of,
    score_partition,
    take_census,
)
from ._pieces import pieces, read_piece


def _meta(schema: pa.Schema) -> pd.DataFrame:
    return schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)


ENTRIES_META, REJECTS_META = _meta(_frames.ENTRIES_SCHEMA), _meta(_frames.REJECTS_SCHEMA)
PARTIALS_META = _meta(_frames.PARTIALS_SCHEMA)


def _pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def findings_frame(frame: pd.DataFrame, slot_names) -> pd.DataFrame:
    return _pandas(_frames.findings_table(frame["scored"], slot_names))


def entries_frame(frame: pd.DataFrame, slot_names) -> pd.DataFrame:
    return _pandas(_frames.entries_table(frame["scored"], slot_names))


def rejects_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return _pandas(_frames.rejects_table(frame["scored"]))


def partials_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return _pandas(_frames.partials_table(frame["scored"]))


@dataclass
class Scored:
    """What ``score`` gives: Dask frames, and the totals already added up."""

    findings: dd.DataFrame
    entries: dd.DataFrame
    rejects: dd.DataFrame
    # district -> [deduction_yuan, cases], exact: ints, or Decimals of yuan where a policy rounds to the fen
    totals: dict[str, list]
    counts: dict  # rows_in, rows_scored, rows_rejected, total_fen (ints), total_yuan (exact: int or Decimal)
    partitions: dd.DataFrame  # one row per scored batch (column ``scored``), persisted


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def read_registry(path, policies=None, *, aliases=None, recurse: bool = True) -> dd.DataFrame:
    """A Parquet registry (file or folder) as a Dask frame of its needed columns, one
    partition per row group, with each row's file and row number (``_source``, ``_row``).
    Columns are named by their facts (uscc, district, ...), whatever each file heads them:
    a Dask frame has one set of columns. (``ecorules run --engine dask`` reads each file's
    own headers, so that its rejects name them as a local run does.)"""
    plan = make_plan(policies, dt.date.today(), aliases=aliases)
    found, _registry = pieces(plan, path, recurse=recurse)
    meta = _pandas(_file_as_text(read_piece(found[0], as_facts=True).slice(0, 0))) if found else None
    return dd.from_map(_read, found, meta=meta)


def _read(piece, columns: list[str] | None = None) -> pd.DataFrame:
    """A piece's rows, only the ``columns`` asked for (Dask passes them: the census asks for
    the key and where each row came from)."""
    if columns is None:
        return _pandas(_file_as_text(read_piece(piece, as_facts=True)))
    table = read_piece(piece, [c for c in columns if c not in (SOURCE, ROW)], as_facts=True)
    return _pandas(_file_as_text(table).select(list(columns)))


def _file_as_text(table: pa.Table) -> pa.Table:
    """A piece's rows with their file named as text (read_piece names it by a dictionary
    code): the registry's frame has one string column ``_source``, whatever its partition."""
    return table.set_column(table.schema.get_field_index(SOURCE), SOURCE, table[SOURCE].cast(pa.string()))


DIGESTS_META = pd.DataFrame({"digest": pd.Series([], dtype="uint64")})


def _digest_frame(table: pa.Table, plan: Plan, number: int) -> pd.DataFrame:
    return pd.DataFrame({"digest": Part(plan, number).digests(table)})


def _repeats_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"digest": repeated_of(frame["digest"].to_numpy(np.uint64, copy=True))})


def _repeated(digests: dd.DataFrame) -> tuple[np.ndarray, int]:
    """The digests more than one row has: shuffled by value across the workers (Dask's own
    shuffle), each output partition finding its repeats; only those come to the driver, with
    the count of digests (the per-part digests are computed once for both)."""
    merged = digests.shuffle(on="digest").map_partitions(_repeats_frame, meta=DIGESTS_META)
    repeats, count = dask.compute(merged, digests.map_partitions(len).sum())
    return np.sort(repeats["digest"].to_numpy(np.uint64)), int(count)


class _FrameParts:
    """The census's parts: the partitions of a Dask frame's key columns."""

    def __init__(self, keys: dd.DataFrame, plan: Plan):
        self.keys, self.plan = keys, plan

    def repeated(self) -> tuple[np.ndarray, int]:
        return _repeated(self.keys.map_partitions(_frame_digests, self.plan, meta=DIGESTS_META))

    def gather(self, function) -> list[list]:
        parts = self.keys.to_delayed()
        return list(dask.compute(*[dask.delayed(_frame_apply)(part, self.plan, k, function)
                                   for k, part in enumerate(parts)]))


def _frame_digests(frame: pd.DataFrame, plan: Plan, partition_info: dict | None = None) -> pd.DataFrame:
    return _digest_frame(_table(frame), plan, partition_info["number"] if partition_info else 0)


def _frame_apply(frame: pd.DataFrame, plan: Plan, number: int, function):
    return function(Part(plan, number), _table(frame))


def census(ddf: dd.DataFrame, plan: Plan) -> Plan:
    """``plan`` with the keys written on several rows of ``ddf`` (engine/_duplicates.py's
    first pass, partition by partition; only the repeated digests come to the driver)."""
    columns = key_columns(plan, list(ddf.columns))
    if columns is None:
        return plan
    return take_census(plan, _FrameParts(ddf[columns], plan))  # a Parquet reader reads the key columns alone


def _score(frame: pd.DataFrame, plan: Plan, partition_info: dict | None = None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    return pd.DataFrame({"scored": pd.Series(score_partition(plan, _table(frame), number), dtype=object)})


def scored_partitions(ddf: dd.DataFrame, plan: Plan) -> dd.DataFrame:
    """One row per scored batch (a ScoredBatch in column ``scored``), partition by partition."""
    meta = pd.DataFrame({"scored": pd.Series([], dtype=object)})
    return ddf.map_partitions(_score, plan, meta=meta, enforce_metadata=False)


def score(ddf: dd.DataFrame, policies=None, *, as_of: dt.date, aliases=None, duplicates: str = "reject") -> Scored:
    """Score every row of ``ddf`` (the registry's columns, headers as a local run accepts them)."""
    plan = make_plan(policies, as_of, aliases=aliases, duplicates=duplicates)
    ddf = ddf[needed_columns(plan, list(ddf.columns))]  # no other column through Arrow to the kernel
    plan = census(ddf, plan)
    partitions = scored_partitions(ddf, plan).persist()
    scoring = _frames.names(plan)
    findings = partitions.map_partitions(findings_frame, scoring, meta=_meta(_frames.findings_schema(scoring)))
    entries = partitions.map_partitions(entries_frame, scoring, meta=ENTRIES_META)
    rejects = partitions.map_partitions(rejects_frame, meta=REJECTS_META)
    partials = partitions.map_partitions(partials_frame, meta=PARTIALS_META).compute()
    totals, counts = _frames.add_partials(partials, scoring)
    return Scored(findings, entries, rejects, totals, counts, partitions)


def _piece_digests(piece, number: int, plan: Plan) -> pd.DataFrame:
    return _digest_frame(read_piece(piece, list(census_key(plan).names)), plan, number)


def _piece_apply(piece, number: int, *, plan: Plan, function):
    return function(Part(plan, number), read_piece(piece, list(census_key(plan).names)))


class _PieceParts:
    """The census's parts: the row groups of a Parquet registry, each read by a worker."""

    def __init__(self, found: list, plan: Plan, client: Any):
        self.found, self.plan, self.client = found, plan, client

    def repeated(self) -> tuple[np.ndarray, int]:
        return _repeated(dd.from_map(_piece_digests, self.found, list(range(len(self.found))), plan=self.plan,
                                     meta=DIGESTS_META, enforce_metadata=False))

    def gather(self, function) -> list[list]:
        return self.client.gather(self.client.map(_piece_apply, self.found, list(range(len(self.found))),
                                                  plan=self.plan, function=function, pure=False))


def _piece_enterprises(piece, number: int, *, plan: Plan, link, wanted, names: list[str]) -> list[tuple]:
    return Part(plan, number).enterprises(read_piece(piece, names), link, wanted, names)


def enterprise_rows(client: Any, path, plan: Plan, link, wanted, names: list[str], *, recurse: bool = True) -> list:
    """The registry's rows whose enterprise a case table names (``plan.needed``: their
    columns), read and picked on the workers, in the registry's order."""
    found, _registry = pieces(plan, path, recurse=recurse)
    kept = client.gather(client.map(_piece_enterprises, found, list(range(len(found))), plan=plan, link=link,
                                    wanted=wanted, names=names, pure=False))
    return [rows for part in kept for rows in part]


def _piece_scored(piece, number: int, *, plan: Plan):
    return score_partition(plan, read_piece(piece), number)


def _piece_written(scored: list, number: int, *, out: ParquetOut, slot_names) -> int:
    return write_part(out, number, scored, slot_names)


def scored_batches(path, plan: Plan, client: Any, *, recurse: bool = True, parquet: ParquetOut | None = None):
    """The ScoredBatches of a Parquet registry in its order, each row group read and scored
    on a worker with its file's own headers (for writing a results store as a local run
    does); the driver holds one row group's results at a time beyond what the cluster holds.
    With ``parquet``, each piece's findings, list entries and rejects are also written as
    Parquet part files by the worker holding them."""
    found, _registry = pieces(plan, path, recurse=recurse)
    plan = take_census(plan, _PieceParts(found, plan, client))  # one enterprise, one row: the key columns first
    futures = client.map(_piece_scored, found, list(range(len(found))), plan=plan, pure=False)
    written = (client.map(_piece_written, futures, list(range(len(found))), out=parquet,
                          slot_names=_frames.names(plan), pure=False) if parquet is not None else [])
    for future in futures:
        yield from future.result()
        future.release()
    client.gather(written)  # every part file is there before the run is done


__all__ = ["Scored", "census", "enterprise_rows", "read_registry", "score", "scored_batches", "scored_partitions"]
