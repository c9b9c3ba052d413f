"""The nightly scoring on Spark (pyspark >= 3.5): ``score(df, policies, as_of=...)``.

    from ecorules.engine.distributed.spark import local_session, score

    spark = local_session("local[2]")                 # or the site's own session
    out = score(spark.read.parquet("registry/"), as_of=date(2012, 4, 14))
    out.totals.show()                                 # district, deduction_yuan, cases
    out.findings, out.entries, out.rejects            # Spark DataFrames

Each partition goes through ``mapInArrow`` to the batch kernel on its executor, scored as
``ecorules run`` scores a batch (engine/distributed/_partition.py). The scored batches are
cached once as a DataFrame of pickled ScoredBatches beside their partial totals and counts:
the partials come back to the driver (a few rows per batch) and are added as Python ints,
exact; the findings, list entries and rejects are read from the pickles when asked for.
A key written on several rows is decided over the whole frame as a local run decides it:
the scoring pass also caches its keys' 64-bit digests, which the driver merges (or, for a
registry of more than :data:`DRIVER_CENSUS_ROWS` rows, the executors, by bucket); only if
some key is written twice is the frame scored again, knowing the first row of each
repeated key (:func:`_scored_frame`).

What Spark's Arrow hands over is made safe before any arithmetic: integer columns narrower
than 64 bits (Hive's INT) are widened to int64, a NULL is a missing value and so a reject
naming its column (never a NaN or a silent null in a sum), large strings are read as
strings. :func:`score` sets the session's time zone (``spark.sql.session.timeZone``) to
``time_zone`` (Zhengzhou's, Asia/Shanghai, by default): Spark tags timestamps with it when
it hands them to Arrow, so the day a timestamp falls on is the bureau's day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import distinct_sorted
from pyspark import SparkContext, StorageLevel
from pyspark.accumulators import Accumulator, AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

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
    take_census,
)
from ._pieces import Piece, pieces, read_piece

TIME_ZONE = "Asia/Shanghai"
# up to this many rows, the census's digests (8 bytes a row: 128 MB) are merged on the driver,
# which saves a shuffle and a stage of Python tasks; past it, by bucket on the executors (_executor_repeats)
DRIVER_CENSUS_ROWS = 16_000_000
# the metadata key, on a frame of pieces' ``rows`` column, of the rows of all its pieces (pieces_frame)
_ROWS_TOTAL = "ecorules.rows_total"
_PIECES = "ecorules.pieces"  # and on its ``path`` column, the pieces themselves (_listed_pieces)
BATCH_ROWS = 262_144  # rows per Arrow batch Spark hands over (its default, 10,000, costs 2x in per-call overhead)
# a batch's digests, sorted, are cut into 2**DIGEST_BITS buckets of their top bits, a row each
# (its slice of the sorted digests, no copy): Spark shuffles these few rows by bucket, and each
# merging task holds its buckets alone, so past DRIVER_CENSUS_ROWS the registry is cut into
# enough tasks that each holds about MERGED_DIGESTS digests (8 bytes each): a merging worker's
# memory stays flat with the registry's size up to 2**DIGEST_BITS times that (4 G rows)
DIGEST_BITS = 10
MERGED_DIGESTS = 4_000_000
_BUCKET_SHIFT = np.uint64(64 - DIGEST_BITS)
# a scored batch's row (its pickle and counts), its district partials (_frames.PARTIALS_SCHEMA),
# or a bucket of its keys' digests (sorted uint64s as bytes: Spark has no unsigned type) for the census
_SCORED_ARROW = pa.schema([("number", pa.int32()), ("seq", pa.int32()), ("scored", pa.binary()),
                           *_frames.PARTIALS_SCHEMA, ("bucket", pa.int32()), ("digests", pa.binary())])
_SPARK_TYPES = {pa.int32(): "int", pa.int64(): "long", pa.string(): "string", pa.binary(): "binary",
                pa.bool_(): "boolean"}
SCORED = ", ".join(f"{f.name} {_SPARK_TYPES[f.type]}" for f in _SCORED_ARROW)


def loopback_conf(master: str = "local[2]", local_dir: str | None = None) -> dict[str, str]:
    """The settings that keep a local Spark on loopback and quiet (measured here, see README);
    without ``local_dir``, a new temporary directory for its scratch files and warehouse."""
    return {**_loopback(master), **_directories(local_dir or tempfile.mkdtemp(prefix="ecorules-spark-"))}


def _loopback(master: str) -> dict[str, str]:
    return {
        "spark.master": master,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(BATCH_ROWS),
        "spark.sql.session.timeZone": TIME_ZONE,
    }


def _directories(local: str) -> dict[str, str]:
    return {
        "spark.local.dir": local,
        # the session's own catalogue (hive:DB.TABLE in tests): under the local dir, not the working directory
        "spark.sql.warehouse.dir": os.path.join(local, "warehouse"),
    }


def local_session(master: str = "local[2]", local_dir: str | None = None, **conf: str) -> SparkSession:
    """A Spark session for one machine, everything bound to 127.0.0.1, workers running this
    Python (unset, they run another and fail); for another master, only the settings the
    scoring needs (Arrow, its batch size, the time zone)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("ecorules")
    if not master.startswith("local"):  # a cluster: its own hosts and directories; only what the scoring needs
        settings = {key: _loopback(master)[key] for key in ("spark.master", "spark.sql.execution.arrow.pyspark.enabled",
                                                             "spark.sql.execution.arrow.maxRecordsPerBatch",
                                                             "spark.sql.session.timeZone")}
    elif local_dir is None and SparkContext._active_spark_context is not None:
        # getOrCreate hands back the running session, whose directories were fixed when it
        # started: a new temporary directory would never be used, only left behind (one per
        # run in a process that shares its session, such as a test run or a host system)
        settings = _loopback(master)
    else:
        settings = loopback_conf(master, local_dir)
    for key, value in {**settings, **conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@dataclass
class Scored:
    findings: DataFrame  # uscc, policy, rule, kind, amount_yuan, payer
    entries: DataFrame  # uscc, list, policy, rule, start, planned_end
    rejects: DataFrame  # source, row, column, value, reason
    # district, deduction_yuan (bigint; decimal(22,2) where a policy rounds to the fen: _frames.py), cases
    totals: DataFrame
    counts: dict  # rows_in, rows_scored, rows_rejected, total_fen (ints), total_yuan (exact: int or Decimal)
    batches: DataFrame  # number, seq, scored (pickled ScoredBatch), partial totals and counts; cached


def _number() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


def _tables(batches, pieces_in: bool, facts: list[str] | None = None):
    """A partition's rows as Arrow tables of up to BATCH_ROWS rows: the data itself, or the
    pieces it names, read here (the CLI's path: rows keep their file and row number; only
    the columns of ``facts``, if given)."""
    if pieces_in:
        for batch in batches:
            for fields in batch.to_pylist():
                piece = Piece(**{**fields, "columns": tuple(fields["columns"]), "facts": tuple(fields["facts"])})
                yield read_piece(piece, facts)
        return
    pending, rows = [], 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= BATCH_ROWS:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _scorer(plan: Plan, pieces_in: bool, census: bool, sink: Accumulator | None = None):
    """Each scored batch as one row holding it (pickled) with its counts, and one row per
    district of its partial totals, which the driver adds without reading the pickles back.
    With ``census``, also the digests of each batch's keys, sorted: a row per bucket of their
    top bits (:func:`_digest_rows`), or, given a ``sink`` (:class:`_TaskDigests`), added to it
    once per task, never a row of the frame. The key census is taken in the same pass that
    scores, the rows handed to Python once (:func:`_partials_and_repeats`)."""
    def score_batches(batches):
        part = Part(plan, _number())  # once per task: the compiled scoring, the duplicate filter, the columns
        seq, held = 0, []
        for table in _tables(batches, pieces_in):
            # the keys read and checked once for the census and the scoring (Part._counted)
            found: list[np.ndarray] | None = [] if census else None
            scored_batches = part.score(table, found)
            if found is not None and sink is not None:
                held.extend(found)
            elif found is not None:  # per batch, not per partition: a worker holds one batch's digests, however big its partition
                yield _digest_rows(part.number, np.concatenate(found) if found else np.zeros(0, np.uint64))
            for scored in scored_batches:
                yield _scored_rows(part.number, seq, scored)
                seq += 1
        if census and sink is not None:  # one update a task, an empty one too
            sink.add({part.number: np.sort(np.concatenate(held)).tobytes() if held else b""})
    return score_batches


class _TaskDigests(AccumulatorParam):
    """An accumulator of the census's digests, by partition: {number: its keys' digests, sorted,
    as bytes}. A task adds its own once, at its end; a partition's digests replace any its
    task sent before (a retried or recomputed task: the same digests, never counted twice).
    Spark sends a task's update with its result, bytes the JVM passes on as they are, to the
    driver before the job that ran it ends (PySpark's accumulator server): no row of the
    scored frame, not cached, not collected through Arrow. Once :meth:`closed` on the
    driver, later updates (the frame recomputed for its findings) are dropped there."""

    def __init__(self):
        self.open = True

    def __reduce__(self):  # a worker's copy is always open: only the driver's closes
        return _TaskDigests, ()

    def zero(self, value):
        return {}

    def addInPlace(self, value1, value2):
        if self.open:
            value1.update(value2)
        return value1

    def closed(self, accumulator: Accumulator) -> dict[int, bytes]:
        """What the tasks sent, and no more from now on (nor held)."""
        self.open, found = False, accumulator.value
        accumulator.value = {}
        return found


def _scored_rows(number: int, seq: int, scored) -> pa.RecordBatch:
    blob = pickle.dumps(scored, protocol=pickle.HIGHEST_PROTOCOL)
    rows = _frames.partial_rows(scored)  # the counts' row first: it carries the pickle
    n = len(rows)
    partials = [pa.array(list(column), field.type)
                for column, field in zip(zip(*rows, strict=True), _frames.PARTIALS_SCHEMA, strict=True)]
    return pa.record_batch([pa.array([number] * n, pa.int32()), pa.array([seq] * n, pa.int32()),
                            pa.array([blob] + [None] * (n - 1), pa.binary()), *partials,
                            pa.nulls(n, pa.int32()), pa.nulls(n, pa.binary())], schema=_SCORED_ARROW)


def _digest_rows(number: int, found: np.ndarray) -> pa.RecordBatch:
    """A batch's digests, sorted, as a row per bucket of their top bits: each row's bytes are
    its slice of the one sorted array (Arrow offsets into it, no copy)."""
    every = np.sort(found)
    cuts = np.searchsorted(every >> _BUCKET_SHIFT, np.arange((1 << DIGEST_BITS) + 1, dtype=np.uint64))
    n = 1 << DIGEST_BITS
    blobs = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer((cuts * 8).astype(np.int32)),
                                                   pa.py_buffer(every)])
    return pa.record_batch([pa.array(np.full(n, number, np.int32)), pa.nulls(n, pa.int32()), pa.nulls(n, pa.binary()),
                            *[pa.nulls(n, field.type) for field in _frames.PARTIALS_SCHEMA],
                            pa.array(np.arange(n, dtype=np.int32)), blobs], schema=_SCORED_ARROW)


