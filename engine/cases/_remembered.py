"""The memory of earlier assessments (``_assessed.py``) read a partition at a time.

Read whole, every assessment of every earlier run was held through the case stage (~260
bytes an assessment: the second night of 2 M cases peaked at 1561 MiB where the first peaked
at ~900, bench/cases_memory.py). The case table is judged a partition at a time, every case
of an enterprise in one (``_spill.py``); its memory follows it:

1. the store's chunks of assessments (the findings of slots marked ``assessed``, and
   ``assessed_chunks``) are read one at a time (PostgreSQL: from a server-side cursor) into
   bucket files by a hash of their case_id, in the spill's folder (removed with it, a killed
   run's by the next run);
2. the case_ids the table lists are read from its spilled buckets into the same case_id
   buckets, each with the (enterprise) bucket it is listed in;
3. per case_id bucket, each (policy id, rule, kind) and case keeps its current assessment
   (the row of its newest run, none where that row withdrew it), which goes to every bucket
   that lists its case (a case_id listed twice: the duplicate is rejected, its partition
   never asks) and, a fine of a named act (act_id), to the bucket of its act's enterprise as
   well: this run's fines of the act are there (one act one fine across runs,
   ``_earlier_fines.py``). An assessment of a case the table does not list, unless a fine
   of a named act, is no partition's concern: only its case would meet it;
4. a partition reads its buckets' assessments, and only those.

What a partition cannot see is another partition's cases: a fine remembered of a named act
whose case is now listed under another enterprise (its uscc corrected) is in the act's
partition judged by the decision dates listed there, so that a new decision date of that
moved case does not take the fine back from the act's other cases (read whole, it did).

A case table read whole (a cluster's, ``CaseStage.read`` overridden) reads the memory whole,
as one partition.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import namedtuple
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.fastcalc._cases import TextCodes, bucket_places
from ecorules.rules import FindingKind
from ecorules.rules._arrow import (
    bools,
    distinct_sorted,
    empty_table,
    from_bools,
    from_numbers,
    numbers,
    string_buffers,
    string_scalar,
    strings,
)

from .. import store
from .._lists import _optional_strings
from ._memory_rows import assessment_columns
from ._spill import _Buckets, _read, text_hashes
from ._table import _stripped

_FINE = FindingKind.FINE.value
_WITHDRAWN = "withdrawn"
# a row of the memory: which (policy id, rule, kind) (``keys``), case, run, 0 a finding or 1 a
# row of assessed_chunks, the order read (a run's rows of one source: the first wins),
# whether it withdrew the assessment, the case's decision date, and of a fine the act
# (uscc, act_id), the policy version and the amount in fen
_SCHEMA = pa.schema([("key", pa.int32()), ("case_id", pa.string()), ("run", pa.int64()), ("source", pa.int8()),
                     ("seq", pa.int64()), ("withdrawn", pa.bool_()), ("decided", pa.string()), ("uscc", pa.string()),
                     ("act", pa.string()), ("version", pa.string()), ("fen", pa.int64())])
# what a partition reads of a current assessment, and its number (the same row routed to two
# buckets of a partition is one)
_ROUTED = pa.schema([_SCHEMA.field(n) for n in ("key", "case_id", "run", "decided", "uscc", "act", "version", "fen")]
                    + [("id", pa.int64())])
_LISTED = pa.schema([("case_id", pa.string()), ("bucket", pa.int32())])
# a table of one bucket reads the memory whole up to this many assessments a case of the table
# (at least _WHOLE_LEAST), routes it beyond (``Remembered.route``); read when called (a test
# sets 0)
_WHOLE_PER_CASE = 4
_WHOLE_LEAST = 1 << 16


class Remembered:
    """The memory of earlier runs as a run reads it: whole (``whole``), or routed to the
    spilled case table's buckets (``route``) and read a partition at a time (``of``)."""

    def __init__(self, connection, exclude: int | None):
        self.connection, self.exclude = connection, exclude
        self.keys: dict[tuple[str, str, str], int] = {}  # (policy id, rule, kind) -> its code in the rows
        self._folder: Path | None = None
        self._routed: list[list[Path]] | None = None
        self._read_whole: pa.Table | None = None  # (the current assessments read by ``route``, for ``whole``)

    @property
    def routed(self) -> bool:
        return self._routed is not None

    def whole(self) -> pa.Table:
        """Every current assessment (a table of ``_SCHEMA``)."""
        if self._read_whole is not None:
            rows, self._read_whole = self._read_whole, None
            return rows
        return _current(pa.concat_tables([*self._read(), empty_table(_SCHEMA)]), TextCodes())[0]

    def route(self, spilled, case_key: str) -> None:
        """Into buckets of the spilled case table ``spilled`` (``_spill.SpilledCases``; its
        case_id column ``case_key``), in its folder (see the module). A table of one bucket
        (up to ``_spill.PARTITION_ROWS`` rows: the 1 M bench's) is one partition, which
        meets every assessment routed: it reads the memory whole instead (``whole``), spared
        the case_id buckets, the join with the table's case_ids and the routed files (~30%
        of the 1 M second night's samples, py-spy), for the assessments of cases it does not
        list; unless the memory holds more than ``_WHOLE_PER_CASE`` assessments a case of
        the table (a day's few cases against years of assessments): then it is routed as
        any table's, so that the night holds about what the table needs, not the memory."""
        count = spilled.buckets
        chunks = self._read()
        if count == 1:
            held, read, most = [], 0, max(_WHOLE_PER_CASE * spilled.n, _WHOLE_LEAST)
            for rows in chunks:
                held.append(rows)
                read += rows.num_rows
                if read > most:
                    chunks = itertools.chain(held, chunks)
                    break
            else:
                self._read_whole = _current(pa.concat_tables([*held, empty_table(_SCHEMA)]), TextCodes())[0]
                return
        folder = self._folder = Path(spilled.folder) / "memory"
        by_case = _Buckets(folder / "by-case", count)
        read = 0
        for rows in chunks:
            by_case.append(rows, _bucket(rows["case_id"], count))
            read += rows.num_rows
        by_case.close()
        routed = _Buckets(folder / "routed", count)
        if read:
            listed = _Buckets(folder / "listed", count)
            for bucket, files in enumerate(spilled.files):
                for path in files:
                    case_ids = _stripped(_read(path, [case_key])[case_key])
                    listed.append(pa.table([case_ids, from_numbers(np.full(len(case_ids), bucket, np.int32))],
                                           schema=_LISTED), _bucket(case_ids, count))
            listed.close()
            first_id = 0
            for memory_files, listed_files in zip(by_case.files, listed.files, strict=True):
                # one coding of the bucket's case_ids, the memory's first: _current groups by
                # it, and a listed case_id coded below their number is a remembered case
                coder = TextCodes()
                rows, case_code = _current(_tables(memory_files, _SCHEMA), coder)
                if rows.num_rows:
                    rows = rows.select(_ROUTED.names[:-1]).append_column(
                        "id", from_numbers(np.arange(first_id, first_id + rows.num_rows)))
                    first_id += rows.num_rows
                    remembered = len(coder)
                    listed_rows = _tables(listed_files, _LISTED)
                    listed_code = _coded(coder, listed_rows["case_id"])
                    listed_code[listed_code >= remembered] = -1
                    at, bucket = _destinations(rows, case_code, listed_code,
                                               numbers(listed_rows["bucket"]).astype(np.int64), count)
                    if at.size:
                        # grouped by bucket in one take (a take, then grouping, copied the rows twice)
                        place, counts = bucket_places(bucket, count)
                        grouped = np.empty(at.size, np.int64)
                        grouped[place] = at
                        routed.append_grouped(rows.take(from_numbers(grouped)), counts)
        routed.close()
        self._routed = routed.files
        shutil.rmtree(folder / "by-case", ignore_errors=True)
        shutil.rmtree(folder / "listed", ignore_errors=True)

    def of(self, buckets: Iterable[int] | None) -> pa.Table:
        """The current assessments a partition of ``buckets`` meets (None, or never routed:
        every one)."""
        if buckets is None or self._routed is None:
            return self.whole()
        buckets = list(buckets)
        rows = _tables([path for b in buckets for path in self._routed[b]], _ROUTED)
        if rows.num_rows and len(buckets) > 1:  # (a row is routed to a bucket once: twice only to two)
            ids = numbers(rows["id"])
            order = np.argsort(ids, kind="stable")
            first = np.ones(ids.size, bool)
            first[1:] = ids[order][1:] != ids[order][:-1]
            rows = rows.take(from_numbers(np.sort(order[first])))
        return rows.drop_columns(["id"])

    def _read(self) -> Iterator[pa.Table]:
        """The memory's rows, a stored chunk at a time (``_SCHEMA``)."""
        sql = store.dialect(self.connection)
        done = f"IN (SELECT id FROM runs WHERE status = 'done') AND c.run_id {sql.IS_DISTINCT} ?"
        seq = 0
        queries = (
            (0, f"SELECT c.run_id, s.policy, '', s.rule, s.kind, s.unit, s.layout, {sql.TEXT_BYTES.format('c.rows')} "
                "FROM finding_chunks c "
                "JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot "
                f"WHERE s.assessed = 1 AND c.run_id {done}"),
            (1, f"SELECT c.run_id, c.policy, c.version, c.rule, c.kind, c.unit, NULL, {sql.TEXT_BYTES.format('c.rows')} "
                "FROM assessed_chunks c "
                f"WHERE c.run_id {done} ORDER BY c.{sql.INSERTION_ORDER}"),
        )
        for source, query in queries:
            for run, policy, version, rule, kind, unit, layout, text in sql.streamed(self.connection, query,
                                                                                      (self.exclude,)):
                if source == 0:
                    policy, version = _policy_version(policy)
                key = self.keys.setdefault((policy, rule, kind), len(self.keys))
                places = _CHUNK_PLACES if source == 1 else _CASE_PLACES if layout is not None else _V13_PLACES
                rows = _chunk_table(text, places, key, run, source, seq, version, unit, kind == _FINE)
                if rows is not None:
                    yield rows
                    seq += rows.num_rows


