"""``ecorules run --engine spark --cases ...``: the case table judged on the executors.

1. The case rows as a Spark frame: a ``hive:DB.TABLE`` case table read by the executors (its
   rows named by file and row, ``spark._numbered``); CSV or Parquet files read by the
   executors as the local reader reads them (``_case_files.py``: rows named by file and row,
   unreadable lines rejected in its words, which come to the driver); else (Excel, SQLite,
   PostgreSQL) a table the driver read with the local run's reader, handed to Spark.
2. Each row's stripped case_id and enterprise key, on the executors (``_case_parts.keyed``),
   and a repeated case_id decided over the whole table by a Spark window over the case_id:
   each later row learns the first row (the table's order), which may be another enterprise's.
3. The registry's rows of the enterprises the case table names, picked on the executors
   (the distinct keys broadcast), each piece's kept rows as Arrow blobs per part.
4. Cases and registry rows shuffled together by a part number of their enterprise key
   (crc32, so that every case and row of an enterprise meet in one task), each task judging
   its cases by the local run's steps (``_case_parts.judge_part``) in ``mapInArrow``.
5. The parts' results back to the driver pickled, in record batches of one piece each
   (``pieces_of``, ``parts_of``), one partition at a time, each written into the store by
   the local run's ``CaseWriter`` as a partition of the table (``_case_parts.write_parts``).
"""

from __future__ import annotations

import io
import logging
import pickle
import time
import uuid
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from .._sources import ColumnResolver
from . import _case_parts as parts
from ._case_files import UNREADABLE
from ._case_parts import FIRST_ROW, FIRST_SOURCE, KEY, LINK, PART, ROW, SOURCE

FILE = "_file"  # a driver-read table's file, by its place in the table (its rows are in that order)
SIDE, SIDE_SOURCE, NUMBER, SEQ = "_side", "_side_source", "_number", "_seq"
SHIPPED_ROWS = 65_536  # rows per Arrow blob of a driver-read table handed to Spark
# a judged part travels back in pieces of at most this many bytes (an Arrow binary value
# holds under 2 GiB); a site's spark-defaults.conf may say otherwise
PIECE_BYTES, PIECE_SETTING = 64 << 20, "spark.ecorules.cases.pieceBytes"
log = logging.getLogger("ecorules.distributed")
_PLANS: dict[str, object] = {}  # per worker process: the case plan of a run, compiled once


@dataclass
class CaseFrame:
    """The case rows as Spark holds them, and what the driver knows of the table."""

    frame: DataFrame  # the case columns (facts' names), _source, _row (and _file)
    order: tuple[str, ...]  # the columns giving the table's order, as a local run reads it
    headers: dict[str, str]  # fact -> header as written
    sources: list[str]  # the table's files, in its order
    read_rejects: list  # the reader's: a file read by the executors fills it as the parts are judged
    described: list
    warnings: list
    unreadable_rows: int = 0  # rows the reader rejected (a row may have several rejects)
    # a file read by the executors (_case_files.py): Spark's raw batches -> case rows, on the
    # executors, and their schema; rows with an UNREADABLE are the reader's rejects
    prepare: object = None
    prepared: StructType | None = None


def catalogue_frame(spark, name: str, plan, aliases=None) -> CaseFrame:
    """``hive:DB.TABLE``: its needed columns read where the table lies, numbered by file and row."""
    from ._case_table import CATALOGUE
    from .spark import _numbered

    df = spark.table(name)
    headers = [c for c in df.columns if c not in (SOURCE, ROW)]
    found = ColumnResolver(plan.facts, plan.needed(), aliases, optional=plan.optional_columns).resolve(
        f"{CATALOGUE}{name}", headers)
    picked = _numbered(df.select(*[F.col(f"`{headers[i]}`") for i in found.values()]), name)
    columns = [F.col(f"`{headers[found[fact]]}`").alias(fact) if fact in found else F.lit(None).cast("string").alias(fact)
               for fact in plan.case_columns]
    frame = picked.select(*columns, SOURCE, ROW)
    sources = sorted(r[0] for r in frame.select(SOURCE).distinct().collect()) or [f"{CATALOGUE}{name}"]
    return CaseFrame(frame, (SOURCE, ROW), {fact: headers[i] for fact, i in found.items()}, sources, [],
                     [{"source": f"{CATALOGUE}{name}", "format": "table of Spark's catalogue"}], [])


