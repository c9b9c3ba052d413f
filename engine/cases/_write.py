"""The case stage's results into the run's store and totals.

A case's finding is a row ``[uscc, amount, case_id, payer, act_id, decided, status, ...]`` of a
chunk of a slot in the case layout (``store.sqlite.CASE_LAYOUT``, store version 14; payer left
out where the enterprise pays, read as its uscc), each element after case_id left out where it
is empty and nothing present follows: an imposed finding is ``[uscc, amount, case_id]``, one of
a named act ``[uscc, amount, case_id, null, act_id]`` (most findings are, and every byte is
parsed again by whoever reads the view). The rows are laid out in C (``_chunk_rows.pyx``),
read through an index from the columns the case stage holds. Its finding and list slots
follow the enterprise program's. District totals and the run total count imposed findings
only: a superseded fine is shown, never owed. A district's ``cases`` from the case table are
the case rows with an imposed payable finding booked to it.

一例一次 (``memory``, ``_assessed.py``): a finding an earlier run assessed is written
``already_assessed`` with amount 0 and the run that assessed it, and counts in neither; an
imposed finding not yet assessed is this run's assessment, its row the memory (store version
12: its slot marked ``assessed``, the case's act_id and decision date in its row, and where
it is assessed anew, the run it supersedes and why), so that the assessment is not written a
second time.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import ENTERPRISE, Kind
from ecorules.rules._arrow import (
    bools,
    from_bools,
    from_numbers,
    numbers,
    one_array,
    string_buffers,
    strings,
)
from ecorules.rules._choices import resolve

from .. import store
from .._chunk_rows import factor_rows, finding_rows, scan_texts
from .._chunks import CHUNK_ROWS, lift_rows, sanction_chunk, sanction_slot_rows
from .._ledger_money import to_fen, unit_name
from .._rejects import count_reasons
from .._scored import finding_units, reason_class
from ._assessed import Assessments, decision_dates
from ._earlier_fines import against_earlier_fines
from ._plan import CasePlan
from ._stage import CaseResults, CaseRun
from ._table import _coded_distinct, _stripped

log = logging.getLogger("ecorules.cases")



class CaseWriter:
    """The case stage's results into the run's store, a partition at a time, in the run's
    transaction (``writer``: a ``store.RunWriter``; a killed run commits nothing, its rerun
    writes everything once):

    - ``CaseWriter(...)``: the run's finding and list slots of the case program, once;
    - ``begin(run)`` (a ``CaseRun``): what reading the table found (warnings), once;
    - ``partition(results)`` (a ``CaseResults`` of a partition holding every case of its
      enterprises): its findings, list entries, lifts, assessments and district totals;
    - ``finish(run)``: the row counts and the rejects of every partition, in the table's
      row order.
    """

    def __init__(self, plan: CasePlan, writer, run_id: int, acc, *, first_slot: int, first_sanction_slot: int,
                 memory: Assessments | None = None):
        self.plan, self.writer, self.run_id, self.acc, self.memory = plan, writer, run_id, acc, memory
        self.first_slot, self.first_sanction_slot = first_slot, first_sanction_slot
        self._begun = False
        program = plan.case_program
        if program is None:
            return
        rules = {(p.key, r.id): r for p in plan.case_policies for r in p.rules}
        units = finding_units(program)
        # 一例一次: with a memory, a slot's imposed findings are the run's assessments (store version
        # 12); its rows in the case layout (version 14)
        writer.executemany(store.INSERT_CASE_FINDING_SLOT, [
            (run_id, first_slot + k, slot.policy_key, slot.rule_id, slot.kind.value, str(rules[(slot.policy_key, slot.rule_id)].citation),
             None, None if units[k] == 1 else unit_name(units[k]), None if memory is None else 1, store.CASE_LAYOUT)
            for k, slot in enumerate(program.findings)
        ])
        writer.executemany(store.INSERT_SANCTION_SLOT, sanction_slot_rows(plan.case_policies, program.sanctions, run_id, first_sanction_slot))

    def begin(self, run) -> None:
        if self._begun:
            return
        self._begun = True
        self.acc.described.extend(run.described)
        for warning in run.warnings:
            log.warning("%s", warning)
            self.acc.warnings.setdefault(warning)

    def finish(self, run) -> None:
        acc, writer, run_id = self.acc, self.writer, self.run_id
        self.begin(run)
        acc.rows_in += run.rows_in
        acc.rows_scored += run.rows_scored
        acc.rows_rejected += run.rows_rejected
        acc.tables["cases"] = [run.rows_in, run.rows_scored, run.rows_rejected]
        for source, (rows_in, rejected) in run.per_file().items():
            acc.files[source] = [rows_in, rejected]
        rejects = run.rejects
        # a row counts once under each of its problems' (column, reason) (engine/_rejects.py)
        count_reasons(acc.reasons, [(r.source, r.row) for r in rejects],
                      [(r.column, reason_class(r.reason)) for r in rejects], [r.reason for r in rejects], acc.examples)
        for start in range(0, len(rejects), CHUNK_ROWS):
            writer.executemany(store.INSERT_REJECTS, [
                (run_id, r.source, r.row, r.column, r.value, r.reason) for r in rejects[start:start + CHUNK_ROWS]
            ])

    def spilled(self, spilled) -> None:
        """The case table spilled in buckets (``_spill.SpilledCases``), before its first
        partition: the memory of earlier runs sorted into its buckets, so that a partition
        reads only its own (``_remembered.py``)."""
        if self.memory is not None and self.plan.case_program is not None:
            self.memory.route(spilled, self.plan.kind.key)

    def partition(self, results: CaseResults, buckets=None) -> None:
        """A partition's results; ``buckets``: the spilled table's buckets it holds (None:
        the whole table)."""
        if results.result is None:
            return
        plan, writer, run_id, acc, memory = self.plan, self.writer, self.run_id, self.acc, self.memory
        if memory is not None:
            memory.enter(buckets)  # the earlier assessments of this partition's cases (_remembered.py)
        first_slot, first_sanction_slot = self.first_slot, self.first_sanction_slot
        program, result, cases = plan.case_program, results.result, results.cases
        for warning in result.warnings:
            acc.warnings.setdefault(str(warning))
        rule_row = {(p, r): i for i, (p, r) in enumerate(program.rules)}
        units = finding_units(program)
        scored = results.scored

        def usccs_at(positions: np.ndarray) -> pa.Array:  # of scored positions; one take, never two
            return cases.uscc.take(from_numbers(scored[positions]))

        def keys_at(positions: np.ndarray) -> pa.Array:
            return cases.keys.take(from_numbers(cases.key_code[scored[positions]]))

        payer_codes: dict[str, tuple[pa.Array, np.ndarray]] = {}
        # the texts the findings' rows are read from, through an index (_chunk_rows.pyx)
        uscc_texts, key_texts = _scanned(cases.uscc), _scanned(cases.keys)
        act_texts_ = None if cases.act_code is None or not len(cases.acts) else _scanned(cases.acts)
        districts: dict[str, list] = {}  # label -> [yuan, rows (int64 arrays)]
        # 行政处罚法 art 29 across runs: an act an earlier run fined is not fined again
        superseded_by, notes = against_earlier_fines(memory, results, plan, units)
        for note in notes:
            acc.warnings.setdefault(note)
        for k, slot in enumerate(program.findings):
            picked = np.flatnonzero(np.asarray(result.fired[rule_row[(slot.policy_key, slot.rule_id)]]))
            if not picked.size:
                continue
            rows = scored[picked]
            amounts = np.asarray(result.amounts[k], np.int64)[picked]
            by = superseded_by.get(k)
            imposed = np.ones(picked.size, bool) if by is None else bools(by.is_null())
            labels = payer_code = None
            if slot.payer != ENTERPRISE:
                labels, payer_code = _payers(plan, slot.payer, results, rows, payer_codes)
            row = _Rows(uscc=_at(uscc_texts, rows), case=_at(key_texts, cases.key_code[rows]), amounts=amounts,
                        payer=None if labels is None else _payer_texts(labels, payer_code))
            if by is not None and by.null_count < len(by):
                row.status = np.where(imposed, 0, _SUPERSEDED).astype(np.int8)
                row.by = _at(_scanned(by), np.where(imposed, -1, np.arange(picked.size)))
            if memory is not None:
                # 一例一次: a finding an earlier run assessed is reported, not assessed (_assessed.py)
                decided = decision_dates(results, plan, rows)
                recorded = memory.record(writer, run_id, slot.policy_key, slot.rule_id, slot.kind.value, cases=cases,
                                         rows=rows, imposed=imposed, decided=decided, unit=unit_name(units[k]))
                already = recorded.assessed_in > 0
                if already.any():
                    imposed = imposed & ~already
                    row.status = np.where(already, _ALREADY, 0 if row.status is None else row.status).astype(np.int8)
                    row.assessed_in, row.amounts = recorded.assessed_in, np.where(already, 0, amounts)
                # an assessment made now carries its act and decision date in its finding's row
                if act_texts_ is not None:
                    code = cases.act_code[rows]
                    row.act = _at(act_texts_, np.where(imposed & (code >= 0), code, -1))
                if decided is not None and decided.null_count < len(decided):
                    row.decided = _at(_scanned(decided), np.where(imposed & bools(decided.is_valid()), np.arange(picked.size), -1))
                row.supersedes, row.reason = recorded.supersedes, recorded.reason
            # (audit9, store version 13) the roll-ups and levels that placed each finding (_factors.py)
            if results.factors is not None:
                members = results.factors.members(results, k, picked)
                if members is not None:
                    _insert_factors(writer, run_id, first_slot + k, members, row.case)
            # 行政处罚法 art 37: the version applied and why, per finding (_law_notes.py)
            for part, note, own_notes in _law_groups(result, slot.policy_key, picked):
                part = np.arange(picked.size) if part is None else part
                own = None if own_notes is None else (*_buffers(own_notes), np.arange(part.size))
                for start in range(0, part.size, CHUNK_ROWS):
                    chunk = part[start:start + CHUNK_ROWS]
                    notes = None if own is None else (*own[:2], own[2][start:start + CHUNK_ROWS])
                    # laid out on the writer's thread (finding_rows releases the GIL) while this
                    # one judges on: ~1.2 s of the main thread's ~12 at 10 M cases (bench/cases.py)
                    _insert(writer, run_id, first_slot + k, functools.partial(row.chunk, chunk, notes), note)
            acc.findings += picked.size
            if units[k] != 1:  # a finding in fen: the totals it adds to are shown in fen
                acc.in_fen = True
            if slot.kind.payable:
                acc.total_fen += to_fen(amounts[imposed].sum(dtype=np.int64), units[k])
                if slot.payer != ENTERPRISE:
                    _by_district(districts, labels, payer_code[imposed], to_fen(1, units[k]) * amounts[imposed],
                                 picked[imposed])
                    if units[k] != 1:
                        acc.fen_districts.update(labels.take(from_numbers(np.unique(payer_code))).to_pylist())
        if memory is not None and memory.remembered:  # a case assessed anew that no rule fires on now
            memory.withdraw_unfired(writer, run_id, [(slot.policy_key, slot.rule_id, slot.kind.value, unit_name(units[k]))
                                                     for k, slot in enumerate(program.findings)],
                                    cases, scored, decision_dates(results, plan, scored))
        for label, (fen, rows) in districts.items():
            total = acc.districts.setdefault(label, [0, 0])
            total[0] += fen
            booked = np.zeros(len(scored), bool)  # a case counts once however many findings it has
            for part in rows:
                booked[part] = True
            total[1] += int(np.count_nonzero(booked))
        # a case's list entries carry its case_id (their key across runs) and dates (_lists.py)
        for s, (_policy, _rule, list_id) in enumerate(program.sanctions):
            picked = np.flatnonzero(np.asarray(result.sanctions[s]))
            for start in range(0, picked.size, CHUNK_ROWS):
                here = picked[start:start + CHUNK_ROWS]
                part = sanction_chunk(program, result, s, here, usccs_at(here), keys_at(here))
                writer.execute(store.INSERT_SANCTIONS, (run_id, first_sanction_slot + s, part))
            acc.lists[list_id] += picked.size
        if getattr(program, "lifts", ()):
            every = np.arange(len(scored))
            rows = lift_rows(plan.case_policies, program, result, run_id, result.as_of, every, usccs_at(every), keys_at(every))
            writer.executemany(store.INSERT_LIFTS, rows)
            acc.lifts += len(rows)
        if memory is not None:
            memory.leave()


def write_case_results(results: CaseResults, plan: CasePlan, writer, run_id: int, acc, *,
                       first_slot: int, first_sanction_slot: int, memory: Assessments | None = None) -> None:
    """The results of a case table staged whole (one partition) into the run's store."""
    run = CaseRun.whole(results)
    out = CaseWriter(plan, writer, run_id, acc, first_slot=first_slot, first_sanction_slot=first_sanction_slot,
                     memory=memory)
    out.begin(run)
    out.partition(results)
    out.finish(run)


