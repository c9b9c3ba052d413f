"""``ecorules run --engine dask --cases ...``: the case table judged on the Dask workers, as
``_spark_cases.py`` judges it on Spark's executors, by the same steps (``_case_parts.py``).

1. Each file of the case table is read by a worker with the local run's reader (its
   encodings, unreadable lines, headers and row numbers: engine/cases/_table.py's
   ``CaseReading``), so that the checks and the rejects' rows are the local run's. A table
   without files (PostgreSQL) is read by the driver and handed to the workers.
2. Each row's stripped case_id and enterprise key (``_case_parts.keyed``) on the worker that
   read it. A repeated case_id is decided over the whole table: the (case_id, file, row) of
   every row are shuffled by a hash of the case_id (Dask's shuffle), and each output partition
   finds its later rows and the first row each repeats, which may be another enterprise's.
3. The registry's rows of the enterprises the case table names, picked by the workers from
   the registry's row groups (the distinct keys scattered to them).
4. Cases, registry rows and repeats shuffled together by a part number of the enterprise key
   (crc32: ``_case_parts.part_numbers``), so that every case of an enterprise and its registry
   rows meet in one partition, which ``map_partitions`` judges by the local run's steps
   (``_case_parts.judge_part``).
5. The judged parts come back to the driver as Arrow (a binary column of the pickled part),
   one partition at a time, and are written into the store as a local run writes the table.

What travels through Dask's shuffles are Arrow IPC blobs (a file's rows of one part number,
or one bucket of case_ids), one frame row each: the case columns keep the types the local
reader gave them (a Parquet date stays a date, a CSV cell text), never a pandas conversion.
"""

from __future__ import annotations

import io
import logging
import math
import os
import pickle
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._sources import ColumnResolver, Registry
from ..cases._table import CaseReading, _concat, repeats
from . import _case_parts as parts
from ._case_parts import ROW

log = logging.getLogger("ecorules.distributed")

FILE = "_file"  # a case row's file, by its place in the table (the table's order: file, then row)
FIRST_FILE = "_first_file"  # the file of the row a repeated case_id repeats
ROLE, PART, ORDER, SEQ, SIDE_SOURCE, BLOB = "_role", "_part", "_order", "_seq", "_side_source", "_blob"
CASES, SIDE, REPEATS, KEYS = 0, 1, 2, 3  # what a blob holds
ROWS_PER_TASK = 250_000  # case rows per judging partition (at least two partitions per worker)
CSV_ROW_BYTES = 100  # a text file's bytes per case row, for the partition count only
_PLANS: dict[str, object] = {}  # per worker process: the case plan of a run, compiled once

_BLOBS = pa.schema([(ROLE, pa.int8()), (PART, pa.int32()), (ORDER, pa.int64()), (SEQ, pa.int64()),
                    (SIDE_SOURCE, pa.string()), (BLOB, pa.binary())])
BLOBS_META = _BLOBS.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
JUDGED_META = pa.schema([("part", pa.binary())]).empty_table().to_pandas(types_mapper=pd.ArrowDtype)


@dataclass
class Job:
    """What a worker needs to make the run's case plan itself (a compiled program does not
    travel: it is compiled where it runs, once per worker process and run)."""

    token: str
    policies: object
    as_of: object
    compile_program: object
    aliases: object = None

    def __dask_tokenize__(self):
        # the run's own token: Dask would otherwise pickle the policies to name every task
        return self.token

    def plan(self):
        plan = _PLANS.get(self.token)
        if plan is None:
            from .._nightly import DOMAIN
            from ..cases import make_plan

            _PLANS.clear()
            plan = _PLANS[self.token] = make_plan(self.policies, DOMAIN, self.as_of, self.compile_program)
        return plan


@dataclass
class FileRead:
    """One file of the case table as a worker read it: what the driver learns of it (all but
    ``blobs``: a few values, and the reader's rejects), and its rows in blobs by part number."""

    rank: int
    sources: list[str]  # [its label] if it had a batch, else [] (as CaseReading counts sources)
    headers: dict[str, str]
    read_rejects: list
    rows_in: int
    n: int  # readable rows
    schema: pa.Schema | None  # of its case columns
    described: list[dict[str, str]]
    warnings: list[str]
    links: pa.Array  # the distinct enterprise keys its rows name
    blobs: pd.DataFrame | None = None  # CASES blobs by part number
    keys: pd.DataFrame | None = None  # KEYS blobs by case_id bucket

    def about(self) -> FileRead:
        return FileRead(self.rank, self.sources, self.headers, self.read_rejects, self.rows_in, self.n, self.schema,
                        self.described, self.warnings, self.links)