def by_key(rows: pa.Table, keys: dict[tuple[str, str, str], int]) -> dict[tuple[str, str, str], tuple]:
    """The current assessments ``rows`` (``_SCHEMA``) per (policy id, rule, kind): (case_ids,
    runs, decision dates, and of a fine its (usccs, act_ids, versions, fen), else None), for
    every key the memory holds (a key none of whose cases are here: empty)."""
    code = numbers(rows["key"]).astype(np.int64) if rows.num_rows else np.zeros(0, np.int64)
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(keys) + 1))
    out = {}
    for key, k in keys.items():
        part = rows.take(from_numbers(order[bounds[k]:bounds[k + 1]])).combine_chunks()
        fines = None
        if key[2] == _FINE:
            fines = (_plain(part["uscc"]), _plain(part["act"]), _plain(part["version"]), numbers(part["fen"]).astype(np.int64))
        out[key] = (_plain(part["case_id"]), numbers(part["run"]).astype(np.int64), _plain(part["decided"]), fines)
    return out


def _plain(column) -> pa.Array:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column if len(column) else pa.nulls(0, pa.string()) if pa.types.is_string(column.type) else column


# where _table reads a row's elements: a finding's in the case layout (store version 14), in
# version 13's, and a row of assessed_chunks
_Places = namedtuple("_Places", "case_id uscc amount decided act_id status")
_CASE_PLACES = _Places(*(store.CASE_PLACES[name] for name in _Places._fields))
_V13_PLACES = _Places(*(store.V13_PLACES[name] for name in _Places._fields))
_CHUNK_PLACES = _Places(0, 1, 2, 3, 6, None)


