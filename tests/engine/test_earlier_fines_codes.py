"""One act one fine and 一例一次 across runs judged by integer codes (engine/cases/_earlier_fines.py,
_assessed.py) decide what the texts they replaced decided.

The memory of a partition is met with its case table by codes (``Assessments.met``): acts,
case_ids and (case, policy, rule) fines were texts looked up by Arrow's ``index_in`` per slot
and rule. The texts' reckoning is kept here as the reference, and every partition of random
nights (a pool of cases of a few enterprises, acts changed, cases left out and listed again,
decision dates changed, fines of equal amounts, --reassess of some or all, one partition or
many) is judged by both: the same superseded_by and warnings per partition, the same
``Recorded`` per slot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ecorules.engine._ledger_money import to_fen
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases import _assessed, _spill, _write
from ecorules.engine.cases._assessed import decision_dates
from ecorules.engine.cases._earlier_fines import _yuan, against_earlier_fines
from ecorules.rules import FindingKind
from ecorules.rules._arrow import bools, from_bools, from_numbers, numbers, string_scalar
from test_assessed_once import make_world, write_cases
from test_one_fine_across_runs import _case

_UNIT, _SEP, _OWN, _NOTHING = (string_scalar(t) for t in ("\x1f", "\x1f", "\x1e", ""))


@dataclass
class _Standing:
    act: pa.Array
    label: pa.Array
    fen: np.ndarray
    fine: pa.Array


def _reference(memory, results, plan, units, seen):
    """``against_earlier_fines`` as the texts decided it (the code of 3b3b1a5)."""
    superseded_by = dict(results.superseded_by)
    standing = None if memory is None else _reference_standing(memory, results, plan, seen)
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
    winner_remembered = np.zeros(len(standing.act), bool)
    winner_remembered[at[(at >= 0) & imposed_now & remembered]] = True
    against = at >= 0
    keep_label = against & ~imposed_now & ~remembered & winner_remembered[np.maximum(at, 0)]
    earlier = against & ~remembered & ~keep_label
    seen["earlier"] += int(earlier.sum())
    seen["kept label"] += int(keep_label.sum())
    seen["remembered"] += int((against & remembered).sum())
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


def _reference_standing(memory, results, plan, seen):
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
        stands &= ~_reference_decided_anew(remembered, results, plan)
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
    table = table.sort_by([("act", "ascending"), ("fen", "descending"), ("label", "ascending")])
    acts = table["act"].combine_chunks()
    first = np.ones(table.num_rows, bool)
    if table.num_rows > 1:
        first[1:] = ~bools(pc.equal(acts.slice(1), acts.slice(0, table.num_rows - 1)))
        fen = numbers(table["fen"].combine_chunks())
        seen["tied acts"] += int(np.count_nonzero(~first[1:] & (fen[1:] == fen[:-1]) & first[:-1]))
    heads = from_numbers(np.flatnonzero(first))
    return _Standing(act=acts.take(heads), label=table["label"].combine_chunks().take(heads),
                     fen=numbers(table["fen"].combine_chunks().take(heads)), fine=table["fine"].combine_chunks())


def _reference_decided_anew(remembered, results, plan):
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


def act_texts(cases, rows):
    if cases.act_code is None:
        return None
    code = cases.act_code[rows]
    return cases.acts.take(from_numbers(np.maximum(code, 0), mask=code < 0)) if len(cases.acts) else pa.nulls(
        rows.size, pa.string())


def _act_keys(uscc, acts, case_ids):
    own = pc.binary_join_element_wise(_OWN, case_ids, _NOTHING)
    if acts is None:
        return own
    return pc.coalesce(pc.binary_join_element_wise(uscc, acts, _UNIT), own)


def _reference_recorded(memory, policy_key, rule, kind, cases, rows, imposed, decided):
    """``Assessments.record``'s answer as the texts decided it: (assessed_in, supersedes,
    reason, the case_ids withdrawn)."""
    n = imposed.size
    policy = policy_key.rpartition("@")[0] if "@" in policy_key else policy_key
    assessed_in, supersedes, reason, back = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int8), []
    remembered = memory.remembered.get((policy, rule, kind))
    if remembered is None or not n:
        return assessed_in, supersedes, reason, back
    case_ids = cases.keys.take(from_numbers(cases.key_code[rows]))
    decided = pa.nulls(n, pa.string()) if decided is None else decided
    at = numbers(pc.index_in(case_ids, value_set=remembered.case_ids), fill=-1).astype(np.int64)
    hit = np.flatnonzero(at >= 0)
    before = remembered.decided.take(from_numbers(at[hit]))
    now = decided.take(from_numbers(hit))
    same = np.asarray(pc.or_(pc.and_(before.is_null(), now.is_null()), pc.fill_null(pc.equal(before, now), False)))
    if memory.reassess is True:
        again = np.ones(hit.size, bool)
    elif memory.reassess:
        again = np.asarray(pc.is_in(case_ids.take(from_numbers(hit)), value_set=pa.array(sorted(memory.reassess))))
    else:
        again = np.zeros(hit.size, bool)
    anew, runs, fired = again | ~same, remembered.runs[at[hit]], imposed[hit]
    assessed_in[hit[~anew & fired]] = runs[~anew & fired]
    supersedes[hit[anew & fired]] = runs[anew & fired]
    reason[hit[anew & fired]] = np.where(same[anew & fired], _assessed.REASSESSED, _assessed.NEW_DECISION)
    return assessed_in, supersedes, reason, case_ids.take(from_numbers(hit[anew & ~fired])).to_pylist()


def _nights(world, seed: int):
    """(as_of, case rows, options) of random nights over a pool of cases (see the module)."""
    rng = np.random.default_rng(seed)
    usccs = [world["uscc"], world["other"], world["third"]]
    pool = []
    for k in range(48):
        clause = ("a84_2", "a83_2")[rng.integers(2)]
        fine = int(rng.choice([20000, 30000] if clause == "a84_2" else [100000, 200000]))
        case = _case(usccs[rng.integers(3)], f"K{k:02d}", [None, "X", "Y", "Z"][rng.integers(4)], clause, fine)
        case["decided"] = [None, "2025-06-01"][rng.integers(2)]
        pool.append(case)
    for night in range(6):
        for case in pool:
            if night and rng.random() < 0.12:
                case["act_id"] = [None, "X", "Y", "Z"][rng.integers(4)]
            if night and rng.random() < 0.08:
                case["decided"] = [None, "2025-06-01", "2025-07-01"][rng.integers(3)]
        listed = [dict(c) for c in pool if rng.random() < 0.6]
        draw = rng.random()
        options = {}
        if night and draw < 0.1:
            options["reassess"] = True
        elif night and draw < 0.45:
            options["reassess"] = [c["case_id"] for c in pool if rng.random() < 0.3]
        yield dt.date(2026, 1, 1) + dt.timedelta(days=night), listed, options


@pytest.mark.parametrize("partition_rows", [1 << 30, 6])  # one partition; many (memory routed to buckets)
def test_codes_judge_as_the_texts_did_night_after_night(tmp_path, monkeypatch, partition_rows):
    world = make_world(tmp_path, enterprises=10, cases=2)
    registry = pa.csv.read_csv(world["registry"], convert_options=pa.csv.ConvertOptions(column_types={"uscc": pa.string()}))
    world["uscc"], world["other"], world["third"] = (registry["uscc"][k].as_py() for k in range(3))
    seen = dict.fromkeys(["earlier", "kept label", "remembered", "tied acts", "recorded", "already", "anew", "back"], 0)

    def both(memory, results, plan, units):
        got = against_earlier_fines(memory, results, plan, units)
        want = _reference(memory, results, plan, units, seen)
        assert got[1] == want[1]
        assert got[0].keys() == want[0].keys()
        for k in want[0]:
            assert got[0][k].to_pylist() == want[0][k].to_pylist()
        return got

    record = _assessed.Assessments.record

    def recorded(self, writer, run_id, policy_key, rule, kind, *, cases, rows, imposed, decided, unit="yuan"):
        want = _reference_recorded(self, policy_key, rule, kind, cases, rows, imposed, decided)
        withdrawn = self.withdrawn
        got = record(self, writer, run_id, policy_key, rule, kind, cases=cases, rows=rows, imposed=imposed,
                     decided=decided, unit=unit)
        assert got.assessed_in.tolist() == want[0].tolist()
        assert (np.zeros(imposed.size, np.int64) if got.supersedes is None else got.supersedes).tolist() == want[1].tolist()
        assert (np.zeros(imposed.size, np.int8) if got.reason is None else got.reason).tolist() == want[2].tolist()
        assert self.withdrawn - withdrawn == len(want[3])
        seen["recorded"] += imposed.size
        seen["already"] += int(np.count_nonzero(want[0]))
        seen["anew"] += int(np.count_nonzero(want[1]))
        seen["back"] += len(want[3])
        return got

    monkeypatch.setattr(_write, "against_earlier_fines", both)
    monkeypatch.setattr(_assessed.Assessments, "record", recorded)
    monkeypatch.setattr(_spill, "PARTITION_ROWS", partition_rows)
    for seed in range(3):
        db = tmp_path / f"results-{seed}.sqlite"
        for as_of, rows, options in _nights(world, seed):
            write_cases(pa.Table.from_pylist(rows, schema=world["table"].schema), world["cases"])
            summary = run_nightly(world["registry"], db, policies=world["policies"], as_of=as_of,
                                  cases=world["cases"], threads=1, **options)
            assert summary.status == "done" and summary.rows_rejected == 0
    # every branch was met: earlier fines labelling this run's, kept labels, ties among an
    # act's earlier fines, findings already assessed, assessed anew and taken back
    assert all(seen.values()), seen
