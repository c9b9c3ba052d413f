"""一例一次 across runs: a case's deduction or fine is assessed once.

The Zhengzhou measures deduct "一例一次" (once per case) and the law fines an act once, so a
nightly run over a case table that still lists a case assessed by an earlier run must not
assess it again. The results store remembers every assessment, read through the view
``assessed`` (``store.sqlite.ASSESSED_VIEW``: case_id, uscc, policy id and version, rule, kind,
amount, the run, the case's decision date). Since store version 12 an assessment is its
imposed finding: the finding rows of a slot marked ``assessed`` carry the case's act_id and
decision date (and, assessed anew, the run superseded and why), and no second copy is
written (a third of a case run's store at 2 M cases, bench/cases.py); ``assessed_chunks``
keeps the withdrawn rows and the assessments of earlier versions' runs, whose findings
carried none of it. An assessment is identified by (case_id, policy id, rule,
kind): the policy's version is not part of it, so a new version of a statute does not fine
the same case again.

When a run imposes a finding that the memory already holds (from a finished run), it is
written with status ``already_assessed``, amount 0 and ``assessed_in_run`` (the run that
assessed it), and counts in no total, district total or case count. It is assessed anew, and
remembered again with the run it replaces in ``supersedes_run``, when

- the case's decision date (``plan.decision``) differs from the remembered one, empty
  included: that is a new decision (reason ``new decision``); or
- the run was asked to (``--reassess``: every case, or the given case ids; ``reassessed``).

A case assessed anew (either way) on which this run imposes nothing for a remembered key (its
rule no longer fires, or its fine is superseded) gets a row with reason ``withdrawn``, amount
0 and ``supersedes_run``: the earlier assessment is history, no longer current, so a later
run assesses the case again should the rule fire, and its fine no longer stands against its
act (``_earlier_fines.py``).

The memory is append-only: rows are written in the run's transaction and deleted only with
their run (a killed or failed run leaves none); a key's current assessment is its row of the
highest run id, none where that row is ``withdrawn``. A run that will replace an earlier one (the same input, policies and as_of,
``--force``) does not read that run's rows: a rerun assesses what its predecessor assessed,
never finds its own earlier assessments. Superseded fines (one act one fine) are not
assessments, and the registry's count-based findings (enterprises, no case) have no memory.

An assessment remembers its case's act (act_id; empty or absent: the case is its own act),
so that one act is fined once across runs too (``_earlier_fines.py``).

The memory is read as the case table is judged, a partition at a time: sorted into the
spilled table's buckets before the first partition, each partition reads the assessments of
its own cases and acts (``_remembered.py``), so that a night over a store of earlier
assessments holds about what the first night held, whatever the table's size.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import bools, fill_null, from_numbers, string_scalar, strings

from .. import store
from .._chunks import CHUNK_ROWS, _json_rows
from ._remembered import Remembered, by_key
from ._table import indexed, positions

ALREADY_ASSESSED = "already_assessed"

INSERT_ASSESSED = "INSERT INTO assessed_chunks (run_id, policy, version, rule, kind, rows, unit) VALUES (?, ?, ?, ?, ?, ?, ?)"
_REASONS = strings(["first", "new decision", "reassessed", "withdrawn"])
NEW_DECISION, REASSESSED = 1, 2  # indexes into _REASONS, and the reason codes of a finding row
WITHDRAWN = 3  # index into _REASONS: the key has no current assessment since


@dataclass
class Recorded:
    """What the memory says of one slot's fired findings (``Assessments.record``)."""

    assessed_in: np.ndarray  # int64 per finding: the run that already assessed it, 0: none
    supersedes: np.ndarray | None  # int64 per finding assessed anew: the run it supersedes (else 0)
    reason: np.ndarray | None  # int8 per finding assessed anew: NEW_DECISION or REASSESSED (else 0)


@dataclass
class _Remembered:
    """The current assessments of one (policy id, rule, kind), one per case."""

    case_ids: pa.Array
    runs: np.ndarray  # int64
    decided: pa.Array  # ISO date text, null: no decision date
    # of a fine (one act one fine across runs, _earlier_fines.py), per case as above; else None
    fines: FineMemory | None = None


@dataclass
class FineMemory:
    """What a remembered fine's act and amount are: the case's enterprise, its act_id (null:
    the case is its own act), the policy version, the amount in fen."""

    uscc: pa.Array
    acts: pa.Array
    versions: pa.Array
    fen: np.ndarray  # int64


