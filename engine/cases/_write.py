"""The case stage's results into the run's store and totals.

A case's finding is a row ``[uscc, amount_yuan, payer, case_id, status, superseded_by]`` of
a chunk (``store.sqlite.FINDINGS_VIEW``; payer null where the enterprise pays, read as its
uscc), written ``[uscc, amount_yuan, payer, case_id]`` when the finding is imposed (the view reads a missing status as imposed and a missing superseded_by as
null): most findings are, and every byte is parsed again by whoever reads the view. The rows
are laid out by one Arrow join per chunk; the texts are checked for characters JSON must
escape once per run (the case_id dictionary, the enterprises' usccs), not per chunk. Its
finding and list slots follow the enterprise program's. District totals and the run total count imposed findings only: a superseded fine
is shown, never owed. A district's ``cases`` from the case table are the case rows with an
imposed payable finding booked to it. A finding an earlier run assessed (``memory``,
``_assessed.py``) is written ``already_assessed`` with amount 0 and counts in neither.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import ENTERPRISE, Kind
from ecorules.rules._arrow import (
    bools,
    from_bools,
    from_numbers,
    numbers,
    string_scalar,
    strings,
)
from ecorules.rules._choices import resolve

from .. import _law_notes as law_notes
from .. import store
from .._chunks import (
    CHUNK_ROWS,
    _joined_rows,
    _json_rows,
    _needs_escaping,
    lift_rows,
    sanction_chunk,
    sanction_slot_rows,
)
from .._ledger_money import to_fen, unit_name
from .._rejects import count_reasons
from .._scored import finding_units, reason_class
from ._assessed import ALREADY_ASSESSED, Assessments, decision_dates
from ._earlier_fines import act_texts, against_earlier_fines
from ._plan import CasePlan
from ._stage import CaseResults
from ._table import _stripped

log = logging.getLogger("ecorules.cases")

_ROW = tuple(string_scalar(t) for t in ('["', '",', ',"', '","', '"', "],"))
_SUPERSEDED, _CLOSE, _EMPTY = string_scalar(',"superseded","'), string_scalar('"'), string_scalar("")
_IMPOSED, _SUPERSEDED_WORD = string_scalar("imposed"), string_scalar("superseded")
_ALREADY = string_scalar(ALREADY_ASSESSED)
_NULL_PAYER = string_scalar(',null,"')


def write_case_results(results: CaseResults, plan: CasePlan, writer, run_id: int, acc, *,
                       first_slot: int, first_sanction_slot: int, memory: Assessments | None = None) -> None:
    acc.rows_in += results.rows_in
    acc.rows_scored += results.rows_scored
    acc.rows_rejected += results.rows_rejected
    acc.tables["cases"] = [results.rows_in, results.rows_scored, results.rows_rejected]
    for source, (rows_in, rejected) in results.per_file().items():
        acc.files[source] = [rows_in, rejected]
    acc.described.extend(results.cases.described)
    for warning in results.cases.warnings:
        log.warning("%s", warning)
        acc.warnings.setdefault(warning)
    rejects = results.rejects
    # a row counts once under each of its problems' (column, reason) (engine/_rejects.py)
    count_reasons(acc.reasons, [(r.source, r.row) for r in rejects],
                  [(r.column, reason_class(r.reason)) for r in rejects], [r.reason for r in rejects], acc.examples)
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
    units = finding_units(program)
    writer.executemany(store.INSERT_UNIT_FINDING_SLOT, [
        (run_id, first_slot + k, slot.policy_key, slot.rule_id, slot.kind.value, str(rules[(slot.policy_key, slot.rule_id)].citation),
         None, None if units[k] == 1 else unit_name(units[k]))
        for k, slot in enumerate(program.findings)
    ])
    writer.executemany(store.INSERT_SANCTION_SLOT, sanction_slot_rows(plan.case_policies, program.sanctions, run_id, first_sanction_slot))
    scored = results.scored

    def usccs_at(positions: np.ndarray) -> pa.Array:  # of scored positions; one take, never two
        return cases.uscc.take(from_numbers(scored[positions]))

    def keys_at(positions: np.ndarray) -> pa.Array:
        return cases.keys.take(from_numbers(cases.key_code[scored[positions]]))

    payer_codes: dict[str, tuple[pa.Array, np.ndarray]] = {}
    # every scored uscc is one of the enterprise side's, every case_id one of the dictionary's
    safe_keys = _safe(cases.keys)
    safe_uscc = _safe(results.side.usccs)
    safe_acts = cases.acts is None or _safe(cases.acts)  # every act_id written is one of the dictionary's
    safe_by = safe_keys and _safe(strings([f"{slot.policy_key} {slot.rule_id}" for slot in program.findings]))
    safe_payers = {name: _safe(strings(list(plan.facts[name].type.choices)))
                   for name in {slot.payer for slot in program.findings}
                   if name != ENTERPRISE and plan.facts[name].type.kind is Kind.ENUM}
    districts: dict[str, list] = {}  # label -> [yuan, rows (int64 arrays)]
    # 行政处罚法 art 29 across runs: an act an earlier run fined is not fined again
    superseded_by, notes = against_earlier_fines(memory, results, plan, units)
    for note in notes:
        acc.warnings.setdefault(note)
    for k, slot in enumerate(program.findings):
        picked = np.flatnonzero(np.asarray(result.fired[rule_row[(slot.policy_key, slot.rule_id)]]))
        if not picked.size:
            continue
        amounts = np.asarray(result.amounts[k], np.int64)[picked]
        by = superseded_by.get(k)
        imposed = np.ones(picked.size, bool) if by is None else bools(by.is_null())
        subjects, case_ids = usccs_at(picked), keys_at(picked)
        if slot.payer == ENTERPRISE:
            payers = subjects
        else:
            labels, payer_code = _payers(plan, slot.payer, results, scored[picked], payer_codes)
            payers = labels.take(from_numbers(payer_code))
        # 一例一次: a finding an earlier run assessed is reported, not assessed (_assessed.py)
        assessed_in = None if memory is None else memory.record(
            writer, run_id, slot.policy_key, slot.rule_id, slot.kind.value, keys=case_ids, uscc=subjects,
            amounts=amounts, imposed=imposed, decided=decision_dates(results, plan, scored[picked]),
            safe=(safe_keys, safe_uscc, safe_acts), unit=unit_name(units[k]), acts=act_texts(cases, scored[picked]))
        has_assessed = assessed_in is not None and bool(assessed_in.any())
        if has_assessed:
            imposed = imposed & (assessed_in == 0)
        # 行政处罚法 art 37: the version applied and why, per finding (_law_notes.py)
        for rows, note, own_notes in _law_groups(result, slot.policy_key, picked):
            if rows is not None:
                take = from_numbers(rows)
                part_subjects, part_payers, part_keys = subjects.take(take), payers.take(take), case_ids.take(take)
                part_by = None if by is None else by.take(take)
                part_amounts, part_imposed = amounts[rows], imposed[rows]
                part_assessed = None if assessed_in is None else assessed_in[rows]
            else:
                part_subjects, part_payers, part_keys, part_by = subjects, payers, case_ids, by
                part_amounts, part_imposed, part_assessed = amounts, imposed, assessed_in
            if has_assessed or own_notes is not None:
                _write_with_assessed(writer, run_id, first_slot + k, part_subjects, part_amounts, part_payers, part_keys,
                                     part_by, part_imposed, part_assessed, note, own_notes)
                continue
            columns = [
                _inner(part_subjects, safe_uscc), from_numbers(part_amounts).cast(pa.string()),
                # the enterprise paying its own fine: null, which the findings view reads as the uscc
                None if slot.payer == ENTERPRISE else _inner(part_payers, safe_payers.get(slot.payer)),
                _inner(part_keys, safe_keys),
                # ,"superseded","<by>" after a superseded fine's case_id; nothing after an imposed one
                pc.fill_null(pc.binary_join_element_wise(_SUPERSEDED, _inner(part_by, safe_by), _CLOSE, _EMPTY), _EMPTY)
                if part_by is not None and part_by.null_count < len(part_by) else None,
            ]
            for start in range(0, part_amounts.size, CHUNK_ROWS):
                part = [None if c is None else c.slice(start, CHUNK_ROWS) for c in columns]
                _insert(writer, run_id, first_slot + k, _chunk(part), note)
        acc.findings += picked.size
        if units[k] != 1:  # a finding in fen: the totals it adds to are shown in fen
            acc.in_fen = True
        if slot.kind.payable:
            acc.total_fen += to_fen(amounts[imposed].sum(dtype=np.int64), units[k])
            if slot.payer != ENTERPRISE:
                _by_district(districts, labels, payer_code[imposed], to_fen(1, units[k]) * amounts[imposed],
                             picked[imposed])
                if units[k] != 1:
                    acc.fen_districts.update(pc.unique(payers).to_pylist())
    if memory is not None and memory.remembered:  # a case assessed anew that no rule fires on now
        everyone = np.arange(scored.size)
        memory.withdraw_unfired(writer, run_id, [(slot.policy_key, slot.rule_id, slot.kind.value, unit_name(units[k]))
                                                 for k, slot in enumerate(program.findings)],
                                keys_at(everyone), usccs_at(everyone), decision_dates(results, plan, scored))
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


def _safe(texts: pa.Array) -> bool:
    """Whether no text of ``texts`` holds a character JSON must escape."""
    return not _needs_escaping(texts)


def _inner(texts: pa.Array | None, safe: bool | None) -> pa.Array | None:
    """``texts`` as the inside of JSON string literals (escaped where needed; nulls stay)."""
    if texts is None or safe or (safe is None and _safe(texts)):
        return texts
    return pa.array([None if v is None else json.dumps(v, ensure_ascii=False)[1:-1] for v in texts.to_pylist()],
                    pa.string())


def _chunk(columns: list[pa.Array | None]) -> str:
    """The JSON array of finding rows ``["uscc",amount,"payer","case_id"<tail>]`` (payers
    None: ``null``, the uscc pays): one Arrow join lays out every row with its trailing comma,
    and the joined data buffer, without the last comma, is the array's inside."""
    subjects, amounts, payers, keys, tail = columns
    open_, after_text, before_text, between, close, end = _ROW
    pieces = [open_, subjects, after_text, amounts]
    pieces += [_NULL_PAYER] if payers is None else [before_text, payers, between]
    pieces += [keys, close]
    if tail is not None:
        pieces.append(tail)
    rows = pc.binary_join_element_wise(*pieces, end, _EMPTY)
    if rows.null_count:
        raise ValueError("a finding with an empty uscc, payer or case_id")  # the checks exclude these
    return _joined_rows(rows)