def _chunk_table(text: str | bytes, at: _Places, key: int, run: int, source: int, seq: int, version: str, unit: str,
                 fine: bool) -> pa.Table | None:
    """A stored chunk's assessments (its JSON text) as rows of ``_SCHEMA`` (None: none): read
    in C into columns (``_memory_rows.pyx``), or, a chunk that reader does not read, parsed by
    json (``_table``)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    places = (at.case_id, at.decided, *((at.uscc, at.act_id) if fine else ()), *((4,) if source == 1 else ()))
    read = assessment_columns(data, places, at.amount if fine else -1, at.case_id,
                              -1 if at.status is None else at.status)
    if read is None:
        return _table(json.loads(data), at, key, run, source, seq, version, unit, fine)
    n, texts, amounts = read
    if not n:
        return None
    columns = [_buffered(n, *column) for column in texts]
    case_ids, decided = columns[0], columns[1]
    withdrawn = np.zeros(n, bool)
    if source == 1:
        withdrawn = bools(pc.equal(columns[-1], string_scalar(_WITHDRAWN)))  # (bools: a null is False)
    fen = np.zeros(n, np.int64)
    usccs = acts = versions = pa.nulls(n, pa.string())
    if fine:
        usccs, acts = columns[2], columns[3]
        versions = strings([version or ""]).take(from_numbers(np.zeros(n, np.int64)))
        fen = amounts * (1 if unit == "fen" else 100)
    return pa.table([
        from_numbers(np.full(n, key, np.int32)), case_ids, from_numbers(np.full(n, run, np.int64)),
        from_numbers(np.full(n, source, np.int8)), from_numbers(np.arange(seq, seq + n, dtype=np.int64)),
        from_bools(withdrawn), decided, usccs, acts, versions, from_numbers(fen),
    ], schema=_SCHEMA)


def _buffered(n: int, offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> pa.Array:
    """A string column of ``assessment_columns`` as an Arrow array (an empty text null)."""
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)])


def _table(rows: list, at: _Places, key: int, run: int, source: int, seq: int, version: str, unit: str,
           fine: bool) -> pa.Table:
    """A stored chunk's assessments as rows of ``_SCHEMA`` (None: none). A finding row is
    ``[uscc, amount, case_id, payer, act_id, decided, status, ...]`` (store version 14's case
    layout; version 13's ``[uscc, amount, payer, case_id, status, ..., act_id (8), decided
    (9)]``), an assessment where imposed (no status); a row of assessed_chunks ``[case_id,
    uscc, amount, decided, reason, supersedes, act_id]``. A column at a time: a list per row
    (what the rows were made into before) took as long as parsing the chunk."""
    if at.status is not None:
        case, status = at.case_id, at.status
        rows = [r for r in rows if len(r) > case and r[case] is not None and (len(r) <= status or r[status] is None)]
    n = len(rows)
    if not n:
        return None
    longest = max(map(len, rows))

    def column(name: str) -> list:
        k = getattr(at, name)
        if k >= longest:
            return [None] * n
        if k < min(map(len, rows)):
            return [r[k] for r in rows]
        return [r[k] if len(r) > k else None for r in rows]

    withdrawn = np.zeros(n, bool)
    if source == 1:
        withdrawn = np.fromiter((r[4] == _WITHDRAWN for r in rows), bool, n)
    fen = np.zeros(n, np.int64)
    usccs = acts = versions = pa.nulls(n, pa.string())
    if fine:
        usccs = _texts(column("uscc"))
        acts = _texts(column("act_id"))  # (before act_ids: null, the case's own act)
        versions = strings([version or ""]).take(from_numbers(np.zeros(n, np.int64)))
        fen = np.fromiter(column("amount"), np.int64, n) * (1 if unit == "fen" else 100)
    return pa.table([
        from_numbers(np.full(n, key, np.int32)), _texts(column("case_id")), from_numbers(np.full(n, run, np.int64)),
        from_numbers(np.full(n, source, np.int8)), from_numbers(np.arange(seq, seq + n, dtype=np.int64)),
        from_bools(withdrawn), _texts(column("decided")), usccs, acts, versions, from_numbers(fen),
    ], schema=_SCHEMA)


def _texts(values: list) -> pa.Array:
    """Python strings, None or empty ones null, as an Arrow string array: where all are
    ASCII (case_ids, USCCs, dates), from one join of them and their lengths, without a
    Python step per text (``_optional_strings`` took a third of reading a chunk)."""
    n = len(values)
    if values.count(None) == n:
        return pa.nulls(n, pa.string())
    present = list(filter(None, values))
    joined = "".join(present)
    data = joined.encode("utf-8")
    if len(data) != len(joined) or len(present) != n - values.count(None) - values.count(""):
        return _optional_strings([v or None for v in values])
    lengths = np.fromiter(map(len, (v or "" for v in values)), np.int64, n) if len(present) < n else \
        np.fromiter(map(len, values), np.int64, n)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    validity = None
    if len(present) < n:
        validity = pa.py_buffer(np.packbits(lengths > 0, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)])


def _current(rows: pa.Table, coder: TextCodes) -> tuple[pa.Table, np.ndarray]:
    """Per (key, case) the row of its newest run (a run's findings before its withdrawals,
    then in the order read), unless that row withdrew the assessment (then none); and the
    code of each one's case_id in ``coder`` (a ``TextCodes`` that codes nothing before: the
    case_ids are coded from 0; -1 a null). On these integer codes (in C): a sort of the rows
    by their case_id texts was ~15% of routing the memory (py-spy, 1 M cases' second
    night); and where no (key, case) repeats (a second night: one run's assessments, each
    once) nothing is sorted at all."""
    rows = rows.combine_chunks()
    n = rows.num_rows
    if not n:
        return rows, np.zeros(0, np.int64)
    code = _coded(coder, rows["case_id"])
    grouped = code
    null_rows = code < 0
    if null_rows.any():  # (a null case_id is no case: each its own, as pc.equal never matches one)
        grouped = code.copy()
        grouped[null_rows] = len(coder) + np.arange(int(null_rows.sum()))
    pair = numbers(rows["key"]).astype(np.int64) * np.int64(len(coder) + int(null_rows.sum())) + grouped
    ordered = np.sort(pair)
    withdrawn = bools(rows["withdrawn"])
    if not (ordered[1:] == ordered[:-1]).any():
        if not withdrawn.any():
            return rows, code
        kept = np.flatnonzero(~withdrawn)
    else:
        order = np.lexsort((numbers(rows["seq"]), numbers(rows["source"]), -numbers(rows["run"]), pair))
        pair = pair[order]
        first = np.ones(n, bool)
        first[1:] = pair[1:] != pair[:-1]
        kept = order[first & ~withdrawn[order]]
    return rows.take(from_numbers(kept)), code[kept]


def _coded(coder: TextCodes, case_ids) -> np.ndarray:
    """The codes of ``case_ids`` in ``coder`` (int64; -1 a null), a text met first coded anew."""
    case_ids = _plain(case_ids)
    offsets, data = string_buffers(case_ids)
    null = bools(case_ids.is_null()).view(np.uint8) if case_ids.null_count else np.zeros(0, np.uint8)
    return coder.add(offsets, data, null)[0].astype(np.int64)


def _destinations(rows: pa.Table, case_code: np.ndarray, listed_code: np.ndarray, listed_bucket: np.ndarray,
                  count: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) pairs of the current assessments ``rows`` of one case_id bucket: the
    buckets listing each one's case, and a fine of a named act its enterprise's bucket
    (each pair once, by row). ``case_code``: per row its case's code, ``listed_code`` and
    ``listed_bucket``: per case_id the table lists in this case_id bucket its code (-1: a
    case none of ``rows`` is of) and the bucket listing it."""
    at, bucket = _listing(case_code, listed_code, listed_bucket)
    acted = np.flatnonzero(bools(rows["act"].is_valid()))
    if acted.size:
        act_bucket = _bucket(rows["uscc"].take(from_numbers(acted)), count)
        at, bucket = np.concatenate([at, acted]), np.concatenate([bucket, act_bucket])
        pair = at * count + bucket
        _, first = np.unique(pair, return_index=True)
        at, bucket = at[first], bucket[first]
    return at, bucket


