"""What a Dask worker or a Spark executor does with its share of a registry: the rows of one
partition, as an Arrow table with the registry's own headers, scored as ``ecorules run``
scores a batch (engine/_scored.py), into a ScoredBatch whose totals add up across partitions.

Everything here runs where the data is; the driver only plans (:func:`make_plan`), decides
the repeated keys (:func:`take_census`, which each engine calls with its way of reaching its
parts) and adds the partials. A :class:`Plan` pickles (the
policies and the census, a few kB); the compiled program does not travel: each worker
process compiles it once (about a millisecond) and keeps it.

Row numbers: a partition whose table has the columns ``_source`` and ``_row`` (the readers
of this package add them: the file and the 1-based row in it, as a local run names them)
names its rejects so; any other partition names them ``partition N``, row from 1.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import PolicySet, load_policies

from .._duplicates import (
    DuplicateFilter,
    KeyCensus,
    RecordKey,
    batch_digests,
    digests,
    repeated_of,
    streamed,
    suspects_in,
    unique_key,
)
from .._nightly import NightlyError
from .._scored import ScoredBatch, Scoring, make_scoring, score_batch
from .._sources import Batch, ColumnResolver
from .._unset_rollups import unset_rollups, with_unset
from ..sources._types import column_mark

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
    fingerprint: str = ""  # the policies', hashed once on the driver
    # with a case table: its roll-ups per enterprise it names (engine/cases/_enterprises.py's
    # EnterpriseSide without its rows, a few bytes per such enterprise) and the roll-ups
    rollups: tuple | None = None


def make_plan(policies: PolicySet | str | None, as_of: dt.date, *, aliases=None, duplicates: str = "reject",
              computed: Iterable[str] = ()) -> Plan:
    """``computed``: the roll-ups a case table gives (not read from the registry: each
    partition is handed them, :attr:`Plan.rollups`)."""
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
    fingerprint = policies.fingerprint
    program = _scoring(policies, fingerprint).program
    needed_by = policies.required_facts()
    needed = {column: list(needed_by.get(column, [])) for column in program.columns if column not in computed}
    unset = unset_rollups(policies.facts, needed)
    needed = {column: by for column, by in needed.items() if column not in unset}
    return Plan(policies, as_of, subjects.pop(), needed, unset, aliases, duplicates, None, list(program.columns),
                fingerprint)


_SCORINGS: dict[str, Scoring] = {}  # per worker process: policy fingerprint -> compiled scoring


def _scoring(policies: PolicySet, fingerprint: str | None = None) -> Scoring:
    key = fingerprint or policies.fingerprint  # a sha256 over the policies: a plan gives it made once
    if key not in _SCORINGS:
        from ecorules.fastcalc import compile_program

        subject = next(iter(policies)).subject
        scoring = make_scoring(policies, DOMAIN, subject, compile_program, domain=DOMAIN)
        _SCORINGS[key] = scoring
    return _SCORINGS[key]


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


class Part:
    """One partition as its worker task sees it: the compiled scoring, the duplicate filter
    and the columns found for each set of headers, made once for the partition, not once per
    batch (Spark hands a partition over in batches of 262,144 rows)."""

    def __init__(self, plan: Plan, number: int = 0):
        self.plan, self.number = plan, number
        self._columns: dict[tuple, dict[str, int]] = {}  # (facts, headers) -> fact -> index
        self._resolvers: dict[tuple, ColumnResolver] = {}
        self._scoring: Scoring | None = None
        self._keys: DuplicateFilter | None = None

    def batches(self, table: pa.Table, needed: Mapping | None = None) -> Iterator[Batch]:
        """The partition's rows as the Batches of its sources (one per run of rows of one file),
        with the columns of ``needed`` facts (default: all the plan's)."""
        if table.num_rows == 0:
            return
        if SOURCE in table.column_names:
            sources = table[SOURCE].combine_chunks()
            # a dictionary column (read_piece's) changes file where its code does
            codes = sources.indices if pa.types.is_dictionary(sources.type) else sources
            change = np.flatnonzero(pc.not_equal(codes[1:], codes[:-1]).to_numpy(zero_copy_only=False)) + 1
            bounds = [0, *change.tolist(), table.num_rows]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                part = table.slice(a, b - a)
                rows = part[ROW].to_numpy().astype(np.int64) if ROW in part.column_names else np.arange(a + 1, b + 1)
                yield self._batch(part.drop_columns([c for c in (SOURCE, ROW) if c in part.column_names]),
                                  sources[a].as_py(), rows, needed)
        else:
            rows = (table[ROW].to_numpy().astype(np.int64) if ROW in table.column_names
                    else np.arange(1, table.num_rows + 1))
            yield self._batch(table.drop_columns([c for c in (ROW,) if c in table.column_names]),
                              f"partition {self.number}", rows, needed)

    def _batch(self, table: pa.Table, source: str, rows: np.ndarray, needed: Mapping | None) -> Batch:
        needed = self.plan.needed if needed is None else needed
        headers = list(table.column_names)
        at = (tuple(needed), tuple(headers))
        if at not in self._columns:
            if at[0] not in self._resolvers:
                self._resolvers[at[0]] = ColumnResolver(self.plan.policies.facts, needed, self.plan.aliases)
            self._columns[at] = self._resolvers[at[0]].resolve(source, headers)  # raises MissingColumnError
        columns = self._columns[at]
        picked = table.select(list(columns.values())).rename_columns(list(columns))
        return Batch(_widened(picked), source, rows, {name: headers[i] for name, i in columns.items()}, [],
                     table.num_rows)

    def score(self, table: pa.Table, census: list[np.ndarray] | None = None) -> list[ScoredBatch]:
        """Score a table of the partition's rows (with the registry's headers). With ``census``
        (the first pass: the plan knows no repeated key yet), the digests of each batch's valid
        keys are appended to it on the way (:meth:`_counted`)."""
        plan = self.plan
        if self._scoring is None:
            self._scoring, self._keys = _scoring(plan.policies, plan.fingerprint), _filter(plan)
        out = []
        for batch in self.batches(table):
            batch = self._keys.apply(batch) if census is None else self._counted(batch, census)
            if batch.table.num_rows and plan.unset:
                batch.table = with_unset(batch.table, plan.unset)
            if batch.table.num_rows and plan.rollups is not None:  # as the local run's _batch adds them
                from ..cases import rollup_columns
                from ..cases._enterprises import drop_uncountable

                side, rollups = plan.rollups
                drop_uncountable(side, batch, batch.table[plan.subject])
                for name, column in rollup_columns(side, batch.table[plan.subject], rollups).items():
                    batch.table = batch.table.append_column(name, column)
            out.append(score_batch(self._scoring, batch, as_of=plan.as_of, threads=1))
        return out

    def _counted(self, batch: Batch, census: list[np.ndarray]) -> Batch:
        """The duplicate filter's work on a batch of the first pass (every valid key written in
        its canonical form: nothing repeats yet), with the census's digests of its keys taken
        from the same reading, and the scorer told which USCCs passed both check characters
        (as the local run's filter tells it: engine/_duplicates.py's ``_suspects``). Done apart,
        the census, the filter and the kernel each checked every USCC of the batch."""
        key = census_key(self.plan)
        if (key is None or self._keys.census is not None or not batch.table.num_rows
                or not all(name in batch.table.column_names for name in key.names)):
            return self._keys.apply(batch)
        keys, valid, canonical = key.read(batch.table)
        for name, column in canonical.items():
            if column is not batch.table[name]:
                batch.table = batch.table.set_column(batch.table.column_names.index(name), name, column)
        census.append(digests(key.digest_fact, keys, valid))
        if streamed(key, "reject"):  # a USCC key: the check the scorer would make again
            name = key.name
            if valid.all():
                batch.checked = batch.checked | {name}
            else:
                batch.suspects = {**batch.suspects, name: (np.flatnonzero(~valid), column_mark(batch.table[name]))}
        return batch

    def digests(self, table: pa.Table) -> np.ndarray:
        """The census's first pass over a table of the partition: a digest per valid key."""
        key = census_key(self.plan)
        found = [batch_digests(key, batch.table)[0] for batch in self.batches(table, dict.fromkeys(key.names, ()))]
        return np.concatenate(found) if found else np.zeros(0, np.uint64)

    def enterprises(self, table: pa.Table, link, wanted: pa.Array, names: list[str]) -> list[tuple]:
        """The rows of a table of the partition whose enterprise a case table names, as the
        case stage keeps them (engine/cases/_enterprises.py's kept_rows), in their order."""
        from ..cases._enterprises import kept_rows

        return [found for batch in self.batches(table)
                if (found := kept_rows(link, batch.table, batch.source, batch.rows, wanted, names)) is not None]

    def suspects(self, census: KeyCensus, table: pa.Table) -> list[tuple]:
        """(key, source, row) of the table's rows whose digest repeats, in its order."""
        key = census_key(self.plan)
        return [found for batch in self.batches(table, dict.fromkeys(key.names, ()))
                for found in suspects_in(key, census, batch)]


def _filter(plan: Plan) -> DuplicateFilter:
    key = census_key(plan)
    if key is None:
        return DuplicateFilter(None, None, plan.duplicates)
    keys = DuplicateFilter(key, plan.census, plan.duplicates, plan.policies.facts)
    if plan.census is not None:  # the first row of each repeated key, decided by the census, not by arrival
        keys.first = {value: rows[0] for value, rows in plan.census.rows_of.items()}
    return keys


def score_partition(plan: Plan, table: pa.Table, number: int = 0) -> list[ScoredBatch]:
    """Score one partition (an Arrow table with the registry's headers)."""
    return Part(plan, number).score(table)


# --- one enterprise, one row, across partitions -----------------------------------------------


def needed_columns(plan: Plan, columns: list[str]) -> list[str]:
    """The columns of a frame that scoring reads (as the frame heads them), and where each
    row came from: a frame's other columns (an enterprise's name, long text) are not worth
    handing to Python. Raises MissingColumnError, naming the fact, on the driver."""
    resolver = ColumnResolver(plan.policies.facts, plan.needed, plan.aliases)
    headers = [c for c in columns if c not in (SOURCE, ROW)]
    found = resolver.resolve("the frame", headers)
    return [*(headers[i] for i in found.values()), *[c for c in (SOURCE, ROW) if c in columns]]


def census_key(plan: Plan) -> RecordKey | None:
    """The key the registry's rows are unique by, if the catalogue declares one and the
    policies read every fact of it (as a local run decides: engine/_nightly.py's _key_filter)."""
    key = unique_key(plan.policies, DOMAIN)
    if key is None or not all(name in plan.columns for name in key.names):
        return None
    return key


def key_columns(plan: Plan, columns: list[str]) -> list[str] | None:
    """The columns of a frame the census reads: the key's (as the frame heads them) and where
    each row came from; None where the policies declare no key."""
    key = census_key(plan)
    if key is None:
        return None
    resolver = ColumnResolver(plan.policies.facts, dict.fromkeys(key.names, ()), plan.aliases)
    headers = [c for c in columns if c not in (SOURCE, ROW)]
    found = resolver.resolve("the frame", headers)
    return [*(headers[found[name]] for name in key.names), *[c for c in (SOURCE, ROW) if c in columns]]


class Parts(Protocol):
    """How an engine runs a function on every part of a registry where the part lies."""

    def repeated(self) -> tuple[np.ndarray, int]:
        """:meth:`Part.digests` of every part, merged on the workers: the digests more than
        one row has (never every digest on the driver), and how many digests there were."""

    def gather(self, function: Callable[[Part, pa.Table], list]) -> list[list]:
        """``function``'s results on every part (reading the key columns alone), in the
        registry's order."""


def take_census(plan: Plan, parts: Parts, repeated: np.ndarray | None = None, rows: int = 0) -> Plan:
    """``plan`` with the keys written on several rows (engine/_duplicates.py's first pass, on
    the workers): the digests that repeat (or ``repeated``, where the engine found them while
    scoring), then the rows of those digests, compared by their exact key on the driver."""
    if census_key(plan) is None:
        return plan
    if repeated is None:
        repeated, rows = parts.repeated()
    if repeated.size:
        census = KeyCensus(repeated, rows)
        rows_of: dict = {}
        for found in parts.gather(functools.partial(_suspects, census=census)):
            for value, source, row in found:
                rows_of.setdefault(value, []).append((source, row))
        plan.census = KeyCensus(repeated, rows, {value: at for value, at in rows_of.items() if len(at) > 1})
    return plan


def _suspects(part: Part, table: pa.Table, census: KeyCensus) -> list[tuple]:
    return part.suspects(census, table)


__all__ = ["DistributedError", "Part", "Parts", "Plan", "census_key",
           "make_plan", "repeated_of", "score_partition", "take_census"]