def shipped_frame(spark, cases, plan) -> CaseFrame:
    """A case table the driver read (engine/cases/_table.py's CaseTable) handed to Spark as
    Arrow blobs, which the executors turn into rows of the same types."""
    table = cases.table.select(list(plan.case_columns))
    table = table.cast(pa.schema([(f.name, f.type if f.type in _KEPT else pa.string()) for f in table.schema]))
    sources = pa.array(cases.sources, pa.string()).take(pa.array(cases.source, pa.int32())) if cases.n else \
        pa.array([], pa.string())
    table = (table.append_column(SOURCE, sources).append_column(ROW, pa.array(cases.rows, pa.int64()))
             .append_column(FILE, pa.array(cases.source, pa.int32())))
    blobs = [(_ipc(table.slice(start, SHIPPED_ROWS)),) for start in range(0, table.num_rows, SHIPPED_ROWS)]
    schema = _spark_schema(table.schema)
    arrow_schema = table.schema

    def rows(batches):
        for batch in batches:
            for blob in batch.column(0).to_pylist():
                yield from pa.ipc.open_stream(blob).read_all().cast(arrow_schema).to_batches()

    shipped = spark.createDataFrame(blobs or [(None,)], "blob binary").where(F.col("blob").isNotNull())
    return CaseFrame(shipped.mapInArrow(rows, schema), (FILE, ROW), dict(cases.headers), list(cases.sources),
                     list(cases.read_rejects), list(cases.described), list(cases.warnings),
                     unreadable_rows=cases.rows_in - cases.n)


def files_frame(spark, stage, plan, aliases=None) -> CaseFrame | None:
    """A case table of CSV or Parquet files read by the executors (_case_files.py), or None
    where the driver reads it (Excel, SQLite, PostgreSQL, mixed files: ``shipped_frame``)."""
    from ._case_files import case_rows, file_frame

    files = file_frame(spark, stage, plan, aliases)
    if files is None:
        return None
    made, arrow_schema = case_rows(files, plan.case_columns)
    return CaseFrame(files.frame, (FILE, ROW), files.headers, files.sources or [str(stage.path)], [],
                     files.described, files.warnings, prepare=made, prepared=_spark_schema(arrow_schema))


_KEPT = {pa.string(), pa.int64(), pa.int32(), pa.float64(), pa.bool_(), pa.date32()}


def _spark_schema(schema: pa.Schema) -> StructType:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return sink.getvalue()


def _plan_of(token: str, policies, as_of, compile_program):
    """The case plan, compiled once per worker process and run from the policies, which
    travel with the task (the plan holds compiled kernels: made where it runs, not shipped)."""
    plan = _PLANS.get(token)
    if plan is None:
        from .._nightly import DOMAIN
        from ..cases import make_plan

        _PLANS.clear()
        plan = _PLANS[token] = make_plan(policies, DOMAIN, as_of, compile_program)
    return plan