def _write_with_assessed(writer, run_id: int, slot: int, subjects, amounts, payers, keys, by, imposed, assessed_in,
                         note: str | None = None, own_notes: pa.Array | None = None) -> None:
    """Findings written row by row in full: those of a slot holding findings an earlier run
    assessed (every row with its status, the assessed ones with no new amount and the run
    that assessed them as a 7th column, 0: none), and those whose law note is their own (an
    8th column). Rare after the first run of a table's cases, so the plain JSON writer does."""
    if assessed_in is None:
        assessed_in = np.zeros(len(amounts), np.int64)
    status = pc.if_else(from_bools(imposed), _IMPOSED, _SUPERSEDED_WORD)
    status = pc.if_else(from_bools(assessed_in > 0), _ALREADY, status)
    superseded = pc.fill_null(by, _EMPTY) if by is not None else pa.nulls(len(amounts), pa.string()).fill_null(_EMPTY)
    columns = [subjects, from_numbers(np.where(assessed_in > 0, 0, amounts)), payers, keys, status, superseded,
               from_numbers(assessed_in)]
    if own_notes is not None:
        columns.append(own_notes)
    for start in range(0, len(amounts), CHUNK_ROWS):
        _insert(writer, run_id, slot, _json_rows([c.slice(start, CHUNK_ROWS) for c in columns]), note)


