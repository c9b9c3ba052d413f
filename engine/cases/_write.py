"""The case stage's results into the run's store and totals.

A case's finding is a row ``[uscc, amount_yuan, payer, case_id, status, superseded_by]`` of
a chunk (``_store.FINDINGS_VIEW``); its finding and list slots follow the enterprise
program's. District totals and the run total count imposed findings only: a superseded fine
is shown, never owed. A district's ``cases`` from the case table are the case rows with an
imposed payable finding booked to it. A finding an earlier run assessed (``memory``,
``_assessed.py``) is written ``already_assessed`` with amount 0 and counts in neither.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import ENTERPRISE, Kind
from ecorules.rules._arrow import from_numbers, string_scalar, strings
from ecorules.rules._choices import resolve

from .. import _store as store
from .._nightly import _json_codes, _json_rows, _reason_class
from ._assessed import ALREADY_ASSESSED, Assessments, decision_dates
from ._plan import CasePlan
from ._stage import CaseResults

CHUNK_ROWS = 262_144  # findings per stored chunk, as a registry batch writes them
_IMPOSED, _SUPERSEDED, _EMPTY = string_scalar("imposed"), string_scalar("superseded"), string_scalar("")
_ALREADY = string_scalar(ALREADY_ASSESSED)


def write_case_results(results: CaseResults, plan: CasePlan, writer, run_id: int, acc, *,
                       first_slot: int, first_sanction_slot: int, memory: Assessments | None = None) -> None:
    acc.rows_in += results.rows_in
    acc.rows_scored += results.rows_scored
    acc.rows_rejected += results.rows_rejected
    acc.tables["cases"] = [results.rows_in, results.rows_scored, results.rows_rejected]
    rejects = results.rejects
    counted: set[tuple[str, int | None]] = set()
    for reject in rejects:  # a row with several problems counts once, under its first
        if (reject.source, reject.row) not in counted:
            counted.add((reject.source, reject.row))
            acc.reasons[(reject.column, _reason_class(reject.reason))] += 1
    if rejects:
        writer.executemany(store.INSERT_REJECTS, [
            (run_id, r.source, r.row, r.column, r.value, r.reason) for r in rejects
        ])
    if results.result is None:
        return
    program, result, cases = plan.case_program, results.result, results.cases
    for warning in result.warnings:
        acc.warnings.setdefault(str(warning))
    rules = {(p.key, r.id): r for p in plan.case_policies for r in p.rules}
    rule_row = {(p, r): i for i, (p, r) in enumerate(program.rules)}
    writer.executemany(store.INSERT_FINDING_SLOT, [
        (run_id, first_slot + k, slot.policy_key, slot.rule_id, slot.kind.value, str(rules[(slot.policy_key, slot.rule_id)].citation))
        for k, slot in enumerate(program.findings)
    ])
    writer.executemany(store.INSERT_SANCTION_SLOT, [
        (run_id, first_sanction_slot + s, policy, list_id, rule) for s, (policy, rule, list_id) in enumerate(program.sanctions)
    ])
    scored = results.scored
    uscc = cases.uscc.take(from_numbers(scored))
    keys = cases.keys.take(from_numbers(cases.key_code[scored]))
    districts: dict[str, list] = {}  # label -> [yuan, rows (int64 arrays)]
    for k, slot in enumerate(program.findings):
        picked = np.flatnonzero(np.asarray(result.fired[rule_row[(slot.policy_key, slot.rule_id)]]))
        if not picked.size:
            continue
        index = from_numbers(picked)
        amounts = np.asarray(result.amounts[k], np.int64)[picked]
        by = results.superseded_by.get(k)
        imposed = np.ones(picked.size, bool) if by is None else np.asarray(by.is_null())
        subjects = uscc.take(index)
        payers = subjects if slot.payer == ENTERPRISE else _payers(plan, slot.payer, results, scored[picked])
        # 一例一次: a finding an earlier run assessed is reported, not assessed (_assessed.py)
        assessed_in = None if memory is None else memory.record(
            writer, run_id, slot.policy_key, slot.rule_id, slot.kind.value, keys=keys.take(index), uscc=subjects,
            amounts=amounts, imposed=imposed, decided=decision_dates(results, plan, scored[picked]))
        already = assessed_in is not None and bool(assessed_in.any())
        if already:
            imposed = imposed & (assessed_in == 0)
        status = pc.if_else(pa.array(imposed), _IMPOSED, _SUPERSEDED)
        superseded = pc.fill_null(by, _EMPTY) if by is not None else pa.nulls(picked.size, pa.string()).fill_null(_EMPTY)
        columns = [subjects, from_numbers(amounts), payers, keys.take(index), status, superseded]
        if already:  # no new amount; the run that assessed it as a 7th column (0: none)
            columns[1] = from_numbers(np.where(assessed_in > 0, 0, amounts))
            columns[4] = pc.if_else(pa.array(assessed_in > 0), _ALREADY, status)
            columns.append(from_numbers(assessed_in))
        for start in range(0, picked.size, CHUNK_ROWS):
            part = [c.slice(start, CHUNK_ROWS) for c in columns]
            writer.execute(store.INSERT_FINDINGS, (run_id, first_slot + k, _json_rows(part)))
        acc.findings += picked.size
        if slot.kind.payable:
            acc.total_yuan += int(amounts[imposed].sum(dtype=np.int64))
            if slot.payer != ENTERPRISE:
                _by_district(districts, payers.filter(pa.array(imposed)), amounts[imposed], picked[imposed])
    for label, (yuan, rows) in districts.items():
        total = acc.districts.setdefault(label, [0, 0])
        total[0] += yuan
        total[1] += int(np.unique(np.concatenate(rows)).size)
    for s, (_policy, _rule, list_id) in enumerate(program.sanctions):
        picked = np.flatnonzero(np.asarray(result.sanctions[s]))
        for start in range(0, picked.size, CHUNK_ROWS):
            part = uscc.take(from_numbers(picked[start:start + CHUNK_ROWS]))
            writer.execute(store.INSERT_SANCTIONS, (run_id, first_sanction_slot + s, _json_codes(part)))
        acc.lists[list_id] += picked.size


def _by_district(districts: dict, payers: pa.Array, amounts: np.ndarray, rows: np.ndarray) -> None:
    """Yuan (exact int64) and case rows per payer label."""
    if not len(payers):
        return
    encoded = pc.dictionary_encode(payers)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
    yuan = np.zeros(len(encoded.dictionary), np.int64)
    np.add.at(yuan, codes, amounts)
    for code, label in enumerate(encoded.dictionary.to_pylist()):
        entry = districts.setdefault(label, [0, []])
        entry[0] += int(yuan[code])
        entry[1].append(rows[codes == code])


def _payers(plan: CasePlan, name: str, results: CaseResults, rows: np.ndarray) -> pa.Array:
    """The payer named by fact ``name`` for case rows ``rows``, as the ledger names it (an
    enum's value, never its alias): the case's own fact or its enterprise's."""
    cases, side = results.cases, results.side
    if name in cases.table.column_names:
        column = cases.table[name].take(from_numbers(rows))
    else:
        column = side.table[name].take(from_numbers(cases.enterprise[rows]))
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    fact = plan.facts[name]
    if fact.type.kind is not Kind.ENUM:
        return pc.utf8_trim_whitespace(column)
    encoded = pc.dictionary_encode(column)
    canonical = strings([resolve(fact, text) for text in encoded.dictionary.to_pylist()])
    return canonical.take(encoded.indices)


__all__ = ["CHUNK_ROWS", "write_case_results"]