def judged_parts(spark, cases: CaseFrame, plan, *, policies, as_of, compile_program, checked: tuple[str, ...],
                 registry_frame: DataFrame, registry_plan, pieces_in: bool, aliases=None):
    """The judged parts (``_case_parts.PartResult``), streamed to the driver partition by partition."""
    from ._partition import Part
    from .spark import _Parts

    tasks = max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))
    piece_bytes = int(spark.conf.get(PIECE_SETTING, str(PIECE_BYTES)))
    if not 0 < piece_bytes < 1 << 31:
        raise ValueError(f"{PIECE_SETTING} must be from 1 to 2 GiB - 1 bytes, got {piece_bytes}")
    virtual = tasks * parts.PARTS_PER_TASK
    token = uuid.uuid4().hex
    key_name, link_name, link_fact = plan.kind.key, plan.link, plan.facts[plan.link]  # not the plan: it does not travel
    frame, prepare = cases.frame, cases.prepare
    fields = cases.prepared.fields if cases.prepared is not None else frame.schema.fields

    def with_keys(batches):
        for batch in prepare(batches) if prepare is not None else batches:
            key, link = parts.keyed(pa.Table.from_batches([batch]), key_name, link_fact)
            if UNREADABLE in batch.schema.names:  # a row the reader rejects has no case_id or enterprise
                readable = pc.is_null(batch.column(UNREADABLE))
                key = pc.if_else(readable, key, pa.scalar(None, key.type))
                link = pc.if_else(readable, link, pa.scalar(None, link.type))
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, key, link, pa.array(parts.part_numbers(link, virtual), pa.int32())],
                names=[*batch.schema.names, KEY, LINK, PART])

    schema = StructType([*fields, StructField(KEY, StringType()), StructField(LINK, StringType()),
                         StructField(PART, IntegerType())])
    keyed = frame.mapInArrow(with_keys, schema)
    # a repeated case_id, over the whole table (a shuffle by case_id): each row learns the first
    # row of its case_id in the table's order, which may be another enterprise's (one sort of
    # the rows, where an aggregate of the repeated case_ids joined back reads the rows twice)
    first = F.min(F.struct(*[F.col(c) for c in cases.order], F.col(SOURCE).alias("s"), F.col(ROW).alias("r"))) \
        .over(Window.partitionBy(KEY))
    repeated = keyed.withColumn("_first", F.when(F.col(KEY).isNotNull(), first))
    later = F.col("_first").isNotNull() & ((F.col("_first.s") != F.col(SOURCE)) | (F.col("_first.r") != F.col(ROW)))
    case_rows = repeated.select(*[F.col(f"`{f.name}`") for f in fields], KEY, LINK, PART,
                                F.when(later, F.col("_first.s")).alias(FIRST_SOURCE),
                                F.when(later, F.col("_first.r")).cast("long").alias(FIRST_ROW))
    case_rows = case_rows.persist(StorageLevel.MEMORY_AND_DISK)
    persisted = case_rows
    began = time.perf_counter()
    try:
        if cases.prepared is not None:  # the reader's rejects (few) to the driver; the rest is judged
            from ._case_files import read_rejects

            unreadable = F.col(UNREADABLE).isNotNull()
            cases.read_rejects[:], cases.unreadable_rows = read_rejects(
                case_rows.where(unreadable).select(SOURCE, ROW, FILE, UNREADABLE).collect())
            case_rows = case_rows.where(~unreadable).drop(UNREADABLE)
        # the distinct enterprise keys, and the case rows in all (what the parts must add up to)
        named = case_rows.groupBy(LINK).count().collect()
        keys = pa.array([r[0] for r in named if r[0] is not None], pa.string())
        case_count = sum(r[1] for r in named)
        wanted = spark.sparkContext.broadcast(keys)
        log.info("cases on spark: %d enterprises named, case_ids decided, in %.2f s", len(keys),
                 time.perf_counter() - began)
        names = list(dict.fromkeys((link_name, *checked)))

        def side_blobs(part: Part, table: pa.Table):
            from ..cases._table import linked

            for kept, source, rows in part.enterprises(table, link_fact, wanted.value, names):
                numbers = parts.part_numbers(linked(link_fact, kept[link_name]), virtual)
                for number in np.unique(numbers).tolist():
                    at = np.flatnonzero(numbers == number)
                    piece = kept.take(pa.array(at)).append_column(ROW, pa.array(rows[at], pa.int64()))
                    yield pa.record_batch([pa.array([number], pa.int32()), pa.array([part.number], pa.int32()),
                                           pa.array([source], pa.string()), pa.array([_ipc(piece)], pa.binary())],
                                          names=[PART, NUMBER, SIDE_SOURCE, SIDE])

        reader = _Parts(registry_frame, registry_plan, pieces_in, names)
        side = (reader.df.mapInArrow(reader._map(side_blobs),
                                     f"{PART} int, {NUMBER} int, {SIDE_SOURCE} string, {SIDE} binary")
                .withColumn(SEQ, F.monotonically_increasing_id()))
        together = case_rows.unionByName(side, allowMissingColumns=True).repartition(tasks, PART)
        judge = _judge(token, policies, as_of, compile_program, checked, cases.order, cases.headers, aliases,
                       piece_bytes)
        results = together.mapInArrow(judge, "task int, piece int, pieces int, part binary") \
            .persist(StorageLevel.MEMORY_AND_DISK)
        try:
            began = time.perf_counter()
            judged_tasks = results.count()  # every task judged at once; then read back one partition at a time
            log.info("cases on spark: %d tasks judged in %.2f s", judged_tasks, time.perf_counter() - began)
            judged, rows_in = False, 0
            for part in parts_of(results.toLocalIterator()):
                judged = True
                rows_in += part.results.rows_in
                yield part
            if rows_in != case_count:  # every case row in exactly one part, or the run fails
                raise parts.PartsError(f"the judged parts hold {rows_in:,} case rows, the case table "
                                       f"{case_count:,}")
            if not judged:  # no case row at all: an empty table is judged as a local run judges it
                empty = pa.table({fact: pa.array([], pa.string()) for fact in plan.case_columns})
                yield parts.judge_part(plan, parts.case_table(empty, plan, cases.headers, pa.array([], pa.string()),
                                                              np.zeros(0, np.int64)),
                                       [], pa.array([], pa.string()), np.zeros(0, np.int64), tuple(checked),
                                       as_of=as_of, aliases=aliases)
        finally:
            results.unpersist()
            wanted.unpersist()
    finally:
        persisted.unpersist()


