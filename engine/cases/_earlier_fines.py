"""One act, one fine across runs (行政处罚法 art 29).

Art 29: "对当事人的同一个违法行为,不得给予两次以上罚款的行政处罚。同一个违法行为违反多个法律
规范应当给予罚款处罚的,按照罚款数额高的规定处罚". Within a run the fines of an act compete and
the highest is imposed (``_acts.py``). A run also meets acts an earlier run fined: a case of
the act added to the table since (another clause, another case_id), or a case of its own act
that a changed policy now fines under a second clause. The earlier fine was imposed, so the
act may not be fined again: this run's fines of such an act are superseded by it (the
earlier fine named with its run), and the earlier fine's own finding, met again, is already
assessed as before (``_assessed.py``).

Where this run's fine is higher than the earlier one, the second sentence of art 29 points
to the higher clause, but the first forbids a second fine, and the law quoted here (law.md)
gives no rule for imposing the difference; such fines are superseded too, and the run warns,
so that legal staff decide: a new decision of the earlier case (a new decision date, or
``--reassess CASE_ID``) takes its fine out of the memory, and the act's fines then compete
afresh.

An earlier fine stands unless this run assesses its case again: every case under
``--reassess``, its case_id under ``--reassess IDS``, or its case listed with another decision
date than the one remembered. A fine remembered before assessments kept their act (act_id
absent from the chunk) is read as its case's own act.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import FindingKind
from ecorules.rules._arrow import bools, from_bools, from_numbers, numbers, string_scalar

from .._ledger_money import to_fen
from ._assessed import Assessments, decision_dates

_UNIT, _SEP, _OWN, _NOTHING = (string_scalar(t) for t in ("\x1f", "\x1f", "\x1e", ""))


@dataclass
class _Standing:
    """The earlier fines that stand, by act."""

    act: pa.Array  # per act: its key (``_act_keys``)
    label: pa.Array  # per act: "policy@version rule (case_id), run N" of its highest earlier fine
    fen: np.ndarray  # per act: that fine in fen (int64)
    fine: pa.Array  # every standing fine: "case_id␟policy␟rule"


def act_texts(cases, rows: np.ndarray) -> pa.Array | None:
    """The act_id of case rows ``rows``, null where the case is its own act; None when the
    case kind has no act."""
    if cases.act_code is None:
        return None
    code = cases.act_code[rows]
    return cases.acts.take(from_numbers(np.maximum(code, 0), mask=code < 0)) if len(cases.acts) else pa.nulls(
        rows.size, pa.string())


def against_earlier_fines(memory: Assessments | None, results, plan, units) -> tuple[dict[int, pa.Array], list[str]]:
    """The superseded_by of every fine slot (as ``CaseResults.superseded_by``: per fired row,
    null where imposed) once this run's fines compete with those earlier runs imposed on the
    same acts, and the warnings (see the module)."""
    superseded_by = dict(results.superseded_by)
    standing = None if memory is None else _standing(memory, results, plan)
    if standing is None or not superseded_by:
        return superseded_by, []
    program, result, cases, scored = plan.case_program, results.result, results.cases, results.scored
    rule_row = {(p, r): i for i, (p, r) in enumerate(program.rules)}
    fine_slots = [k for k in superseded_by if program.findings[k].kind is FindingKind.FINE]
    parts = []
    for k in fine_slots:
        slot = program.findings[k]
        picked = np.flatnonzero(np.asarray(result.fired[rule_row[(slot.policy_key, slot.rule_id)]]))
        rows = scored[picked]
        case_ids = cases.keys.take(from_numbers(cases.key_code[rows]))
        policy = slot.policy_key.rpartition("@")[0] or slot.policy_key
        parts.append((k, picked, _act_keys(cases.uscc.take(from_numbers(rows)), act_texts(cases, rows), case_ids),
                      pc.binary_join_element_wise(case_ids, string_scalar(policy), string_scalar(slot.rule_id), _SEP),
                      to_fen(1, units[k]) * np.asarray(result.amounts[k], np.int64)[picked]))
    acts = pa.concat_arrays([p[2] for p in parts])
    at = numbers(pc.index_in(acts, value_set=standing.act), fill=-1).astype(np.int64)
    if not (at >= 0).any():
        return superseded_by, []
    fines = pa.concat_arrays([p[3] for p in parts])
    remembered = bools(pc.is_in(fines, value_set=standing.fine))
    by = pa.concat_arrays([superseded_by[k] for k in fine_slots])
    imposed_now = bools(by.is_null())
    # per act: whether this run's own competition imposed a fine already remembered (then
    # the fines it beat keep their label: the same decision as the earlier run's)
    winner_remembered = np.zeros(len(standing.act), bool)
    winner_remembered[at[(at >= 0) & imposed_now & remembered]] = True
    against = at >= 0
    keep_label = against & ~imposed_now & ~remembered & winner_remembered[np.maximum(at, 0)]
    earlier = against & ~remembered & ~keep_label
    labels = standing.label.take(from_numbers(np.maximum(at, 0)))
    new_by = pc.if_else(from_bools(earlier), labels, by)
    new_by = pc.if_else(from_bools(against & remembered), pa.nulls(len(by), pa.string()), new_by)
    fen = np.concatenate([p[4] for p in parts])
    higher = np.flatnonzero(earlier & (fen > standing.fen[np.maximum(at, 0)]))
    warnings = []
    if higher.size:
        first = int(higher[0])
        warnings.append(
            f"行政处罚法 art 29 (不得给予两次以上罚款的行政处罚): {higher.size} fine(s) of acts an earlier run fined are "
            f"higher than the fine imposed then, e.g. {fines[first].as_py().split(chr(31))[0]}: {_yuan(fen[first])} > "
            f"{_yuan(standing.fen[at[first]])} of {labels[first].as_py()}; superseded, not imposed: the higher clause "
            "applies only by a new decision of the earlier case (a new decision date, or --reassess CASE_ID)")
    start = 0
    for k, picked, *_ in parts:
        superseded_by[k] = new_by.slice(start, picked.size)
        start += picked.size
    return superseded_by, warnings


def _standing(memory: Assessments, results, plan) -> _Standing | None:
    """The remembered fines that stand in this run (see the module), highest first within an
    act, then by label; None if there are none."""
    if memory.reassess is True:
        return None
    pieces = []
    for (policy, rule, _kind), remembered in memory.remembered.items():
        fines = remembered.fines
        if fines is None or not len(remembered.case_ids):
            continue
        stands = np.ones(len(remembered.case_ids), bool)
        if memory.reassess:
            stands &= ~bools(pc.is_in(remembered.case_ids, value_set=pa.array(sorted(memory.reassess), pa.string())))
        stands &= ~_decided_anew(remembered, results, plan)
        keep = from_bools(stands)
        case_ids = remembered.case_ids.filter(keep)
        pieces.append(pa.table({
            "act": _act_keys(fines.uscc.filter(keep), fines.acts.filter(keep), case_ids),
            "fine": pc.binary_join_element_wise(case_ids, string_scalar(policy), string_scalar(rule), _SEP),
            "label": pc.binary_join_element_wise(
                pc.binary_join_element_wise(string_scalar(policy), fines.versions.filter(keep), string_scalar("@")),
                string_scalar(rule), pc.binary_join_element_wise(string_scalar("("), case_ids, string_scalar("),"), _NOTHING),
                pc.binary_join_element_wise(string_scalar("run"), pc.cast(from_numbers(remembered.runs[stands]), pa.string()),
                                            string_scalar(" ")),
                string_scalar(" ")),
            "fen": from_numbers(fines.fen[stands]),
        }))
    if not pieces:
        return None
    table = pa.concat_tables(pieces)
    if not table.num_rows:
        return None
    # an act's label and amount are its highest earlier fine's (ties by label); its other
    # earlier fines stand too: met again, their own findings are already assessed
    table = table.sort_by([("act", "ascending"), ("fen", "descending"), ("label", "ascending")])
    acts = table["act"].combine_chunks()
    first = np.ones(table.num_rows, bool)
    if table.num_rows > 1:
        first[1:] = ~bools(pc.equal(acts.slice(1), acts.slice(0, table.num_rows - 1)))
    heads = from_numbers(np.flatnonzero(first))
    return _Standing(act=acts.take(heads), label=table["label"].combine_chunks().take(heads),
                     fen=numbers(table["fen"].combine_chunks().take(heads)), fine=table["fine"].combine_chunks())


def _decided_anew(remembered, results, plan) -> np.ndarray:
    """Per remembered case: listed in this run with another decision date than remembered."""
    cases, scored = results.cases, results.scored
    n = len(remembered.case_ids)
    code = numbers(pc.index_in(remembered.case_ids, value_set=cases.keys), fill=-1).astype(np.int64)
    position = np.full(len(cases.keys), -1, np.int64)
    position[cases.key_code[scored]] = np.arange(scored.size)
    at = np.where(code >= 0, position[np.maximum(code, 0)], -1)
    listed = np.flatnonzero(at >= 0)
    anew = np.zeros(n, bool)
    if not listed.size:
        return anew
    now = decision_dates(results, plan, scored[at[listed]])
    if now is None:
        return anew
    before = remembered.decided.take(from_numbers(listed))
    same = pc.or_(pc.and_(before.is_null(), now.is_null()), pc.fill_null(pc.equal(before, now), False))
    anew[listed] = ~bools(same)
    return anew


def _act_keys(uscc: pa.Array, acts: pa.Array | None, case_ids: pa.Array) -> pa.Array:
    """An act's identity as text: the enterprise and its act_id, or the case where it is its
    own act (no act_id)."""
    own = pc.binary_join_element_wise(_OWN, case_ids, _NOTHING)
    if acts is None:
        return own
    return pc.coalesce(pc.binary_join_element_wise(uscc, acts, _UNIT), own)


def _yuan(fen: int) -> str:
    fen = int(fen)
    return f"{fen // 100:,}" if fen % 100 == 0 else f"{fen // 100:,}.{fen % 100:02d}"


__all__ = ["act_texts", "against_earlier_fines"]