def _insert(writer, run_id: int, slot: int, rows: str, note: str | None) -> None:
    if note is None:
        writer.execute(store.INSERT_FINDINGS, (run_id, slot, rows))
    else:
        writer.execute(store.INSERT_NOTED_FINDINGS, (run_id, slot, rows, note))


def _law_groups(result, policy_key: str, picked: np.ndarray):
    """The fired rows of a finding slot in groups by their law note (行政处罚法 art 37):
    (positions in ``picked`` or None for all, the chunk's note, the rows' own notes or None).
    From the law at the act (从旧) one note per group; from the lighter later law (从轻) a
    note per row, with its figures. No note where the kind has no dates of the law."""
    if not getattr(result, "choices", None):
        return [(None, None, None)]
    codes, shared, own = result.finding_notes(policy_key, picked)
    groups = []
    for code in (law_notes.SAME, law_notes.KEPT, law_notes.LIGHTER):
        rows = np.flatnonzero(codes == code)
        if rows.size:
            groups.append((rows, None, own) if code == law_notes.LIGHTER else (rows, shared[code], None))
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
    column = _stripped(column)  # an enum's texts resolve alike with or without spaces (normalize)
    encoded = pc.dictionary_encode(column)
    labels = encoded.dictionary.to_pylist()
    if fact.type.kind is Kind.ENUM:
        # every enterprise's, including those whose registry row was rejected (no case of
        # theirs is scored): a text that resolves to no value stays unresolved (null)
        labels = [resolve(fact, text) for text in labels]
    # an empty cell stays empty (the last label, null): the chunk writer refuses it
    # (from buffers: pa.array of Python objects imports pandas)
    empty = np.array([label is None for label in labels] + [True])
    texts = strings([label or "" for label in labels] + [""])
    labels = pc.replace_with_mask(texts, from_bools(empty), pa.nulls(int(empty.sum()), pa.string()))
    return labels, numbers(encoded.indices, fill=len(labels) - 1).astype(np.int64)


__all__ = ["write_case_results"]