@dataclass
class CaseReadingDone:
    """What reading the case table found, for the driver's writing (``_case_parts.write_parts``)."""

    sources: list[str]
    headers: dict[str, str]
    read_rejects: list
    described: list
    warnings: list
    rows: int  # readable rows
    unreadable_rows: int  # rows the reader rejected (a row may have several rejects)
    schema: pa.Schema
    links: pa.Array
    labels: list[str]  # each file's name in rejects, by its place in the table (a row's FILE)
    files: list = field(default_factory=list)  # futures of FileRead, in the table's order
    token: str = ""  # the run's (Job.token): what names the tasks it is handed to

    def __dask_tokenize__(self):
        return self.token


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return sink.getvalue()


def _unipc(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(blob).read_all()


def _blobs(role: int, groups: list[tuple[int, int, int, str, bytes]]) -> pd.DataFrame:
    """A frame of blobs: (part, order, seq, side source, blob) each."""
    columns = list(zip(*groups, strict=True)) if groups else [[], [], [], [], []]
    table = pa.table([pa.array([role] * len(groups), pa.int8()), pa.array(columns[0], pa.int32()),
                      pa.array(columns[1], pa.int64()), pa.array(columns[2], pa.int64()),
                      pa.array(columns[3], pa.string()), pa.array(columns[4], pa.binary())], schema=_BLOBS)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _split(table: pa.Table, numbers: np.ndarray) -> list[tuple[int, pa.Table]]:
    """``table``'s rows by their number, each number's in the table's order (one take, then
    slices)."""
    if not numbers.size:
        return []
    order = np.argsort(numbers, kind="stable")
    grouped = table.take(pa.array(order))
    sorted_numbers = numbers[order]
    starts = np.flatnonzero(np.r_[True, sorted_numbers[1:] != sorted_numbers[:-1]])
    ends = np.r_[starts[1:], order.size]
    return [(int(sorted_numbers[a]), grouped.slice(int(a), int(b - a))) for a, b in zip(starts, ends, strict=True)]


def read_file(spec: tuple, rank: int, job: Job, options: dict, tasks: int) -> FileRead:
    """One file (``spec``: its path and table or sheet, as listed) read by the local run's
    reader on a worker, keyed, and cut into blobs by part number and by case_id bucket."""
    plan = job.plan()
    path, file_table = spec
    resolver = ColumnResolver(plan.facts, plan.needed(), job.aliases, optional=plan.optional_columns)
    registry = Registry(path, resolver, encoding=options.get("encoding"), table=file_table,
                        batch_rows=options["batch_rows"])
    reading = CaseReading()
    tables, rows = [], []
    for _source, numbers, cases in reading.batches(registry, plan):
        tables.append(cases)
        rows.append(np.asarray(numbers, np.int64))
    table = _concat(tables, plan.case_columns)
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    read = FileRead(rank, list(reading.sources), dict(reading.headers), list(reading.read_rejects), reading.rows_in,
                    table.num_rows, table.schema, registry.described(),
                    registry.warnings,
                    pa.array([], pa.string()))
    return _keyed(read, table, rows, plan, tasks)


def shipped_file(cases, plan, tasks: int) -> FileRead:
    """A case table the driver read (``CaseStage.read``: a PostgreSQL table or query), as one file."""
    return _keyed(FileRead(0, list(cases.sources), dict(cases.headers), list(cases.read_rejects), cases.rows_in,
                           cases.n, cases.table.schema, list(cases.described), list(cases.warnings),
                           pa.array([], pa.string())),
                  cases.table, np.asarray(cases.rows, np.int64), plan, tasks,
                  files=np.asarray(cases.source, np.int32))


def _keyed(read: FileRead, table: pa.Table, rows: np.ndarray, plan, tasks: int, files=None) -> FileRead:
    key, link = parts.keyed(table, plan.kind.key, plan.facts[plan.link])
    read.links = pc.unique(link.filter(pc.is_valid(link)))
    numbers = parts.part_numbers(link, tasks)
    files = np.full(table.num_rows, read.rank, np.int32) if files is None else files
    numbered = table.append_column(FILE, pa.array(files, pa.int32())).append_column(ROW, pa.array(rows, pa.int64()))
    read.blobs = _blobs(CASES, [(number, read.rank, 0, "", _ipc(piece)) for number, piece in _split(numbered, numbers)])
    has_key = np.asarray(pc.is_valid(key))
    keys = pa.table({"key": key, FILE: pa.array(files, pa.int32()), ROW: pa.array(rows, pa.int64()),
                     PART: pa.array(numbers, pa.int32())}).filter(pa.array(has_key))
    buckets = parts.part_numbers(keys["key"].combine_chunks(), tasks)
    read.keys = _blobs(KEYS, [(bucket, read.rank, 0, "", _ipc(piece)) for bucket, piece in _split(keys, buckets)])
    return read


def _blobs_of(read: FileRead) -> pd.DataFrame:
    return read.blobs


def _keys_of(read: FileRead) -> pd.DataFrame:
    return read.keys


def _about(read: FileRead) -> FileRead:
    return read.about()


def repeated_case_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """A bucket of case_ids (every row of each, from every file): its later rows, each with
    the first row of its case_id in the table's order, as REPEATS blobs by the later row's
    part number (where its case is judged)."""
    if not len(frame):
        return BLOBS_META
    keys = pa.concat_tables([_unipc(blob) for blob in frame[BLOB].tolist()])
    codes = np.asarray(pc.dictionary_encode(keys["key"]).combine_chunks().indices, np.int64)
    files, rows = np.asarray(keys[FILE], np.int64), np.asarray(keys[ROW], np.int64)
    later, first = repeats(np.lexsort((rows, files, codes)), codes)
    if not later.size:
        return BLOBS_META
    found = pa.table({FILE: pa.array(files[later], pa.int32()), ROW: pa.array(rows[later]),
                      FIRST_FILE: pa.array(files[first], pa.int32()), parts.FIRST_ROW: pa.array(rows[first])})
    numbers = np.asarray(keys[PART], np.int32)[later]
    return _blobs(REPEATS, [(number, 0, 0, "", _ipc(piece)) for number, piece in _split(found, numbers)])


def side_blobs(piece, number: int, *, plan, link, wanted, names: list[str], tasks: int) -> pd.DataFrame:
    """The rows of a registry row group whose enterprise the case table names, as SIDE blobs
    by part number (``order``: the row group, ``seq``: the batch in it: the registry's order)."""
    from ..cases._table import linked
    from ._partition import Part
    from ._pieces import read_piece

    groups = []
    for seq, (kept, source, rows) in enumerate(Part(plan, number).enterprises(read_piece(piece, names), link, wanted,
                                                                            names)):
        numbers = parts.part_numbers(linked(link, kept[link.name]), tasks)
        kept = kept.append_column(ROW, pa.array(rows, pa.int64()))
        groups += [(part, number, seq, source, _ipc(piece)) for part, piece in _split(kept, numbers)]
    return _blobs(SIDE, groups)


def judge(frame: pd.DataFrame, job: Job, reading: CaseReadingDone, checked: tuple[str, ...]) -> pd.DataFrame:
    """A partition of whole enterprises judged by the local run's steps; its result as one
    Arrow binary value (the pickled ``PartResult``), or no row where it has no case."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    roles = np.asarray(table[ROLE], np.int8)
    case_blobs = [_unipc(b) for b in table[BLOB].filter(pa.array(roles == CASES)).to_pylist()]
    if not case_blobs:
        return JUDGED_META
    schema = pa.schema([*reading.schema, pa.field(FILE, pa.int32()), pa.field(ROW, pa.int64())])
    cases = pa.concat_tables([b.cast(schema) for b in case_blobs])
    cases = cases.take(pc.sort_indices(cases, [(FILE, "ascending"), (ROW, "ascending")]))
    files, rows = np.asarray(cases[FILE], np.int64), np.asarray(cases[ROW], np.int64)
    sources = pa.array(reading.labels, pa.string())
    first_source, first_row = _first_rows(table, roles, files, rows, sources)
    side = table.filter(pa.array(roles == SIDE))
    side = side.take(pc.sort_indices(side, [(ORDER, "ascending"), (SEQ, "ascending")]))
    side_rows = []
    for source, blob in zip(side[SIDE_SOURCE].to_pylist(), side[BLOB].to_pylist(), strict=True):
        piece = _unipc(blob)
        side_rows.append((piece.drop_columns([ROW]), source, np.asarray(piece[ROW], np.int64)))
    plan = job.plan()
    case_table = parts.case_table(cases, plan, reading.headers, sources.take(pa.array(files)), rows)
    found = parts.judge_part(plan, case_table, side_rows, first_source, first_row, checked, as_of=job.as_of,
                             aliases=job.aliases)
    return pa.table({"part": pa.array([_pickled(found)], pa.binary())}).to_pandas(types_mapper=pd.ArrowDtype)


def _first_rows(table: pa.Table, roles: np.ndarray, files: np.ndarray, rows: np.ndarray,
                sources: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Per case row (``files``, ``rows``: the partition's, in the table's order), the source
    and row its case_id repeats (null source: it does not repeat)."""
    first_file = np.full(rows.size, -1, np.int64)
    first_row = np.zeros(rows.size, np.int64)
    notes = [_unipc(b) for b in table[BLOB].filter(pa.array(roles == REPEATS)).to_pylist()]
    if notes:
        found = pa.concat_tables(notes)
        places = (files << 40) | rows  # a row's place: its file, then its row (rows < 2**40), ascending
        later = (np.asarray(found[FILE], np.int64) << 40) | np.asarray(found[ROW], np.int64)
        at = np.minimum(np.searchsorted(places, later), max(places.size - 1, 0))
        if places.size == 0 or np.any(places[at] != later):
            raise parts.PartsError("a repeated case_id's row is not among its part's cases")
        first_file[at] = np.asarray(found[FIRST_FILE], np.int64)
        first_row[at] = np.asarray(found[parts.FIRST_ROW], np.int64)
    repeated = first_file >= 0
    first_source = sources.take(pa.array(np.where(repeated, first_file, 0))) if len(sources) else \
        pa.nulls(rows.size, pa.string())
    return pc.if_else(pa.array(repeated), first_source, pa.scalar(None, pa.string())), first_row


def _pickled(found) -> bytes:
    """The judged part for the driver: its compiled program's slots pickle as the calls that
    made them (fastcalc/_compiled.py's ``_Slot.__getnewargs__``), so plain pickle does."""
    return pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL)