def _values(blobs: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The digests of a column of digest blobs, one after another as they lie (each blob a
    sorted run), and each blob's bounds in them (its rows' offsets, in digests)."""
    blobs = blobs.combine_chunks() if isinstance(blobs, pa.ChunkedArray) else blobs
    if not len(blobs):
        return np.zeros(0, np.uint64), np.zeros(1, np.int64)
    width = np.int64 if pa.types.is_large_binary(blobs.type) else np.int32  # Spark 4's Arrow: large types
    offsets = np.frombuffer(blobs.buffers()[1], width, len(blobs) + 1, blobs.offset * np.dtype(width).itemsize)
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(blobs.buffers()[2], np.uint64, (offsets[-1] - offsets[0]) // 8, offsets[0])
    return data, (offsets - offsets[0]) // 8


@dataclass(frozen=True)
class Repeats:
    """What the census found: the digests more than one row has (sorted), and the partitions
    holding them (None: not sought, every partition may)."""

    digests: np.ndarray
    holders: tuple[int, ...] | None = None


_NO_REPEATS = Repeats(np.zeros(0, np.uint64), ())


def _partials_and_repeats(scored: DataFrame, census: bool, sink: Accumulator | None = None) -> tuple[pa.Table, Repeats]:
    """The partial totals and counts (a few rows per scored batch, :data:`_frames.PARTIALS_SCHEMA`),
    to be added on the driver as Python ints, and (``census``) the digests that more than one
    row has, with the partitions that hold them.

    With a ``sink`` (the scorer's :class:`_TaskDigests`: a frame of pieces, whose row count
    the driver knows before scoring, up to :data:`DRIVER_CENSUS_ROWS`), the digests came to
    the driver with the tasks' results of the one job that computes ``scored`` and collects
    its partials. Otherwise the partials, which tell how many rows there are, come first,
    then ``scored`` is read again (persist it) for the digests, merged on the driver up to
    :data:`DRIVER_CENSUS_ROWS` rows, past that by bucket on the executors
    (:func:`_executor_repeats`). On the driver, the second read is of Spark's cache alone; on
    the executors it is a shuffle and a stage of Python tasks, which cost more than the merge
    itself on a small registry (measured here: README)."""
    # a batch's counts row (rows_in is never null there) or a district's row: not ``scored IS NOT
    # NULL``, which made every scan of the cache read each batch's pickle out of it to test it
    partial = F.col("rows_in").isNotNull() | F.col("district").isNotNull()
    partials = _partials_of(_arrow_table(scored.filter(partial).select(*_frames.PARTIALS_SCHEMA.names)))
    if not census:
        return partials, _NO_REPEATS
    if sink is not None:
        return partials, _repeated_in_tasks(sink.accum_param.closed(sink))
    digests = scored.filter(F.col("digests").isNotNull()).select("number", "bucket", "digests")
    if _rows_in(partials) > DRIVER_CENSUS_ROWS:
        return partials, _executor_repeats(digests, _rows_in(partials))
    return partials, _repeated_on_the_driver(_arrow_table(digests))


def _repeated_in_tasks(found: dict[int, bytes]) -> Repeats:
    """The digests repeated across the tasks' sorted runs (:class:`_TaskDigests`), and the
    partitions holding them."""
    runs = {number: np.frombuffer(blob, np.uint64) for number, blob in found.items()}
    repeated = _repeated_in_runs(list(runs.values()))
    if not repeated.size:
        return Repeats(repeated, ())
    return Repeats(repeated, tuple(sorted(number for number, run in runs.items() if np.isin(run, repeated).any())))


def _partials_of(found: pa.Table) -> pa.Table:
    """The partial rows as :data:`_frames.PARTIALS_SCHEMA` (Spark's Arrow may give large strings)."""
    return found.select(_frames.PARTIALS_SCHEMA.names).cast(_frames.PARTIALS_SCHEMA)


def _rows_in(partials: pa.Table) -> int:
    return int(pc.sum(partials["rows_in"]).as_py() or 0)


def _repeated_on_the_driver(found: pa.Table) -> Repeats:
    """The digests repeated in a table of (number, digests blob) rows, and their partitions."""
    values, bounds = _values(found["digests"])
    repeated = _repeated_in_runs([values])
    if not repeated.size:
        return Repeats(repeated, ())
    rows = np.searchsorted(bounds, np.flatnonzero(np.isin(values, repeated)), side="right") - 1
    return Repeats(repeated, tuple(sorted(set(found["number"].to_numpy()[rows].tolist()))))


def _arrow_table(frame: DataFrame) -> pa.Table:
    """``frame`` collected as one Arrow table (its schema kept when it has no rows)."""
    batches = _arrow_batches(frame)
    if batches:
        return pa.Table.from_batches(batches)
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema).empty_table()


