"""Scoring one batch of records, apart from writing it: the seam the nightly run and the
distributed engines (engine/distributed/) share.

:func:`score_batch` takes a :class:`Batch` (the needed columns under their facts' names, the
rows that could not be read) and returns a :class:`ScoredBatch`: counts, partial district
totals, findings, list entries, lifts and rejects, as plain values (Arrow arrays, numpy,
ints) that pickle. Its partial totals add up: the district totals of a run are the sums of
its batches', in any order and on any machine, so a Dask partition or a Spark task scores
its batches alone and the driver adds them, exactly (Python ints, never float). Money is
summed in fen (``total_fen``, the districts'), so that batches of yuan and fen findings add
up exactly; ``has_fen`` and ``fen_payers`` say where a total must be shown in fen.

The nightly run writes a ScoredBatch to SQLite in the caller's thread (engine/_nightly.py);
what it writes is built from these values by the same functions as before the split.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import ENTERPRISE, FindingKind, Kind, PolicySet
from ecorules.rules._arrow import from_numbers, plain_array

from ._chunks import _JSON_UNSAFE, _needs_escaping, canonical_values, lift_rows
from ._ledger_money import FEN_PER_YUAN, YUAN, in_yuan, to_fen
from ._rejects import RejectColumns, count_reasons, kernel_rejects
from ._sources import Batch, Reject
from .sources._types import column_mark


@functools.lru_cache(maxsize=65536)  # called per rejected row: a bad registry repeats its reasons
def reason_class(reason: str) -> str:
    """A reason without the values it quotes, so that like reasons count together:
    "check character is '2', expected 'T'" -> "check character is '…', expected '…'"."""
    return re.sub(r"(?<!GB )(?<![A-Za-z0-9_.-])-?\d+", "N", re.sub(r"'[^']*'", "'…'", reason))


@dataclass
class Slot:
    policy: str
    rule: str
    kind: FindingKind
    payer: str
    citation: str
    fired_row: int  # the row of the result's ``fired`` that says where this finding exists
    per_yuan: int = 1  # the unit of its amounts: 1 yuan, 100 fen


def finding_units(program) -> tuple[int, ...]:
    """How many of each finding slot's unit make a yuan (1 yuan, 100 fen): the kernel's
    amounts of a slot are whole numbers of its unit (rules/_money.py)."""
    units = getattr(getattr(program, "compiled", None), "finding_units", ())  # stand-ins in tests have none
    return tuple(units) or (1,) * len(program.findings)


@dataclass
class Scoring:
    """What scoring one table's batches needs: the program of its kind's policies, the fact
    naming each record (the kind's key: uscc for the registry), and where its finding and
    list slots start among the run's (the registry's first, then the other kinds' tables,
    then the case table's)."""

    kind: str
    policies: PolicySet
    program: Any
    subject: str
    slots: list[Slot]
    sanction_slots: list
    safe_facts: set[str]  # facts whose valid values need no JSON escaping (ENTERPRISE: the subject)
    first_slot: int = 0
    first_sanction_slot: int = 0
    reuse: Any = None  # the previous batch's result, whose arrays the next batch overwrites


def make_scoring(policies: PolicySet, kind: str, subject: str, compile_program, *, domain: str,
                 first_slot: int = 0, first_sanction_slot: int = 0) -> Scoring:
    """Compile ``kind``'s policies into a :class:`Scoring` (``domain``: the run's own kind)."""
    program = compile_program(policies, domain=kind)
    rules = {(p.key, r.id): r for p in policies for r in p.rules}
    fired_row = {(policy, rule): r for r, (policy, rule) in enumerate(program.rules)}
    slots = [
        Slot(policy, rule, finding_kind, payer, str(rules[(policy, rule)].citation), fired_row[(policy, rule)], unit)
        for (policy, rule, _index, finding_kind, payer), unit in zip(program.findings, finding_units(program),
                                                                     strict=True)
    ]
    # facts whose valid values need no JSON escaping: USCCs, and enums without " \
    safe = {
        name for name, fact in policies.facts.items()
        if fact.format == "uscc"
        or (fact.type.choices and not any(re.search(_JSON_UNSAFE, c) for c in fact.type.choices))
    }
    if subject in safe or kind == domain:
        safe.add(ENTERPRISE)  # a finding paid by the record itself names it by its key
    return Scoring(kind, policies, program, subject, slots, list(program.sanctions), safe,
                   first_slot, first_sanction_slot)


@dataclass
class FindingPart:
    """The findings of one slot in one batch: the records, their amounts, who pays."""

    slot: int  # among its Scoring's slots
    subjects: pa.Array
    amounts: pa.Array  # int64, whole units of its slot (yuan, or fen)
    payers: pa.Array


@dataclass
class EntryPart:
    """The list entries of one sanction slot in one batch."""

    slot: int  # among its Scoring's sanction slots
    list_id: str
    keys: pa.Array
    start: np.ndarray | None  # int64 day numbers, None: the default start (as_of)
    end: np.ndarray | None  # None: open-ended


@dataclass
class ScoredBatch:
    """What one batch gave. Counts and totals add up across batches."""

    source: str
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    total_fen: int = 0
    rewards_fen: int = 0
    districts: dict[str, list[int]] = field(default_factory=dict)  # district -> [deduction_fen, cases]
    has_fen: bool = False  # some finding is in fen: the totals it adds to are shown in fen
    fen_payers: set = field(default_factory=set)  # payers (districts) owing some amount in fen
    findings: list[FindingPart] = field(default_factory=list)
    entries: list[EntryPart] = field(default_factory=list)
    lifts: list[tuple] = field(default_factory=list)  # lifts rows without their run id
    kernel_rejects: RejectColumns | None = None  # values the scorer refused
    read_rejects: list[Reject] = field(default_factory=list)  # rows that could not be read
    reasons: Counter = field(default_factory=Counter)  # (column, reason class) -> rejected rows
    examples: dict = field(default_factory=dict)  # (column, reason class) -> its first reason
    warnings: list[str] = field(default_factory=list)

    @property
    def total_yuan(self) -> int:
        """The total in whole yuan (a ValueError where it holds fen: callers of yuan only)."""
        return in_yuan(self.total_fen, YUAN)

    @property
    def districts_yuan(self) -> dict[str, list[int]]:
        """district -> [deduction in whole yuan, cases] (a ValueError where one holds fen)."""
        return {district: [in_yuan(fen, YUAN), cases] for district, (fen, cases) in self.districts.items()}

    @property
    def finding_count(self) -> int:
        return sum(len(part.subjects) for part in self.findings)

    def reject_rows(self) -> list[tuple]:
        """(source, row, column, value, reason) of every reject, the scorer's first."""
        rows = [row[1:] for row in self.kernel_rejects.sql_rows(0)] if self.kernel_rejects is not None else []
        return rows + [(r.source, r.row, r.column, r.value, r.reason) for r in self.read_rejects]


def score_batch(scoring: Scoring, batch: Batch, *, as_of, threads: int = 1, reuse: bool = False) -> ScoredBatch:
    """Validate and score ``batch`` as ``ecorules run`` does. ``reuse``: overwrite the
    previous call's kernel outputs (a caller that is done with them: the nightly run)."""
    n = batch.table.num_rows
    scored = ScoredBatch(batch.source, rows_in=batch.rows_in, rows_rejected=batch.rows_in - n,
                         read_rejects=list(batch.rejects))
    rejects = batch.rejects
    count_reasons(scored.reasons, [r.row for r in rejects],
                  [(r.column, r.reason_class or reason_class(r.reason)) for r in rejects],
                  [r.reason for r in rejects], scored.examples)
    if not n:
        return scored
    program = scoring.program
    result = program.score(_trusting(scoring, batch), as_of=as_of, threads=threads,
                           out=scoring.reuse if reuse else None)
    if reuse:
        scoring.reuse = result
    valid = np.asarray(result.valid, dtype=bool)
    count = int(np.count_nonzero(valid))
    scored.rows_scored = count
    scored.rows_rejected += n - count
    # the kernel's row totals are in its total_unit (fen if any slot is): fen here
    total_unit = getattr(result, "total_unit", 1)
    scored.total_fen = to_fen(np.asarray(result.total_yuan, dtype=np.int64)[valid].sum(dtype=np.int64), total_unit)
    if hasattr(result, "rewards_yuan"):
        scored.rewards_fen = to_fen(np.asarray(result.rewards_yuan, dtype=np.int64)[valid].sum(dtype=np.int64),
                                    total_unit)
    scored.warnings = [str(warning) for warning in getattr(result, "warnings", ()) or ()]
    # A district with only 0-yuan findings has cases and no yuan: it is listed too.
    cases, yuan = result.case_counts_by_payer(), result.totals_by_payer()
    for district in dict.fromkeys([*yuan, *cases]):
        if district == ENTERPRISE or not (yuan.get(district) or cases.get(district)):
            continue  # fines owed by enterprises are in findings, not district totals
        # exact: the kernel gives an int of yuan, or a Decimal with the fen
        scored.districts[district] = [int(yuan.get(district, 0) * FEN_PER_YUAN), int(cases.get(district, 0))]
    scored.kernel_rejects = kernel_rejects(result, batch.source, batch.rows, batch.headers, scored.reasons,
                                           reason_class, scored.examples)
    keys = _Keys(scoring, batch, valid)
    scored.findings = _findings(scoring, result, batch, valid, keys)
    for part in scored.findings:
        slot = scoring.slots[part.slot]
        if slot.per_yuan != 1:
            scored.has_fen = True
            if slot.payer != ENTERPRISE and slot.kind.payable:
                scored.fen_payers.update(pc.unique(part.payers).to_pylist())
    scored.entries = _entries(scoring, result, valid, keys)
    if getattr(program, "lifts", ()):
        scored.lifts = [row[1:] for row in lift_rows(scoring.policies, program, result, 0, as_of,
                                                     np.flatnonzero(valid), keys())]
    return scored


def _trusting(scoring: Scoring, batch: Batch):
    """The batch's columns for the program, those the reading checked whole (``Batch.checked``)
    passed as validated: the kernel reads none of them, and every cell is valid."""
    kernel_facts = getattr(scoring.program, "kernel_facts", None)
    trusted = [name for name in batch.checked if kernel_facts is not None and name not in kernel_facts]
    # checked but for a few rows (Batch.suspects), if the column is still the one checked
    partly = {name: rows for name, (rows, mark) in batch.suspects.items()
              if kernel_facts is not None and name not in kernel_facts and name not in trusted
              and name in batch.table.column_names and mark == column_mark(batch.table[name])}
    if not trusted and not partly:
        return batch.table
    from ecorules.fastcalc._validate_common import Validated, ValidColumn

    n = batch.table.num_rows
    facts = scoring.policies.facts
    return {name: Validated(facts[name], ValidColumn(None), n) if name in trusted
            else Validated(facts[name], ValidColumn(None), n, unchecked=(partly[name], batch.table[name].take(
                from_numbers(partly[name])).combine_chunks())) if name in partly
            else batch.table[name] for name in batch.table.column_names}


class _Keys:
    """The batch's records as the ledger names them, made once and only when needed: their
    key (a district's as the value, not the alias its table wrote; rejected rows, whose key
    may not resolve, as null)."""

    def __init__(self, scoring: Scoring, batch: Batch, valid: np.ndarray):
        self.scoring, self.batch, self.valid, self.value = scoring, batch, valid, None

    def __call__(self) -> pa.Array:
        if self.value is None:
            column = plain_array(self.batch.table[self.scoring.subject])
            fact = self.scoring.policies.facts[self.scoring.subject]
            if fact.type.kind is Kind.ENUM:
                column = canonical_values(fact, pc.if_else(pa.array(self.valid), column, pa.scalar(None, column.type)))
            self.value = column
        return self.value


def _payers(scoring: Scoring, column: pa.ChunkedArray, name: str) -> pa.Array:
    """The payers of findings as the ledger names them: an enum cell may say an alias
    (经开区), a text cell may carry spaces around it, and the district totals, which the kernel
    sums by code, say the canonical value. The rows were accepted, so every distinct text resolves."""
    column = plain_array(column)
    fact = scoring.policies.facts[name]
    return canonical_values(fact, column)


def _findings(scoring: Scoring, result, batch: Batch, valid: np.ndarray, keys: _Keys) -> list[FindingPart]:
    # A finding is written where its rule fired, not where its amount is non-zero: a rule
    # that fires for 0 yuan (an enclosed silo's dust fee) is a result the Evaluator shows.
    amounts, fired = result.amounts, result.fired
    parts = []
    for k, slot in enumerate(scoring.slots):
        picked = np.flatnonzero(np.asarray(fired[slot.fired_row]))
        picked = picked[valid[picked]]
        if not picked.size:
            continue
        index = from_numbers(picked)
        subjects = keys().take(index)
        money = from_numbers(np.asarray(amounts[k])[picked].astype(np.int64, copy=False))
        payers = (subjects if slot.payer == ENTERPRISE
                  else _payers(scoring, batch.table[slot.payer].take(index), slot.payer))
        parts.append(FindingPart(k, subjects, money, payers))
    return parts


def _entries(scoring: Scoring, result, valid: np.ndarray, keys: _Keys) -> list[EntryPart]:
    program = scoring.program
    dated = getattr(result, "dates", None) is not None and hasattr(program, "entry_dates")
    parts = []
    for s, (_policy, _rule, list_id) in enumerate(scoring.sanction_slots):
        picked = np.flatnonzero(np.asarray(result.sanctions[s]))
        picked = picked[valid[picked]]
        if not picked.size:
            continue
        start, end = program.entry_dates(result, s, picked) if dated else (None, None)
        parts.append(EntryPart(s, list_id, keys().take(from_numbers(picked)), start, end))
    return parts


def entries_escaped(scoring: Scoring, part: EntryPart) -> bool:
    """Whether the entries' keys need the JSON form that escapes them (a kind's key as its
    table writes it; valid USCCs never do)."""
    return scoring.subject not in scoring.safe_facts and _needs_escaping(part.keys)


__all__ = ["EntryPart", "FindingPart", "ScoredBatch", "Scoring", "Slot", "entries_escaped", "finding_units",
           "make_scoring", "reason_class", "score_batch"]