def _schema(reads: list[FileRead], plan) -> pa.Schema:
    """One schema of the case columns for every file, as the local reader's whole table has
    (``_table._concat``: types unified, or all text where files disagree)."""
    schemas = [r.schema for r in reads if r.schema is not None and r.n]
    if not schemas:
        return pa.schema([(name, pa.string()) for name in plan.case_columns])
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.schema([(name, pa.string()) for name in plan.case_columns])


def read_cases(client, stage, plan, job: Job, tasks: int) -> CaseReadingDone:
    """The case table read on the workers, a file each (or by the driver: a table without
    files), and what the driver must know of it, the files' rows staying on the workers."""
    if stage.files:
        options = {"encoding": stage.encoding, "batch_rows": stage.batch_rows}
        futures = client.map(read_file, [tuple(f) for f in stage.files], list(range(len(stage.files))), job=job,
                             options=options, tasks=tasks, pure=False)
    else:
        futures = [client.scatter(shipped_file(stage.read(), plan, tasks), hash=False)]
    reads = client.gather(client.map(_about, futures, pure=False))
    sources, headers, rejects, described, warnings = [], {}, [], [], list(stage.warnings)
    for read in reads:  # as CaseReading and Registry put them together over the files in order
        sources += [s for s in read.sources if s not in sources]
        for name, header in read.headers.items():
            headers.setdefault(name, header)
        rejects += read.read_rejects
        described += read.described
        warnings += read.warnings
    if not stage.files:
        sources, warnings = reads[0].sources, reads[0].warnings
    links = [r.links for r in reads if len(r.links)]
    labels = [read.sources[0] if read.sources else str(spec[0]) for read, spec in zip(reads, stage.files, strict=True)] \
        if stage.files else list(reads[0].sources)
    return CaseReadingDone(sources or [str(stage.path)], headers, rejects, described, warnings,
                           sum(r.n for r in reads), sum(r.rows_in - r.n for r in reads), _schema(reads, plan),
                           pc.unique(pa.concat_arrays(links)) if links else pa.array([], pa.string()), labels, futures,
                           job.token)