def _arrow_batches(frame: DataFrame) -> list[pa.RecordBatch]:
    """``frame`` collected as Arrow, not as Rows pickled by the JVM: the census's 16 MB of
    digests at 2 M rows came back in 1.3-1.6 s against 2.5-6.8 s (load ~22). pyspark 4 has
    ``toArrow``; 3.5 has only the method its own ``toPandas`` collects with."""
    to_arrow = getattr(frame, "toArrow", None)
    if to_arrow is not None:
        return to_arrow().to_batches()
    return frame._collect_as_arrow()


def _repeated_in_runs(runs: list[np.ndarray]) -> np.ndarray:
    """The digests that occur more than once in sorted runs (one after another in each
    array): a stable sort (a merge of the runs, 0.02 s for 2 M digests in 512 runs against
    0.13-0.16 s for numpy's default sort of the same)."""
    if not runs:
        return np.zeros(0, np.uint64)
    every = np.concatenate(runs)
    every.sort(kind="stable")
    return distinct_sorted(every[1:][every[1:] == every[:-1]])


def _merged_repeats(batches):
    """The digests that more than one row has, among the buckets this task was given (all of
    them at once: about MERGED_DIGESTS, :func:`_executor_repeats`; each blob a sorted run),
    as rows (d, null), and the partitions holding them, as rows (null, number)."""
    held = []  # (digests, each blob's bounds in them, each blob's partition)
    for batch in batches:
        values, bounds = _values(batch.column("digests"))
        held.append((values.copy(), bounds, batch.column("number").to_numpy()))
    repeated = _repeated_in_runs([values for values, _bounds, _numbers in held])
    numbers = set()
    for values, bounds, number in held if repeated.size else ():
        numbers.update(number[np.searchsorted(bounds, np.flatnonzero(np.isin(values, repeated)), side="right") - 1]
                       .tolist())
    yield pa.record_batch([pa.array([*repeated.view(np.int64).tolist(), *[None] * len(numbers)], pa.int64()),
                           pa.array([*[None] * repeated.size, *sorted(numbers)], pa.int32())], names=["d", "number"])


