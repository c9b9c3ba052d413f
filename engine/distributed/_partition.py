"""What a Dask worker or a Spark executor does with its share of a registry: the rows of one
partition, as an Arrow table with the registry's own headers, scored as ``ecorules run``
scores a batch (engine/_scored.py), into a ScoredBatch whose totals add up across partitions.

Everything here runs where the data is; the driver only plans (:func:`make_plan`), decides
the repeated keys (:func:`census_of`) and adds the partials. A :class:`Plan` pickles (the
policies and the census, a few kB); the compiled program does not travel: each worker
process compiles it once (about a millisecond) and keeps it.

Row numbers: a partition whose table has the columns ``_source`` and ``_row`` (the readers
of this package add them: the file and the 1-based row in it, as a local run names them)
names its rejects so; any other partition names them ``partition N``, row from 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import PolicySet, load_policies

from .._duplicates import DuplicateFilter, KeyCensus, digests, unique_key
from .._nightly import NightlyError
from .._scored import ScoredBatch, Scoring, make_scoring, score_batch
from .._sources import Batch, ColumnResolver
from .._unset_rollups import unset_rollups, with_unset

DOMAIN = "enterprise"
SOURCE, ROW = "_source", "_row"  # where each row came from, when the reader knows


class DistributedError(NightlyError):
    """A distributed run cannot do what was asked (say what instead)."""


@dataclass
class Plan:
    """What every partition needs to score its rows as the local run would."""

    policies: PolicySet  # the enterprise policies
    as_of: dt.date
    subject: str  # the key fact (uscc)
    needed: dict[str, list[str]]  # fact -> the policies reading it (the columns to find)
    unset: list[str]  # optional roll-ups the registry cannot give: empty columns
    aliases: Mapping[str, Iterable[str]] | None = None
    duplicates: str = "reject"
    census: KeyCensus | None = None  # with rows_of for every repeated key
    columns: list[str] = field(default_factory=list)  # the program's columns, in order


def make_plan(policies: PolicySet | str | None, as_of: dt.date, *, aliases=None, duplicates: str = "reject") -> Plan:
    if duplicates not in ("reject", "last"):
        raise DistributedError(f"--duplicates {duplicates} merges rows across partitions: run it on one machine "
                               "(reject and last are decided before scoring and work distributed)")
    if not isinstance(policies, PolicySet):
        policies = load_policies(policies)
    policies = policies.for_domain(DOMAIN)
    if not len(policies):
        raise DistributedError(f"no policy of domain {DOMAIN!r} is loaded")
    subjects = {p.subject for p in policies}
    if len(subjects) != 1:
        raise DistributedError(f"the {DOMAIN} policies name different subjects: {', '.join(sorted(subjects))}")
    program = _scoring(policies).program
    needed_by = policies.required_facts()
    needed = {column: list(needed_by.get(column, [])) for column in program.columns}
    unset = unset_rollups(policies.facts, needed)
    needed = {column: by for column, by in needed.items() if column not in unset}
    return Plan(policies, as_of, subjects.pop(), needed, unset, aliases, duplicates, None, list(program.columns))


_SCORINGS: dict[str, Scoring] = {}  # per worker process: policy fingerprint -> compiled scoring


def _scoring(policies: PolicySet) -> Scoring:
    key = policies.fingerprint
    if key not in _SCORINGS:
        from ecorules.fastcalc import compile_program

        subject = next(iter(policies)).subject
        scoring = make_scoring(policies, DOMAIN, subject, compile_program, domain=DOMAIN)
        _refuse_fen(scoring)
        _SCORINGS[key] = scoring
    return _SCORINGS[key]


def _refuse_fen(scoring: Scoring) -> None:
    """The distributed engines' frames and totals are whole yuan (int64 columns): a policy
    rounding to the fen, which a local run stores with its unit, is refused here for now
    rather than written as yuan."""
    fen = [slot for slot in scoring.slots if slot.per_yuan != 1]
    if fen:
        raise DistributedError(f"{fen[0].policy} rule {fen[0].rule} rounds its amounts to the fen, which the "
                               "distributed engines do not carry yet: score it with a local `ecorules run`")


def _widened(table: pa.Table) -> pa.Table:
    """Integers narrower than 64 bits widened before any arithmetic (Hive's INT arrives as
    int32, and 3,001 x 1,000,000 overflowed it silently); unsigned ones too; large strings
    (Spark 4's Arrow) as strings."""
    for index, column in enumerate(table.columns):
        if pa.types.is_integer(column.type) and column.type != pa.int64():
            table = table.set_column(index, table.field(index).name, pc.cast(column, pa.int64()))
        elif pa.types.is_large_string(column.type):
            table = table.set_column(index, table.field(index).name, pc.cast(column, pa.string()))
    return table


def batches(plan: Plan, table: pa.Table, number: int, needed: Mapping | None = None) -> Iterator[Batch]:
    """The partition's rows as the Batches of its sources (one per run of rows of one file),
    with the columns of ``needed`` facts (default: all the plan's)."""
    if table.num_rows == 0:
        return
    if SOURCE in table.column_names:
        sources = table[SOURCE].combine_chunks()
        change = np.flatnonzero(pc.not_equal(sources[1:], sources[:-1]).to_numpy(zero_copy_only=False)) + 1
        bounds = [0, *change.tolist(), table.num_rows]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            part = table.slice(a, b - a)
            rows = part[ROW].to_numpy().astype(np.int64) if ROW in part.column_names else np.arange(a + 1, b + 1)
            yield _batch(plan, part.drop_columns([c for c in (SOURCE, ROW) if c in part.column_names]),
                         sources[a].as_py(), rows, needed)
    else:
        rows = table[ROW].to_numpy().astype(np.int64) if ROW in table.column_names else np.arange(1, table.num_rows + 1)
        yield _batch(plan, table.drop_columns([c for c in (ROW,) if c in table.column_names]), f"partition {number}",
                     rows, needed)


def _batch(plan: Plan, table: pa.Table, source: str, rows: np.ndarray, needed: Mapping | None = None) -> Batch:
    resolver = ColumnResolver(plan.policies.facts, plan.needed if needed is None else needed, plan.aliases)
    headers = list(table.column_names)
    columns = resolver.resolve(source, headers)  # raises MissingColumnError naming the fact
    picked = table.select([index for index in columns.values()]).rename_columns(list(columns))
    return Batch(_widened(picked), source, rows, {name: headers[i] for name, i in columns.items()}, [], table.num_rows)


def _filter(plan: Plan) -> DuplicateFilter:
    fact = unique_key(plan.policies, DOMAIN)
    if fact is None or fact.name not in plan.columns:
        return DuplicateFilter(None, None, plan.duplicates)
    keys = DuplicateFilter(fact, plan.census, plan.duplicates, plan.policies.facts)
    if plan.census is not None:  # the first row of each repeated key, decided by the census, not by arrival
        keys.first = {key: rows[0] for key, rows in plan.census.rows_of.items()}
    return keys


def score_partition(plan: Plan, table: pa.Table, number: int = 0) -> list[ScoredBatch]:
    """Score one partition (an Arrow table with the registry's headers)."""
    scoring = _scoring(plan.policies)
    keys = _filter(plan)
    out = []
    for batch in batches(plan, table, number):
        batch = keys.apply(batch)
        if batch.table.num_rows and plan.unset:
            batch.table = with_unset(batch.table, plan.unset)
        out.append(score_batch(scoring, batch, as_of=plan.as_of, threads=1))
    return out


# --- one enterprise, one row, across partitions -----------------------------------------------


def needed_columns(plan: Plan, columns: list[str]) -> list[str]:
    """The columns of a frame that scoring reads (as the frame heads them), and where each
    row came from: a frame's other columns (an enterprise's name, long text) are not worth
    handing to Python. Raises MissingColumnError, naming the fact, on the driver."""
    resolver = ColumnResolver(plan.policies.facts, plan.needed, plan.aliases)
    headers = [c for c in columns if c not in (SOURCE, ROW)]
    found = resolver.resolve("the frame", headers)
    return [*(headers[i] for i in found.values()), *[c for c in (SOURCE, ROW) if c in columns]]


def key_columns(plan: Plan, columns: list[str]) -> list[str] | None:
    """The columns of a frame the census reads: the key's (as the frame heads it) and where
    each row came from; None where the policies declare no key."""
    fact = unique_key(plan.policies, DOMAIN)
    if fact is None or fact.name not in plan.columns:
        return None
    resolver = ColumnResolver(plan.policies.facts, {fact.name: ()}, plan.aliases)
    headers = [c for c in columns if c not in (SOURCE, ROW)]
    index = resolver.resolve("the frame", headers)[fact.name]
    return [headers[index], *[c for c in (SOURCE, ROW) if c in columns]]


def key_digests(plan: Plan, table: pa.Table, number: int = 0) -> np.ndarray:
    """The first pass of engine/_duplicates.py on one partition: a digest per valid key."""
    key = unique_key(plan.policies, DOMAIN)
    if key is None:
        return np.zeros(0, np.uint64)
    found = []
    for batch in batches(plan, table, number, dict.fromkeys(key.names, ())):
        keys, valid, _ = key.read(batch.table)
        found.append(digests(key.digest_fact, keys, valid))
    return np.concatenate(found) if found else np.zeros(0, np.uint64)


def repeated_digests(parts: Iterable[np.ndarray]) -> np.ndarray:
    every = np.concatenate([np.asarray(p, np.uint64) for p in parts] or [np.zeros(0, np.uint64)])
    every.sort()
    return np.unique(every[1:][every[1:] == every[:-1]]) if every.size > 1 else np.zeros(0, np.uint64)


def suspect_rows(plan: Plan, repeated: np.ndarray, table: pa.Table, number: int = 0) -> list[tuple]:
    """(key, source, row) of the rows whose digest repeats: compared by their exact key on the driver."""
    record_key = unique_key(plan.policies, DOMAIN)
    census = KeyCensus(repeated, 0)
    out = []
    for batch in batches(plan, table, number, dict.fromkeys(record_key.names, ())):
        keys, valid, _ = record_key.read(batch.table)
        at = np.flatnonzero(valid)
        hit = at[census.suspects(digests(record_key.digest_fact, keys, valid))]
        for row, key in zip(hit.tolist(), keys.take(pa.array(hit)).to_pylist(), strict=True):
            out.append((key, batch.source, int(batch.rows[row])))
    return out


def census_of(repeated: np.ndarray, suspects_in_order: Iterable[list[tuple]], rows: int = 0) -> KeyCensus | None:
    """The census from the partitions' suspects, given in the registry's order."""
    if not repeated.size:
        return None
    rows_of: dict = {}
    for part in suspects_in_order:
        for key, source, row in part:
            rows_of.setdefault(key, []).append((source, row))
    rows_of = {key: where for key, where in rows_of.items() if len(where) > 1}
    return KeyCensus(repeated, rows, rows_of)


__all__ = ["DistributedError", "Plan", "census_of", "key_digests", "make_plan", "repeated_digests", "score_partition",
           "suspect_rows"]