def _listing(case_code: np.ndarray, listed_code: np.ndarray, listed_bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) per row of ``case_code`` and bucket listing its case (an inner join on
    the case_ids' codes, -1 matching none), by row. Arrow's ``dictionary_encode`` of both
    tables' case_ids took a quarter of routing the memory (py-spy, 1 M cases' second
    night); ``Table.group_by``/``join`` imported Acero, pyarrow.dataset and pandas into the
    run (~1.9 s of a loaded second night's wall). A case listed once (every one, unless the
    table repeats a case_id) has its bucket looked up by code, without a sort."""
    n = case_code.size
    known = listed_code >= 0
    code, listed_bucket = listed_code[known], listed_bucket[known]
    size = int(max(code.max(initial=-1), case_code.max(initial=-1))) + 1
    listings = np.bincount(code, minlength=size)
    if not (listings > 1).any():
        bucket_of = np.full(size + 1, -1, np.int64)  # (the last: a null case's, -1)
        bucket_of[code] = listed_bucket
        bucket = bucket_of[case_code]
        at = np.flatnonzero(bucket >= 0)
        return at, bucket[at]
    width = np.int64(int(listed_bucket.max()) + 1 if listed_bucket.size else 1)
    pair = distinct_sorted(code * width + listed_bucket)
    pair_code, pair_bucket = pair // width, pair % width
    low = np.searchsorted(pair_code, case_code, "left")
    high = np.searchsorted(pair_code, case_code, "right")
    many = np.where(case_code >= 0, high - low, 0)
    total = int(many.sum())
    at = np.repeat(np.arange(n, dtype=np.int64), many)
    ends = np.cumsum(many)
    place = np.repeat(low - (ends - many), many) + np.arange(total, dtype=np.int64)
    return at, pair_bucket[place]


def _bucket(texts, count: int) -> np.ndarray:
    return (text_hashes(texts) % np.uint64(count)).astype(np.int64)


def _tables(paths: list[Path], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables([*(_read(p) for p in paths), empty_table(schema)]).combine_chunks()


def _policy_version(policy_key: str) -> tuple[str, str]:
    policy, _, version = policy_key.rpartition("@") if "@" in policy_key else (policy_key, "", "")
    return policy, version


__all__ = ["Remembered", "by_key"]