_SUPERSEDED, _ALREADY = 1, 2  # status codes of a finding row (store.STATUS_CODES, _chunk_rows.pyx)


@dataclass
class _Rows:
    """One slot's fired findings as the columns of their chunk rows (per fired finding; the
    text columns ``(offsets, data, index)``, see ``_chunk_rows.pyx``)."""

    uscc: tuple
    case: tuple
    amounts: np.ndarray
    payer: tuple | None = None  # None: the enterprise pays its own (null, read as its uscc)
    status: np.ndarray | None = None  # int8: 0 imposed, _SUPERSEDED, _ALREADY
    by: tuple | None = None  # superseded_by
    assessed_in: np.ndarray | None = None
    act: tuple | None = None
    decided: tuple | None = None
    supersedes: np.ndarray | None = None
    reason: np.ndarray | None = None

    def chunk(self, at: np.ndarray, own_notes: tuple | None) -> bytes:
        """The JSON array (UTF-8) of the findings at positions ``at``, with their own law notes."""
        def texts(column):
            return None if column is None else (column[0], column[1], np.ascontiguousarray(column[2][at], np.int64),
                                                *column[3:])

        def values(column, dtype):
            return None if column is None else np.ascontiguousarray(column[at], dtype)

        return finding_rows(texts(self.uscc), values(self.amounts, np.int64), texts(self.payer), texts(self.case),
                            status=values(self.status, np.int8), by=texts(self.by),
                            assessed_in=values(self.assessed_in, np.int64), note=own_notes, act=texts(self.act),
                            decided=texts(self.decided), supersedes=values(self.supersedes, np.int64),
                            reason=values(self.reason, np.int8))