class Met:
    """The memory of a partition (``Assessments.remembered``) met with its case table: each
    remembered case's code among the partition's case_ids (``CaseTable.keys``), found in one
    lookup for every (policy id, rule, kind), so that each slot and rule compares integer
    codes. Arrow's ``index_in`` and ``is_in`` build a hash table of their value set anew at
    every call: one per slot and rule took ~10% of a second night (bench/cases.py)."""

    def __init__(self, remembered: dict[tuple[str, str, str], _Remembered], cases,
                 reassess: bool | frozenset[str]):
        self.cases = cases
        self.keys_index = indexed(cases.keys)
        keys = [key for key, memory in remembered.items() if len(memory.case_ids)]
        # per key: per remembered case, its code in ``cases.keys`` (-1: not listed here)
        self.code: dict[tuple[str, str, str], np.ndarray] = {key: np.zeros(0, np.int64) for key in remembered}
        if keys:
            found = positions(self.keys_index, pa.concat_arrays([remembered[key].case_ids for key in keys]))
            bounds = np.cumsum([0] + [len(remembered[key].case_ids) for key in keys])
            for key, start, stop in zip(keys, bounds[:-1], bounds[1:], strict=True):
                self.code[key] = found[start:stop]
        self._row: dict[tuple[str, str, str], np.ndarray] = {}
        # per key: bool per code, the cases whose findings of the key this run recorded or
        # withdrew (``withdraw_unfired`` leaves them alone)
        self.touched: dict[tuple[str, str, str], np.ndarray] = {}
        # bool per code: the case named by --reassess IDS (None: none named)
        self.reassessed = None
        if reassess and reassess is not True:
            self.reassessed = np.zeros(len(cases.keys), bool)
            named = positions(self.keys_index, pa.array(sorted(reassess), pa.string()))
            self.reassessed[named[named >= 0]] = True

    def row_of(self, key: tuple[str, str, str]) -> np.ndarray:
        """Per code of the partition's case_ids, the row of its case among the remembered
        assessments of ``key`` (-1: none): as ``index_in``, the first where a case repeats."""
        row = self._row.get(key)
        if row is None:
            code = self.code[key]
            listed = np.flatnonzero(code >= 0)[::-1]
            row = self._row[key] = np.full(len(self.cases.keys), -1, np.int64)
            row[code[listed]] = listed
        return row

    def touch(self, key: tuple[str, str, str], codes: np.ndarray) -> None:
        touched = self.touched.get(key)
        if touched is None:
            touched = self.touched[key] = np.zeros(len(self.cases.keys), bool)
        touched[codes] = True