def _judge(token, policies, as_of, compile_program, checked, order, headers, aliases, piece_bytes):
    def judge(batches):
        from .spark import _number

        plan = _plan_of(token, policies, as_of, compile_program)
        table = pa.Table.from_batches(list(batches))
        if not table.num_rows:
            return
        is_case = pc.is_null(table[SIDE])
        cases = table.filter(is_case)
        if not cases.num_rows:
            return
        cases = cases.take(pc.sort_indices(cases, [(c, "ascending") for c in order]))
        side = table.filter(pc.invert(is_case))
        side = side.take(pc.sort_indices(side, [(NUMBER, "ascending"), (SEQ, "ascending")]))
        side_rows = []
        for source, blob in zip(side[SIDE_SOURCE].to_pylist(), side[SIDE].to_pylist(), strict=True):
            piece = pa.ipc.open_stream(blob).read_all()
            rows = np.asarray(piece[ROW].to_numpy(), np.int64)
            side_rows.append((piece.drop_columns([ROW]), source, rows))
        case_table = parts.case_table(cases, plan, headers, cases[SOURCE].combine_chunks().cast(pa.string()),
                                      np.asarray(cases[ROW].to_numpy(), np.int64))
        first_source = cases[FIRST_SOURCE].combine_chunks().cast(pa.string())
        first_row = np.asarray(cases[FIRST_ROW].fill_null(0).to_numpy(), np.int64)
        found = parts.judge_part(plan, case_table, side_rows, first_source, first_row, tuple(checked), as_of=as_of,
                                 aliases=aliases)
        yield from pieces_of(_number(), pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL), piece_bytes)
    return judge


def pieces_of(task: int, blob: bytes, piece_bytes: int):
    """A judged part's pickle as record batches of one piece each, at most ``piece_bytes``
    (an Arrow binary value holds under 2 GiB, and a part may hold millions of cases), each
    piece a view of the pickle until Arrow copies it into its batch."""
    view = memoryview(blob)
    count = max(1, -(-len(blob) // piece_bytes))
    for k in range(count):
        piece = view[k * piece_bytes:(k + 1) * piece_bytes]
        offsets = pa.py_buffer(np.array([0, len(piece)], np.int32))
        value = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(piece)])
        yield pa.record_batch([pa.array([task], pa.int32()), pa.array([k], pa.int32()), pa.array([count], pa.int32()),
                               value], names=["task", "piece", "pieces", "part"])


def parts_of(rows):
    """The judged parts from their pieces (``pieces_of``), in the order the rows bring them:
    a task's pieces one after another, as its partition gives them."""
    held: list[bytes] = []
    task = None
    for row in rows:
        if row["piece"] != len(held) or (held and row["task"] != task):
            raise parts.PartsError(f"piece {row['piece']} of task {row['task']}'s part came after {len(held)} pieces"
                                   f"{'' if not held else f' of task {task}'}")
        task = row["task"]
        held.append(row["part"])
        if len(held) == row["pieces"]:
            # pickle, knowingly: written by _judge in this same Spark application (as spark._unpickled)
            blob = held[0] if len(held) == 1 else b"".join(held)
            held = []
            yield pickle.loads(blob)
            del blob
    if held:
        raise parts.PartsError(f"task {task}'s part ended after {len(held)} of its pieces")


__all__ = ["CaseFrame", "catalogue_frame", "files_frame", "judged_parts", "shipped_frame"]