def _executor_repeats(digests: DataFrame, rows: int) -> Repeats:
    """The repeated digests of a large registry: the batches' sorted blobs shuffled by bucket
    into tasks of about MERGED_DIGESTS digests each and merged in numpy on the executors,
    only the repeated ones coming back, with the partitions holding them (rare: a key
    written twice, or two keys of one digest)."""
    spark = digests.sparkSession
    partitions = min(1 << DIGEST_BITS, max(int(spark.conf.get("spark.sql.shuffle.partitions")),
                                           -(-rows // MERGED_DIGESTS)))
    found = _arrow_table(digests.select("number", "bucket", "digests").repartition(partitions, "bucket")
                         .mapInArrow(_merged_repeats, "d long, number int"))
    repeated = found.filter(found["d"].is_valid())["d"].to_numpy()
    holders = found.filter(found["number"].is_valid())["number"].to_numpy()
    return Repeats(distinct_sorted(repeated.astype(np.int64).view(np.uint64)), tuple(sorted(set(holders.tolist()))))


class _Parts:
    """The census's parts on Spark: the partitions of a frame (or of a frame of pieces), each
    task reading the key columns alone; only the partitions ``holders`` where given (the
    others hold no row the census asks about: :class:`Repeats`)."""

    def __init__(self, df: DataFrame, plan: Plan, pieces_in: bool, facts: list[str] | None = None,
                 holders: tuple[int, ...] | None = None):
        self.plan, self.pieces_in = plan, pieces_in
        self.facts = facts or list(census_key(plan).names)
        # the key columns alone (Spark reads no other column of a Parquet file); or ``facts``
        if not pieces_in:
            df = df.select(*[F.col(f"`{c}`") for c in (needed_columns(plan, df.columns) if facts
                                                       else key_columns(plan, df.columns))])
        listed = _listed_pieces(df) if pieces_in and holders is not None else None
        if listed is not None:  # a frame of those pieces alone: a task each, in the registry's order
            df = _frame_of_pieces(df.sparkSession, [listed[k] for k in holders])
        elif holders is not None:
            # a narrow filter: each partition keeps its number, the one its scoring task had
            # (every partition is still a task, an empty one for most)
            df = df.where(F.spark_partition_id().isin(list(holders)))
        self.df = df

    def _map(self, function):
        """``function(part, table)`` for every table of every partition, one Part per task."""
        plan, pieces_in, facts = self.plan, self.pieces_in, self.facts

        def each(batches):
            part = Part(plan, _number())
            for table in _tables(batches, pieces_in, facts):
                yield from function(part, table)
        return each

    def repeated(self) -> tuple[np.ndarray, int]:
        """The digests of every part, bucketed per batch and merged by bucket on the executors
        (as the scoring pass's census past :data:`DRIVER_CENSUS_ROWS`: :func:`_executor_repeats`),
        and how many there were."""
        def digests(part, table):
            yield _digest_rows(part.number, part.digests(table)).select(["number", "bucket", "digests"])

        digests_frame = self.df.mapInArrow(self._map(digests), "number int, bucket int, digests binary")
        counted = digests_frame.select((F.length("digests") / 8).cast("long").alias("n")).agg(F.sum("n")).first()[0]
        return _executor_repeats(digests_frame, int(counted or 0)).digests, int(counted or 0)

    def in_order(self, function) -> list:
        """``function``'s results (lists of picklable values) on every part, in the registry's
        order, pickled on the executors (values of our own tasks: see :func:`_unpickled`).
        A collect keeps the partitions' order and each one's own: an orderBy would add a job
        that runs every task once more to sample its keys."""
        def pickled(part, table):
            found = function(part, table)
            yield pa.record_batch([pa.array([pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL) for v in found],
                                            pa.binary())], names=["value"])

        return [pickle.loads(row["value"]) for row in self.df.mapInArrow(self._map(pickled), "value binary").collect()]

    def gather(self, function) -> list[list]:
        """In the registry's order: partition by partition, each in its rows' order (a collect
        keeps both: see :meth:`in_order`); or, where the frame says where each row came from (a
        catalogue table), by file and row, so that the first row of a key does not depend on
        how Spark packed the files into partitions (sorted on the driver: the rows gathered
        are those of repeated digests, few)."""
        def found(part, table):
            rows = function(part, table)
            yield pa.record_batch([pa.array([r[0] for r in rows], pa.string()),
                                   pa.array([r[1] for r in rows], pa.string()),
                                   pa.array([r[2] for r in rows], pa.int64())],
                                  names=["key", "source", "row"])

        by_place = not self.pieces_in and {SOURCE, ROW} <= set(self.df.columns)
        rows = [(r["key"], r["source"], r["row"])
                for r in self.df.mapInArrow(self._map(found), "key string, source string, row long").collect()]
        return [sorted(rows, key=lambda r: (r[1], r[2])) if by_place else rows]


def _known_rows(pieces: DataFrame) -> int:
    """The rows of a frame of pieces: as :func:`pieces_frame` wrote them in its ``rows``
    column's metadata (no job: the schema is the driver's), else from the row groups' counts
    (a job of the JVM alone over the pieces' rows, no file read, which cost 1.0-1.8 CPU-s and
    4.5-9 s of wall time a call at load 16 for a number the driver had: 2026-12-07)."""
    field = next((f for f in pieces.schema.fields if f.name == "rows"), None)
    known = (field.metadata or {}).get(_ROWS_TOTAL) if field is not None else None
    if known is not None:
        return int(known)
    return int(pieces.agg(F.sum("rows")).first()[0] or 0)


def _scored_frame(df: DataFrame, plan: Plan, pieces_in: bool) -> tuple[DataFrame, pa.Table]:
    """``df`` scored and persisted, with its partial rows collected (which computes it). The
    first pass scores as if no key repeats and takes the key census on the way; only where
    some key does repeat is the frame scored again, knowing which row of each is the
    enterprise's (a clean registry is read once). Where only digests repeat (two keys of one
    digest: one pair in the bench's 30 M rows), the rows of those digests are read from the
    partitions holding them, their keys found distinct, and the first pass stands: with no
    key written twice, a filter that knows the census keeps every row, as the first did."""
    census = census_key(plan) is not None  # else no declared key: nothing to decide
    rows = _known_rows(df) if census and pieces_in else None
    # where the driver will merge the digests, they come to it beside the job, not through the frame
    sink = (df.sparkSession.sparkContext.accumulator({}, _TaskDigests())
            if rows is not None and rows <= DRIVER_CENSUS_ROWS else None)
    scored = df.mapInArrow(_scorer(plan, pieces_in, census, sink), SCORED).persist(StorageLevel.MEMORY_AND_DISK)
    partials, repeated = _partials_and_repeats(scored, census, sink)
    if not repeated.digests.size:
        return scored, partials
    plan = take_census(plan, _Parts(df, plan, pieces_in, holders=repeated.holders), repeated.digests,
                       _rows_in(partials))
    if not plan.census.rows_of:
        return scored, partials
    scored.unpersist()
    scored = df.mapInArrow(_scorer(plan, pieces_in, False), SCORED).persist(StorageLevel.MEMORY_AND_DISK)
    return scored, _partials_and_repeats(scored, False)[0]


# pickle, knowingly: every blob read back here was written by _scorer in this same Spark application
# (our own executors, the driver's own cached DataFrame), never by a user or a file; it is the
# trust boundary PySpark itself uses for the Python functions it ships to its executors. A
# ScoredBatch holds Arrow arrays, numpy arrays and dicts, which Arrow IPC alone would not carry.
def _unpickled(batches):
    for batch in batches:
        for blob in batch.column("scored").to_pylist():
            yield pickle.loads(blob)


def score(df: DataFrame, policies=None, *, as_of: dt.date, aliases=None, duplicates: str = "reject",
          time_zone: str = TIME_ZONE, pieces_in: bool = False) -> Scored:
    """Score every row of ``df`` (the registry's columns, headers as a local run accepts them;
    ``_source`` and ``_row`` name where each row came from, if the frame has them)."""
    spark = df.sparkSession
    spark.conf.set("spark.sql.session.timeZone", time_zone)
    plan = make_plan(policies, as_of, aliases=aliases, duplicates=duplicates)
    if not pieces_in:  # the columns scoring reads, no others through Arrow to Python
        df = df.select(*[F.col(f"`{c}`") for c in needed_columns(plan, df.columns)])
    batches, partials = _scored_frame(df, plan, pieces_in)
    slot_names = _frames.names(plan)
    totals, counts = _frames.add_partials(partials, slot_names)

    def findings(parts):
        yield from _frames.findings_table(_unpickled(parts), slot_names).to_batches()

    def entries(parts):
        yield from _frames.entries_table(_unpickled(parts), slot_names).to_batches()

    def rejects(parts):
        yield from _frames.rejects_table(_unpickled(parts)).to_batches()

    blobs = batches.filter(F.col("scored").isNotNull()).select("scored")
    money = _DDL[_frames.money_type(slot_names)]
    totals_frame = _literal_rows(spark, [(district, yuan, cases) for district, (yuan, cases) in totals.items()], money)
    return Scored(blobs.mapInArrow(findings, _ddl(_frames.findings_schema(slot_names))),
                  blobs.mapInArrow(entries, _ddl(_frames.ENTRIES_SCHEMA)),
                  blobs.mapInArrow(rejects, _ddl(_frames.REJECTS_SCHEMA)), totals_frame, counts, batches)


def _literal_rows(spark: SparkSession, rows: list[tuple], money: str = "bigint") -> DataFrame:
    """The district totals as a frame made in the JVM from one JSON literal: ``createDataFrame``
    of a list would start a Python worker to read it back, and a literal per value cost a
    Py4J round trip each (three per district). ``money``: bigint yuan, or decimal(22,2); the
    amounts travel as decimal text, cast exactly (a JSON number could pass through a double)."""
    text = json.dumps([{"district": None if district is None else str(district), "deduction_yuan": _plain(yuan),
                        "cases": int(cases)} for district, yuan, cases in rows])
    found = spark.range(1).select(F.inline(F.from_json(
        F.lit(text), "array<struct<district:string,deduction_yuan:string,cases:bigint>>")))
    return found.select("district", F.col("deduction_yuan").cast(money).alias("deduction_yuan"), "cases")


def _plain(amount) -> str:
    """An exact amount (int, or a Decimal of yuan) as decimal text without an exponent."""
    return format(amount, "f") if isinstance(amount, Decimal) else str(int(amount))


_DDL = {pa.string(): "string", pa.int64(): "bigint", pa.date32(): "date", pa.bool_(): "boolean",
        _frames.YUAN_DECIMAL: "decimal(22,2)"}


def _ddl(schema: pa.Schema) -> str:
    return ", ".join(f"`{f.name}` {_DDL[f.type]}" for f in schema)


def pieces_frame(spark: SparkSession, path, plan: Plan, *, recurse: bool = True) -> DataFrame:
    """A Parquet registry as a frame of its pieces (one row group each, one partition each),
    which the executors read themselves, keeping each row's file and row number."""
    found, _registry = pieces(plan, path, recurse=recurse)
    return _frame_of_pieces(spark, [{"path": p.path, "label": p.label, "row_group": p.row_group,
                                     "first_row": p.first_row, "columns": list(p.columns), "rows": p.rows,
                                     "facts": list(p.facts)} for p in found])


_PIECES_DDL = ("path string, label string, row_group int, first_row long, columns array<string>, rows long, "
               "facts array<string>")


def _frame_of_pieces(spark: SparkSession, rows: list[dict]) -> DataFrame:
    # one partition per piece: partition k is piece k, so partition order is the registry's order.
    # One JSON literal, row k of a range picking piece k from it, all in the JVM: a parallelized
    # RDD of Python rows (or a local list, which PySpark re-pickles) was made a frame by a Python
    # job of its own, a task per piece; a literal per field cost a Py4J round trip each (2,300
    # calls for 10 pieces, 1.0 s of the driver's wall time at load 10, session 10); the literal
    # broadcast and joined to the range was a job of its own in every query over the frame.
    # The rows of all the pieces ride in the schema (``rows``'s metadata: _known_rows), and the
    # pieces themselves (``path``'s: _listed_pieces).
    text = json.dumps(rows)
    piece = F.element_at(F.from_json(F.lit(text), f"array<struct<{_struct(_PIECES_DDL)}>>"),
                         (F.col("id") + 1).cast("int"))
    metadata = {"rows": {_ROWS_TOTAL: sum(row["rows"] for row in rows)}, "path": {_PIECES: text}}
    return spark.range(0, len(rows), 1, max(len(rows), 1)).select(
        *[piece[name].alias(name, **({"metadata": metadata[name]} if name in metadata else {}))
          for name in (column.split(" ", 1)[0] for column in _PIECES_DDL.split(", "))])


def _listed_pieces(df: DataFrame) -> list[dict] | None:
    """The pieces of a frame that :func:`pieces_frame` made, in partition order (from its schema)."""
    field = next((f for f in df.schema.fields if f.name == "path"), None)
    text = (field.metadata or {}).get(_PIECES) if field is not None else None
    return json.loads(text) if text is not None else None


def _struct(ddl: str) -> str:
    """A DDL column list (``a long, b string``) as a struct's fields (``a:long,b:string``)."""
    return ",".join(":".join(column.strip().split(" ", 1)) for column in ddl.split(", "))


CATALOGUE = "hive:"  # --registry hive:DB.TABLE: a table of Spark's catalogue (Hive's metastore on a cluster)


def catalogue_table(registry) -> str | None:
    """The table a ``hive:DB.TABLE`` registry names, or None for a path."""
    text = str(registry)
    return text[len(CATALOGUE):] if text.startswith(CATALOGUE) else None


def _numbered(df: DataFrame, name: str) -> DataFrame:
    """``df`` (a catalogue table's frame) with where each row came from: the file and the
    1-based row in it where the table is files Spark reads (Parquet, ORC: its ``_metadata``),
    as a local run names a row (a local file by its path, others by their URI: hdfs://...); else ``hive:NAME`` and the row's 1-based position in the
    order Spark reads the table (a view or a JDBC table has no row order of its own: as a
    PostgreSQL registry's rows are numbered in the order the server sends them), from each
    scan partition's count (one job, in the JVM) and the row's place in its partition."""
    from pyspark.errors import AnalysisException

    try:
        # a file of this machine's file system named as a local run names it (file:/x -> /x)
        return df.select("*", F.regexp_replace(F.col("_metadata.file_path"), "^file:(//)?(?=/)", "").alias("_source"),
                         (F.col("_metadata.row_index") + 1).cast("long").alias("_row"))
    except AnalysisException:  # no files' metadata (raised as the select is analysed)
        pass
    counts = sorted((r["p"], r["count"]) for r in df.select(F.spark_partition_id().alias("p")).groupBy("p").count()
                    .collect())
    offsets, first = [], 0
    for partition, count in counts:
        offsets += [F.lit(partition), F.lit(first)]
        first += count
    offset = F.element_at(F.create_map(*offsets), F.spark_partition_id()) if offsets else F.lit(0)
    within = F.monotonically_increasing_id().bitwiseAND(F.lit((1 << 33) - 1))  # Spark: partition << 33 | position
    return df.select("*", F.lit(CATALOGUE + name).alias("_source"), (offset + within + 1).cast("long").alias("_row"))


def table_frame(spark: SparkSession, name: str, plan: Plan) -> DataFrame:
    """A catalogue table as the frame scoring reads: the columns scoring reads, and where each
    row came from (``_source``, ``_row``: :func:`_numbered`)."""
    df = spark.table(name)
    return _numbered(df.select(*[F.col(f"`{c}`") for c in needed_columns(plan, df.columns)]), name)


def table_fingerprint(spark: SparkSession, name: str) -> str:
    """The content of a catalogue table as a run's input fingerprint: its schema, its row
    count, and a 64-bit hash of each row with where it came from, summed exactly (equal for
    equal rows in the same places; one Spark job, a full scan)."""
    import hashlib

    df = spark.table(name)
    numbered = _numbered(df, name)
    hashed = numbered.select(F.xxhash64(*[F.col(f"`{c}`") for c in numbered.columns]).alias("h"))
    row = hashed.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("h").cast("decimal(38,0)")).alias("s")).collect()[0]
    return hashlib.sha256(f"{CATALOGUE}{name}\n{df.schema.json()}\n{row['n']}\n{row['s']}".encode()).hexdigest()