@dataclass
class Assessments:
    """The memory as a run reads it, and what the run adds to it (see the module)."""

    remembered: dict[tuple[str, str, str], _Remembered]
    reassess: bool | frozenset[str] = False  # True: every case; a set: those case ids
    already: int = 0  # findings this run reported already assessed
    added: int = 0  # assessments this run made
    withdrawn: int = 0  # remembered assessments this run took back (see the module)
    reassess_seen: set[str] = field(default_factory=set)
    # where ``remembered`` is read from, a partition at a time (None: it is all there is)
    source: Remembered | None = None
    _whole: dict[tuple[str, str, str], _Remembered] | None = None
    _met: Met | None = None

    def met(self, cases) -> Met:
        """``remembered`` met with the partition's case table ``cases`` (``Met``), once per
        partition."""
        if self._met is None or self._met.cases is not cases:
            self._met = Met(self.remembered, cases, self.reassess)
        return self._met

    def route(self, spilled, case_key: str) -> None:
        """The memory sorted into the buckets of the spilled case table (``_remembered.py``),
        so that a partition reads only its own (``enter``)."""
        if self.source is not None:
            self.source.route(spilled, case_key)

    def enter(self, buckets=None) -> None:
        """``remembered``: the assessments a partition of the spilled table's ``buckets``
        meets (None: a table staged whole, or never routed: every one, read once)."""
        self._met = None
        if self.source is None:
            return
        if buckets is not None and self.source.routed:
            self.remembered = _remembered(self.source.of(buckets), self.source.keys)
            return
        if self._whole is None:
            self._whole = _remembered(self.source.whole(), self.source.keys)
        self.remembered = self._whole

    def leave(self) -> None:
        """A partition written: its assessments let go (a whole table's are kept for the next
        part of a cluster's run)."""
        self._met = None  # (the case ids a partition's findings touched are no other partition's)
        if self.source is not None and self.source.routed:
            self.remembered = {}

    def _anew(self, met: Met, codes: np.ndarray, same: np.ndarray) -> np.ndarray:
        """Whether each remembered case of ``codes`` (among the partition's case_ids) is
        assessed anew: another decision date (``same`` false) or --reassess naming it."""
        if self.reassess is True:
            again = np.ones(codes.size, bool)
        elif met.reassessed is not None:
            again = met.reassessed[codes]
            self.reassess_seen.update(met.cases.keys.take(from_numbers(codes[again])).to_pylist())
        else:
            again = np.zeros(codes.size, bool)
        return again | ~same

    @staticmethod
    def _same(memory: _Remembered, at: np.ndarray, decided: pa.Array) -> np.ndarray:
        return same_dates(memory.decided.take(from_numbers(at)), decided)

    def _withdraw(self, writer, run_id: int, met: Met, key: tuple[str, str, str], version: str, rows: np.ndarray,
                  decided: pa.Array, runs: np.ndarray, unit: str) -> None:
        """The remembered assessments of ``key`` of the partition's case rows ``rows`` taken
        back (``decided``, ``runs``: per row)."""
        if not rows.size:
            return
        policy, rule, kind = key
        cases = met.cases
        codes = cases.key_code[rows]
        keys, uscc = cases.keys.take(from_numbers(codes)), cases.uscc.take(from_numbers(rows))
        self.withdrawn += len(keys)
        met.touch(key, codes)
        for start in range(0, len(keys), CHUNK_ROWS):
            part = slice(start, start + CHUNK_ROWS)
            n = len(keys[part])
            rows = _json_rows([
                keys[part], uscc[part], from_numbers(np.zeros(n, np.int64)), pc.fill_null(decided[part], string_scalar("")),
                _REASONS.take(from_numbers(np.full(n, WITHDRAWN, np.int64))), from_numbers(runs[part]),
                strings([""] * n),
            ])
            writer.execute(INSERT_ASSESSED, (run_id, policy, version, rule, kind, rows, unit))

    def withdraw_unfired(self, writer, run_id: int, slots, cases, rows: np.ndarray, decided: pa.Array | None) -> None:
        """After every slot is recorded: a remembered case of a rule this run judged
        (``slots``: (policy key, rule, kind, unit) of the run's finding slots), among the
        cases it scored (``rows`` of the partition's case table ``cases``; ``decided``: per
        row), assessed anew and not fired by that rule now, has its assessment withdrawn."""
        decided = pa.nulls(rows.size, pa.string()) if decided is None else decided
        for policy_key, rule, kind, unit in slots:
            policy, version = _policy_version(policy_key)
            key = (policy, rule, kind)
            memory = self.remembered.get(key)
            if memory is None or not rows.size:
                continue
            met = self.met(cases)  # (made once per partition)
            codes = cases.key_code[rows]
            at = met.row_of(key)[codes]
            listed = np.flatnonzero(at >= 0)
            touched = met.touched.get(key)
            if touched is not None:
                listed = listed[~touched[codes[listed]]]
            if not listed.size:
                continue
            take = from_numbers(listed)
            anew = self._anew(met, codes[listed], self._same(memory, at[listed], decided.take(take)))
            self._withdraw(writer, run_id, met, key, version, rows[listed[anew]], decided.take(from_numbers(listed[anew])),
                           memory.runs[at[listed[anew]]], unit)

    def record(self, writer, run_id: int, policy_key: str, rule: str, kind: str, *, cases, rows: np.ndarray,
               imposed: np.ndarray, decided: pa.Array | None, unit: str = "yuan") -> Recorded:
        """For the fired findings of one slot (``rows`` of the partition's case table
        ``cases``; ``imposed``: not superseded): the run that already assessed each (0:
        none), and for those assessed anew the run they supersede and why. An imposed finding
        not already assessed is this run's assessment: its finding row is the memory (store
        version 12), so nothing else is written for it; an earlier assessment taken back
        (assessed anew and superseded now) is written ``withdrawn`` through ``writer``, in the
        run's transaction."""
        n = imposed.size
        policy, version = _policy_version(policy_key)
        assessed_in = np.zeros(n, np.int64)
        supersedes = reason = None
        key = (policy, rule, kind)
        memory = self.remembered.get(key)
        if memory is not None and n:
            met = self.met(cases)
            codes = cases.key_code[rows]
            decided = pa.nulls(n, pa.string()) if decided is None else decided
            # (withdraw_unfired reads it only for a remembered key)
            met.touch(key, codes)
            at = met.row_of(key)[codes]
            hit = np.flatnonzero(at >= 0)
            if hit.size:
                same = self._same(memory, at[hit], decided.take(from_numbers(hit)))
                anew = self._anew(met, codes[hit], same)
                runs = memory.runs[at[hit]]
                now = imposed[hit]
                keep = ~anew & now
                assessed_in[hit[keep]] = runs[keep]
                redo = anew & now
                if redo.any():
                    supersedes, reason = np.zeros(n, np.int64), np.zeros(n, np.int8)
                    supersedes[hit[redo]] = runs[redo]
                    reason[hit[redo]] = np.where(same[redo], REASSESSED, NEW_DECISION)
                # assessed anew and superseded now: the earlier assessment is taken back
                back = hit[anew & ~now]
                self._withdraw(writer, run_id, met, key, version, rows[back], decided.take(from_numbers(back)),
                               runs[anew & ~now], unit)
        self.already += int(np.count_nonzero(assessed_in))
        self.added += int(np.count_nonzero(imposed & (assessed_in == 0)))
        return Recorded(assessed_in, supersedes, reason)