def _buffers(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The offsets and data of a string array, as ``_chunk_rows`` reads them."""
    offsets, data = string_buffers(one_array(texts))
    return np.ascontiguousarray(offsets), np.ascontiguousarray(data)


def _scanned(texts: pa.Array | pa.ChunkedArray) -> tuple:
    """``_buffers`` with what the chunk writer would read every byte for (``scan_texts``):
    for the texts every chunk of the run reads, read once."""
    offsets, data = _buffers(texts)
    return offsets, data, scan_texts(offsets, data)


def _at(scanned: tuple, index: np.ndarray) -> tuple:
    """A text column of the chunk writer: the texts ``scanned`` (``_scanned``) at ``index``."""
    offsets, data, scan = scanned
    return offsets, data, index, scan


def _payer_texts(labels: pa.Array, codes: np.ndarray) -> tuple:
    """The payers' texts: a code of an empty payer (a null label) stays -1, which the chunk
    writer refuses (the checks exclude such cases)."""
    valid = bools(labels.is_valid())
    return (*_buffers(labels), np.where(valid[codes], codes, -1).astype(np.int64))


def _insert(writer, run_id: int, slot: int, rows: Callable[[], bytes], note: str | None) -> None:
    """A chunk of findings, its text (UTF-8 bytes) made by ``rows()`` on the writer's thread."""
    if note is None:
        writer.execute_built(store.INSERT_FINDINGS_UTF8, lambda: (run_id, slot, rows()))
    else:
        writer.execute_built(store.INSERT_NOTED_FINDINGS_UTF8, lambda: (run_id, slot, rows(), note))


def _insert_factors(writer, run_id: int, slot: int, members: list[tuple], keys: tuple) -> None:
    """(audit9) A slot's factor rows (_factors.py) as chunks of ``factor_chunks``, each one's
    text laid out in C (``factor_rows``, as ``_factors.joined_rows`` joins them) on the
    writer's thread; ``keys``: the findings' case ids, a text column of the chunk writer."""
    prefixes = [json.dumps(name).encode() + b":" for name, _values, _shown in members]
    for start in range(0, len(keys[2]), CHUNK_ROWS):
        writer.execute_built(store.INSERT_FACTORS_UTF8, functools.partial(_factor_chunk, run_id, slot, members, prefixes,
                                                                          keys, start))


def _factor_chunk(run_id: int, slot: int, members: list[tuple], prefixes: list[bytes], keys: tuple, start: int) -> tuple:
    end = start + CHUNK_ROWS
    return run_id, slot, factor_rows((*keys[:2], keys[2][start:end], *keys[3:]), prefixes,
                                     [values[start:end] for _name, values, _shown in members],
                                     [None if shown is None else shown[start:end] for _name, _values, shown in members])


def _law_groups(result, policy_key: str, picked: np.ndarray):
    """The fired rows of a finding slot in groups by their law note (行政处罚法 art 37):
    (positions in ``picked`` or None for all, the chunk's note, None: no row carries a note
    of its own). From the law at the act (从旧) one note per group; from the lighter later
    law (从轻) one per distinct note, its figures in it (``LawResult.finding_notes``). No
    note where the kind has no dates of the law."""
    if not getattr(result, "choices", None):
        return [(None, None, None)]
    groups = [(rows, note, None) for rows, note in result.finding_notes(policy_key, picked)]
    if len(groups) == 1 and groups[0][0].size == picked.size:  # one group, most often: no copies
        groups[0] = (None, *groups[0][1:])
    return groups


def _by_district(districts: dict, labels: pa.Array, codes: np.ndarray, amounts: np.ndarray, rows: np.ndarray) -> None:
    """Yuan (exact int64) and case rows per payer label (``codes`` index ``labels``)."""
    if not codes.size:
        return
    yuan = np.zeros(len(labels), np.int64)
    np.add.at(yuan, codes, amounts)
    for code in np.unique(codes).tolist():  # the few labels in use
        entry = districts.setdefault(labels[code].as_py(), [0, []])
        entry[0] += int(yuan[code])
        entry[1].append(rows[codes == code])


def _payers(plan: CasePlan, name: str, results: CaseResults, rows: np.ndarray,
            cache: dict[str, tuple[pa.Array, np.ndarray]]) -> tuple[pa.Array, np.ndarray]:
    """The payer named by fact ``name`` for case rows ``rows``, as the ledger names it (an
    enum's value, never its alias): the case's own fact or its enterprise's. As distinct
    labels and an int64 code per row: an enterprise's fact is resolved once per enterprise
    (kept in ``cache``), not once per finding."""
    cases, side = results.cases, results.side
    if name in cases.table.column_names:
        return _coded(plan.facts[name], cases.table[name].take(from_numbers(rows)))
    if name not in cache:
        cache[name] = _coded(plan.facts[name], side.table[name])
    labels, codes = cache[name]
    return labels, codes[cases.enterprise[rows]]


def _coded(fact, column) -> tuple[pa.Array, np.ndarray]:
    # coded as written, each distinct text trimmed (an enum's texts resolve alike with or
    # without spaces): trimming every enterprise's text, then coding it, took ~65 ms a
    # partition at a million enterprises; a dictionary column (Parquet's enums) is coded
    # already, a text column by Arrow (a district's texts do not pack for encode_texts)
    column = one_array(column)  # (combine_chunks copies even a single chunk)
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    by_entry, distinct = _coded_distinct(column.dictionary, _stripped)
    codes = np.append(by_entry, -1)[numbers(column.indices, fill=-1).astype(np.int64)]
    labels = distinct.to_pylist()
    if fact.type.kind is Kind.ENUM:
        # every enterprise's, including those whose registry row was rejected (no case of
        # theirs is scored): a text that resolves to no value stays unresolved (null)
        labels = [resolve(fact, text) for text in labels]
    # an empty cell stays empty (the last label, null): the chunk writer refuses it
    # (from buffers: pa.array of Python objects imports pandas)
    empty = np.array([label is None for label in labels] + [True])
    texts = strings([label or "" for label in labels] + [""])
    labels = pc.replace_with_mask(texts, from_bools(empty), pa.nulls(int(empty.sum()), pa.string()))
    return labels, np.where(codes >= 0, codes, len(labels) - 1)


__all__ = ["CaseWriter", "write_case_results"]