def judged_parts(client, reading: CaseReadingDone, plan, job: Job, *, checked: tuple[str, ...], registry_path,
                 registry_plan, recurse: bool, tasks: int):
    """The judged parts (``_case_parts.PartResult``), brought to the driver a partition at a time."""
    import dask.dataframe as dd
    from distributed import futures_of

    from ._pieces import pieces

    began = time.perf_counter()
    link = plan.facts[plan.link]
    names = list(dict.fromkeys((plan.link, *checked)))
    wanted = client.scatter(reading.links, broadcast=True, hash=False)  # a key of its own: never an earlier run's released one
    found, _registry = pieces(registry_plan, registry_path, recurse=recurse)
    side = client.map(side_blobs, found, list(range(len(found))), plan=registry_plan, link=link, wanted=wanted,
                      names=names, tasks=tasks, pure=False)
    cases = client.map(_blobs_of, reading.files, pure=False)
    keys = client.map(_keys_of, reading.files, pure=False)
    repeated = _by_part(dd.from_delayed(keys, meta=BLOBS_META, verify_meta=False), tasks).map_partitions(
        repeated_case_ids, meta=BLOBS_META)
    frames = [dd.from_delayed(cases, meta=BLOBS_META, verify_meta=False), repeated]
    if side:
        frames.append(dd.from_delayed(side, meta=BLOBS_META, verify_meta=False))
    together = dd.concat(frames)
    judged = _by_part(together, tasks).map_partitions(judge, job, _light(reading), checked, meta=JUDGED_META)
    # the partitions judged at once, each read back in turn and then let go on its worker (the
    # last reference to its future dropped), so the driver holds one judged partition at a time
    futures = list({future.key: future for future in futures_of(judged.persist())}.values())
    # the files' rows and blobs let go on the workers once the shuffles have taken them
    del judged, together, frames, repeated, cases, keys, side
    reading.files = []
    try:
        any_case = False
        for k in range(len(futures)):
            future, futures[k] = futures[k], None
            frame = future.result()
            del future
            for blob in frame["part"].tolist():
                any_case = True
                # pickle, knowingly: made by ``judge`` on this run's own cluster, for this driver
                yield pickle.loads(blob)
        log.info("cases on dask: %d partitions judged in %.2f s", len(futures), time.perf_counter() - began)
        if not any_case:  # no case row at all: an empty table is judged (on a worker) as a local run judges it
            empty = client.submit(_empty_blobs, reading.schema, pure=False)
            frame = client.submit(judge, empty, job, _light(reading), checked, pure=False).result()
            # pickle, knowingly: the same source as above, ``judge`` on this run's own cluster
            # (its empty part), submitted by this driver a line ago; no file or user wrote it
            yield from (pickle.loads(blob) for blob in frame["part"].tolist())
    finally:
        del futures, wanted