def table_stat(spark: SparkSession, name: str) -> str:
    """A cheap fingerprint of a catalogue table: the files under it (a write replaces or adds
    part files), as the local run's names, sizes and times of files."""
    import hashlib

    files = sorted(spark.table(name).inputFiles())
    return hashlib.sha256(f"{CATALOGUE}{name}\n".encode() + "\n".join(files).encode()).hexdigest()


def enterprise_rows(spark: SparkSession, path, plan: Plan, link, wanted, names: list[str], *,
                    recurse: bool = True) -> list:
    """The registry's rows whose enterprise a case table names (``plan.needed``: their
    columns), read and picked on the executors, in the registry's order."""
    name = catalogue_table(path)
    if name is not None:
        frame, pieces_in = table_frame(spark, name, plan), False
    else:
        frame, pieces_in = pieces_frame(spark, path, plan, recurse=recurse), True
    return _Parts(frame, plan, pieces_in, list(names)).in_order(
        lambda part, table: part.enterprises(table, link, wanted, names))


def scored_batches(spark: SparkSession, path, plan: Plan, *, recurse: bool = True, time_zone: str = TIME_ZONE,
                   parquet: ParquetOut | None = None):
    """The ScoredBatches of a Parquet registry or a catalogue table (``hive:DB.TABLE``),
    streamed to the driver partition by partition (for writing a results store as a local run
    does); with ``parquet``, their findings, list entries and rejects written first as
    Parquet part files by the executors."""
    spark.conf.set("spark.sql.session.timeZone", time_zone)
    name = catalogue_table(path)
    if name is not None:
        frame, pieces_in = table_frame(spark, name, plan), False
    else:
        frame, pieces_in = pieces_frame(spark, path, plan, recurse=recurse), True
    # scored by all executors at once, then read back in order: toLocalIterator alone runs a
    # job per partition, one after the other
    scored, _partials = _scored_frame(frame, plan, pieces_in)
    try:
        if parquet is not None:
            _write_parquet(scored, plan, parquet)
        for row in scored.filter(F.col("scored").isNotNull()).select("scored").toLocalIterator():
            yield pickle.loads(row["scored"])  # written by _scorer in this job (see _unpickled)
    finally:
        scored.unpersist()


def _write_parquet(scored: DataFrame, plan: Plan, out: ParquetOut) -> int:
    """Each partition's tables written by the executor holding its scored batches, in one
    pass over them (engine/distributed/_parquet_out.py); the rows written."""
    slot_names = _frames.names(plan)

    def write(batches):
        by_number: dict[int, list] = {}
        for batch in batches:
            for number, blob in zip(batch.column("number").to_pylist(), batch.column("scored").to_pylist(),
                                    strict=True):
                by_number.setdefault(number, []).append(pickle.loads(blob))  # written by _scorer (see _unpickled)
        for number, found in by_number.items():
            yield pa.record_batch([pa.array([write_part(out, number, found, slot_names)], pa.int64())], names=["rows"])

    return sum(row["rows"] for row in scored.filter(F.col("scored").isNotNull()).select("number", "scored")
               .mapInArrow(write, "rows long").collect())


__all__ = ["CATALOGUE", "Scored", "catalogue_table", "enterprise_rows", "local_session", "loopback_conf", "pieces_frame", "score",
           "scored_batches", "table_fingerprint", "table_frame", "table_stat"]

