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
from ecorules.fastcalc._cases import number_positions
from ecorules.rules import FindingKind
from ecorules.rules._arrow import (
    bools,
    distinct_sorted,
    from_bools,
    from_numbers,
    numbers,
    string_scalar,
)

from .._ledger_money import to_fen
from ._assessed import Assessments, Met, decision_dates, same_dates
from ._table import indexed, positions

_NOTHING = string_scalar("")
_FINE = FindingKind.FINE.value


@dataclass
class _Standing:
    """The earlier fines that stand, by act. An act is numbered within the partition
    (``_act_numbers``): a remembered fine of an act none of the partition's cases belongs to
    meets none of this run's fines and is left out of ``acts``."""

    acts: np.ndarray  # the act numbers, ascending
    fen: np.ndarray  # per act: its highest earlier fine in fen (int64)
    # per act: where its fines start in ``order`` and how many share the highest amount (the
    # label, "policy@version rule (case_id), run N", decides among those: ``labels``)
    first: np.ndarray
    tied: np.ndarray
    order: np.ndarray  # the standing fines of the acts, by act and amount (highest first)
    key: np.ndarray  # per standing fine: its key's place in ``keys``
    row: np.ndarray  # per standing fine: its row among its key's remembered assessments
    keys: list[tuple[str, str, str]]
    stands: dict[tuple[str, str, str], np.ndarray]  # per fine key: per remembered case, whether it stands

    def remembered(self, met: Met, key: tuple[str, str, str], codes: np.ndarray) -> np.ndarray:
        """Whether the fine of ``key`` of each case (``codes`` among the partition's case_ids)
        is a standing earlier fine."""
        stands = self.stands.get(key)
        if stands is None or not stands.size:
            return np.zeros(codes.size, bool)
        row = met.row_of(key)[codes]
        return (row >= 0) & stands[np.maximum(row, 0)]

    def labels(self, memory: Assessments, acts: np.ndarray) -> pa.Array:
        """The label of each act of ``acts`` (places in ``self.acts``): its highest earlier
        fine's, the first label where amounts tie. Made for the acts asked for alone: a
        night mostly meets fines it assessed itself before, whose acts need none."""
        counts = self.tied[acts]
        # the places in ``order`` of each act's fines of its highest amount, act after act
        at = np.repeat(self.first[acts] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        fines = self.order[at]
        owner = np.repeat(np.arange(acts.size), counts)
        keys, rows = self.key[fines], self.row[fines]
        pieces, places = [], []
        for k in np.unique(keys):
            (policy, rule, _kind), mine = self.keys[k], np.flatnonzero(keys == k)
            remembered = memory.remembered[self.keys[k]]
            take = from_numbers(rows[mine])
            case_ids = remembered.case_ids.take(take)
            pieces.append(pc.binary_join_element_wise(
                pc.binary_join_element_wise(string_scalar(policy), remembered.fines.versions.take(take),
                                            string_scalar("@")),
                string_scalar(rule), pc.binary_join_element_wise(string_scalar("("), case_ids, string_scalar("),"), _NOTHING),
                pc.binary_join_element_wise(string_scalar("run"), pc.cast(from_numbers(remembered.runs[rows[mine]]),
                                                                          pa.string()), string_scalar(" ")),
                string_scalar(" ")))
            places.append(mine)
        label = pa.concat_arrays(pieces).take(from_numbers(np.argsort(np.concatenate(places), kind="stable")))
        table = pa.table({"act": from_numbers(owner), "label": label}).sort_by([("act", "ascending"), ("label", "ascending")])
        heads = np.ones(table.num_rows, bool)
        heads[1:] = np.diff(numbers(table["act"].combine_chunks())) != 0
        return table["label"].combine_chunks().filter(from_bools(heads))


def against_earlier_fines(memory: Assessments | None, results, plan, units) -> tuple[dict[int, pa.Array], list[str]]:
    """The superseded_by of every fine slot (as ``CaseResults.superseded_by``: per fired row,
    null where imposed) once this run's fines compete with those earlier runs imposed on the
    same acts, and the warnings (see the module)."""
    superseded_by = dict(results.superseded_by)
    if memory is None or memory.reassess is True or not superseded_by or not memory.remembered:
        return superseded_by, []
    program, result, cases, scored = plan.case_program, results.result, results.cases, results.scored
    met = memory.met(cases)
    standing = _standing(memory, met, results, plan)
    if standing is None:
        return superseded_by, []
    rule_row = {(p, r): i for i, (p, r) in enumerate(program.rules)}
    fine_slots = [k for k in superseded_by if program.findings[k].kind is FindingKind.FINE]
    parts = []
    for k in fine_slots:
        slot = program.findings[k]
        picked = np.flatnonzero(np.asarray(result.fired[rule_row[(slot.policy_key, slot.rule_id)]]))
        rows = scored[picked]
        codes = cases.key_code[rows]
        policy = slot.policy_key.rpartition("@")[0] or slot.policy_key
        parts.append((k, picked, _act_numbers(cases, rows), codes,
                      standing.remembered(met, (policy, slot.rule_id, _FINE), codes),
                      to_fen(1, units[k]) * np.asarray(result.amounts[k], np.int64)[picked]))
    if not parts or not standing.acts.size:
        return superseded_by, []
    at = number_positions(standing.acts, np.concatenate([p[2] for p in parts]))
    if not (at >= 0).any():
        return superseded_by, []
    remembered = np.concatenate([p[4] for p in parts])
    by = pa.concat_arrays([superseded_by[k] for k in fine_slots])
    imposed_now = bools(by.is_null())
    # per act: whether this run's own competition imposed a fine already remembered (then
    # the fines it beat keep their label: the same decision as the earlier run's)
    winner_remembered = np.zeros(len(standing.acts), bool)
    winner_remembered[at[(at >= 0) & imposed_now & remembered]] = True
    against = at >= 0
    keep_label = against & ~imposed_now & ~remembered & winner_remembered[np.maximum(at, 0)]
    earlier = against & ~remembered & ~keep_label
    labelled = distinct_sorted(at[earlier])
    labels = pa.nulls(len(by), pa.string())
    if labelled.size:
        place = np.minimum(np.searchsorted(labelled, np.maximum(at, 0)), labelled.size - 1)
        labels = standing.labels(memory, labelled).take(from_numbers(place, mask=~earlier))
    new_by = pc.if_else(from_bools(earlier), labels, by)
    new_by = pc.if_else(from_bools(against & remembered), pa.nulls(len(by), pa.string()), new_by)
    fen = np.concatenate([p[5] for p in parts])
    higher = np.flatnonzero(earlier & (fen > standing.fen[np.maximum(at, 0)]))
    warnings = []
    if higher.size:
        first = int(higher[0])
        case_id = cases.keys[int(np.concatenate([p[3] for p in parts])[first])].as_py()
        warnings.append(
            f"行政处罚法 art 29 (不得给予两次以上罚款的行政处罚): {higher.size} fine(s) of acts an earlier run fined are "
            f"higher than the fine imposed then, e.g. {case_id}: {_yuan(fen[first])} > "
            f"{_yuan(standing.fen[at[first]])} of {labels[first].as_py()}; superseded, not imposed: the higher clause "
            "applies only by a new decision of the earlier case (a new decision date, or --reassess CASE_ID)")
    start = 0
    for k, picked, *_ in parts:
        superseded_by[k] = new_by.slice(start, picked.size)
        start += picked.size
    return superseded_by, warnings


def _standing(memory: Assessments, met: Met, results, plan) -> _Standing | None:
    """The remembered fines that stand in this run (see the module), by act, highest first
    within an act; None if there are none."""
    cases, scored = results.cases, results.scored
    # per code of the partition's case_ids, its scored position (-1: not scored)
    scored_at = np.full(len(cases.keys), -1, np.int64)
    scored_at[cases.key_code[scored]] = np.arange(scored.size)
    named_acts = cases.act_code is not None and len(cases.acts) > 0
    act_index = uscc_index = None
    keys, stands_by_key, pieces = [], {}, []
    for key, remembered in memory.remembered.items():
        fines = remembered.fines
        if fines is None or not len(remembered.case_ids):
            continue
        code = met.code[key]
        stands = np.ones(len(remembered.case_ids), bool)
        if memory.reassess:
            stands &= ~bools(pc.is_in(remembered.case_ids, value_set=pa.array(sorted(memory.reassess), pa.string())))
        stands &= ~_decided_anew(remembered, code, scored_at, results, plan)
        stands_by_key[key] = stands
        # the act of each: its case where it is its own act, else its enterprise's act_id
        act = code.copy()
        named = np.flatnonzero(bools(pc.and_(fines.acts.is_valid(), fines.uscc.is_valid())) & stands)
        if named.size:
            act[named] = -1
            if named_acts:
                if act_index is None:
                    act_index, uscc_index = indexed(cases.acts), indexed(cases.uscc_distinct)
                take = from_numbers(named)
                act_code = positions(act_index, fines.acts.take(take))
                uscc_code = positions(uscc_index, fines.uscc.take(take))
                act[named] = np.where((act_code >= 0) & (uscc_code >= 0),
                                      _named_act(cases, uscc_code, act_code), -1)
        kept = np.flatnonzero(stands & (act >= 0))
        pieces.append((np.full(kept.size, len(keys), np.int64), kept, act[kept], fines.fen[kept]))
        keys.append(key)
    if not keys or not any(s.any() for s in stands_by_key.values()):
        return None
    key, row, act, fen = (np.concatenate([p[i] for p in pieces]) for i in range(4))
    # an act's amount and label are its highest earlier fine's (ties by label); its other
    # earlier fines stand too: met again, their own findings are already assessed
    order = np.lexsort((-fen, act))
    sorted_act, sorted_fen = act[order], fen[order]
    starts = np.flatnonzero(np.diff(sorted_act, prepend=-2) != 0)
    top = sorted_fen[starts]
    tied = np.add.reduceat((sorted_fen == np.repeat(top, np.diff(np.append(starts, order.size)))).astype(np.int64),
                           starts) if starts.size else np.zeros(0, np.int64)
    return _Standing(acts=sorted_act[starts], fen=top, first=starts, tied=tied, order=order, key=key, row=row,
                     keys=keys, stands=stands_by_key)


def _decided_anew(remembered, code: np.ndarray, scored_at: np.ndarray, results, plan) -> np.ndarray:
    """Per remembered case (``code``: among the partition's case_ids, -1: not listed): listed
    in this run with another decision date than remembered."""
    scored = results.scored
    n = len(remembered.case_ids)
    at = np.where(code >= 0, scored_at[np.maximum(code, 0)], -1)
    listed = np.flatnonzero(at >= 0)
    anew = np.zeros(n, bool)
    if not listed.size:
        return anew
    now = decision_dates(results, plan, scored[at[listed]])
    if now is None:
        return anew
    anew[listed] = ~same_dates(remembered.decided.take(from_numbers(listed)), now)
    return anew


def _act_numbers(cases, rows: np.ndarray) -> np.ndarray:
    """The act of each case row ``rows`` as a number within the partition: its case's code
    where the case is its own act (no act_id), else ``_named_act`` of its enterprise and
    act_id."""
    own = cases.key_code[rows]
    if cases.act_code is None or not len(cases.acts):
        return own
    act, uscc = cases.act_code[rows], cases.uscc_code[rows]
    return np.where((act >= 0) & (uscc >= 0), _named_act(cases, np.maximum(uscc, 0), np.maximum(act, 0)), own)


def _named_act(cases, uscc_code: np.ndarray, act_code: np.ndarray) -> np.ndarray:
    """An enterprise's act_id as a number past every case's code (``_act_numbers``)."""
    return len(cases.keys) + uscc_code.astype(np.int64) * len(cases.acts) + act_code


def _yuan(fen: int) -> str:
    fen = int(fen)
    return f"{fen // 100:,}" if fen % 100 == 0 else f"{fen // 100:,}.{fen % 100:02d}"


__all__ = ["against_earlier_fines"]