def _by_part(blobs, tasks: int):
    """Blobs shuffled by their part number (Dask's shuffle), part k into partition k: every
    case of an enterprise, its registry rows and its repeats meet in one partition, and the
    parts (crc32 of the key) spread evenly, where hashing a few part numbers again would not."""
    return blobs.set_index(PART, divisions=(*range(tasks), tasks - 1) if tasks > 1 else (0, 0), shuffle_method="tasks")


def _empty_blobs(schema: pa.Schema) -> pd.DataFrame:
    """A partition of no case rows, for the judging of an empty table."""
    empty = pa.schema([*schema, pa.field(FILE, pa.int32()), pa.field(ROW, pa.int64())]).empty_table()
    return _blobs(CASES, [(0, 0, 0, "", _ipc(empty))])


def _light(reading: CaseReadingDone) -> CaseReadingDone:
    """What a judging task needs of the reading (not its rejects, not the files' futures)."""
    return CaseReadingDone(reading.sources, reading.headers, [], [], [], reading.rows, 0, reading.schema,
                           pa.array([], pa.string()), reading.labels, token=reading.token)


def partitions(client, stage) -> int:
    """Judging partitions: at least two per worker, about ROWS_PER_TASK case rows each at
    most, decided before the table is read (its rows are cut by partition as they are read):
    a Parquet file's rows from its footer, another file's guessed from its size."""
    import pyarrow.parquet as pq

    rows = 0
    for path, _table in stage.files:
        try:
            rows += pq.read_metadata(path).num_rows
        except (OSError, pa.ArrowException):
            rows += os.path.getsize(path) // CSV_ROW_BYTES
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    return max(2 * workers, math.ceil(rows / ROWS_PER_TASK))


def new_job(policies, as_of, compile_program, aliases) -> Job:
    return Job(uuid.uuid4().hex, policies, as_of, compile_program, aliases)


__all__ = ["CaseReadingDone", "Job", "judged_parts", "new_job", "partitions", "read_cases"]