def same_dates(before: pa.Array, now: pa.Array) -> np.ndarray:
    """Per row whether the decision dates ``before`` and ``now`` are the same, both empty
    included. Two columns empty throughout (a table without decision dates, the bench's)
    compare at once; ``pc.fill_null`` with a Python False imported pandas into the run
    (``pa.scalar``: ~0.3 s, py-spy of the second night), ``rules._arrow.fill_null`` does not."""
    n = len(before)
    if before.null_count == n and now.null_count == n:
        return np.ones(n, bool)
    return bools(pc.or_(pc.and_(before.is_null(), now.is_null()), fill_null(pc.equal(before, now), False)))


def decision_dates(results, plan, rows: np.ndarray) -> pa.Array | None:
    """The decision date (ISO text, null when empty) of case rows ``rows``, or None when the
    case kind has none."""
    column = results.cases.columns.get(plan.decision) if plan.decision else None
    if column is None or column.values is None:
        return None
    present = None if column.present is None else column.present[rows].astype(bool)
    if not rows.size or (present is not None and not present.any()):
        # a column left empty (the bench's, a table without decisions): no date to format, where
        # the cast of every fired finding's took ~0.45 s of the main thread at 10 M cases
        return pa.nulls(rows.size, pa.string())
    day_numbers = column.values[rows].astype("datetime64[D]").view(np.int64)
    known = day_numbers if present is None else day_numbers[present]
    low, high = int(known.min()), int(known.max())
    if high - low < rows.size // 4:
        # few distinct days (a case table's decisions span years, not millions of days): each
        # day formatted once and taken, cheaper than formatting every row's
        days = pc.cast(from_numbers(np.arange(low, high + 1, dtype=np.int32)).view(pa.date32()), pa.string())
        at = day_numbers - low if present is None else np.where(present, day_numbers - low, 0)
        return days.take(from_numbers(at, mask=None if present is None else ~present))
    mask = None if present is None else ~present
    return pc.cast(from_numbers(day_numbers.astype(np.int32), mask=mask).view(pa.date32()), pa.string())


def load(connection: sqlite3.Connection, *, policy_fingerprint: str, as_of: dt.date,
         content_fingerprint: Callable[[], str], reassess: bool | Collection[str] = False) -> Assessments:
    """The current assessments of every finished run, but the run this one will replace (a
    rerun of the same input, policies and as_of: known only from the input's content hash,
    which is waited for only if such a run remembered anything). Read when the case stage
    asks, a partition's at a time where the table is spilled (``_remembered.py``)."""
    exclude = None
    if connection.execute(
        "SELECT 1 FROM runs WHERE status = 'done' AND policy_fingerprint = ? AND as_of = ? "
        "AND (EXISTS (SELECT 1 FROM finding_slots s WHERE s.run_id = runs.id AND s.assessed = 1) "
        "OR EXISTS (SELECT 1 FROM assessed_chunks a WHERE a.run_id = runs.id)) LIMIT 1",
        (policy_fingerprint, as_of.isoformat()),
    ).fetchone():
        exclude = store.find_done_run(connection, policy_fingerprint, as_of, input_fingerprint=content_fingerprint())
    if reassess is not True:
        reassess = frozenset(str(c).strip() for c in reassess or ())
    return Assessments({}, reassess, source=Remembered(connection, exclude))


def _remembered(rows, keys) -> dict[tuple[str, str, str], _Remembered]:
    out = {}
    for key, (case_ids, runs, decided, fines) in by_key(rows, keys).items():
        out[key] = _Remembered(case_ids, runs, decided, None if fines is None else FineMemory(*fines))
    return out


def _policy_version(policy_key: str) -> tuple[str, str]:
    """A slot's ``id@version`` as the policy id and version an assessment names."""
    policy, _, version = policy_key.rpartition("@") if "@" in policy_key else (policy_key, "", "")
    return policy, version


__all__ = ["ALREADY_ASSESSED", "Assessments", "FineMemory", "decision_dates", "load", "same_dates"]
