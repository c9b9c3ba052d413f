"""The case stage's loops in fastcalc/_cases.pyx against plain Python doing the same work:
text codes, one act one fine (行政处罚法 art 29) and the bounds of the roll-ups' windows."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine.cases._parts import by_enterprise
from ecorules.fastcalc._cases import encode_texts, supersede_part, superseded_texts, window_bounds
from ecorules.rules._arrow import string_buffers


def _encode(texts: list[str | None], large: bool = False):
    column = pa.array(texts, pa.large_string() if large else pa.string())
    offsets, data = string_buffers(column)
    null = np.array([t is None for t in texts], np.uint8) if None in texts else np.zeros(0, np.uint8)
    return encode_texts(offsets, data, null)


@pytest.mark.parametrize("large", [False, True])
def test_equal_texts_share_a_code_numbered_by_first_row(large):
    texts = ["91410100123456788Y", "９１４１０１００１２３４５６７８８Ｙ", "91410100123456788y", None, "", "A1",
             "91410100123456788Y", "a1", "A1", "", "x" * 20, "x" * 21, "x" * 20, "案件-1", "案件-1", None, "A_1",
             "A-1", "A-1"]
    codes, first = _encode(texts, large)
    seen: dict[str, int] = {}
    want = [-1 if t is None else seen.setdefault(t, len(seen)) for t in texts]
    assert codes.tolist() == want
    assert first.tolist() == [texts.index(t) for t in seen]


def test_no_rows_and_only_nulls():
    codes, first = _encode([])
    assert codes.size == 0 and first.size == 0
    codes, first = _encode([None, None])
    assert codes.tolist() == [-1, -1] and first.size == 0


def test_many_distinct_texts_of_both_kinds_grow_the_tables():
    rng = np.random.default_rng(3)
    pool = [f"9141{i:014d}" for i in range(5000)] + [f"案{i}" for i in range(3000)]
    texts = [pool[i] for i in rng.integers(0, len(pool), 40000)]
    codes, first = _encode(texts)
    assert [texts[f] for f in first[codes]] == texts
    assert len({texts[f] for f in first}) == first.size  # each text once


# --- one act one fine -------------------------------------------------------------------


def _reference(positions, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, act_code, keys,
               key_code):
    """art 29 as engine/_group.one_act_one_fine orders an act's fines: the highest amount,
    then the smallest (policy, rule), then the smallest case_id."""
    acts = defaultdict(list)
    for p in positions.tolist():
        row = int(scored[p])
        for j, k in enumerate(slots.tolist()):
            if fired[rule_of[j], p]:
                act = ("own", row) if act_code.size == 0 or act_code[row] < 0 else (int(enterprise[row]), int(act_code[row]))
                acts[act].append((k, p, int(amounts[k, p] * fen_per[k])))
    beaten = set()
    for fines in acts.values():
        lead = min(fines, key=lambda f: (-f[2], slot_rank[f[0]], keys[key_code[scored[f[1]]]]))
        beaten |= {(k, p, lead[0], lead[1]) for k, p, _ in fines if (k, p) != lead[:2]}
    return beaten


def _case_table(seed: int, rows: int, enterprises: int, acts: int, ascending: bool):
    rng = np.random.default_rng(seed)
    n_findings = 5
    slots = np.array([0, 2, 3], np.int64)  # the FINE slots; 1 and 4 are other kinds
    rule_of = np.array([0, 1, 1], np.int64)  # two fines of one rule (slots 2 and 3)
    fired = (rng.random((2, rows)) < 0.7).astype(np.uint8)
    amounts = rng.choice(np.array([0, 100, 200, 20000]), (n_findings, rows)).astype(np.int64)  # ties aplenty
    fen_per = np.array([100, 100, 1, 100, 100], np.int64)  # slot 2 rounds to the fen: 20000 fen = 200 yuan
    slot_rank = rng.permutation(n_findings).astype(np.int64)
    scored = np.sort(rng.choice(rows + 50, rows, replace=False)).astype(np.int64)  # case rows of the scored
    enterprise = rng.integers(0, enterprises, rows + 50).astype(np.int64)
    # four act_ids, numbered apart when the codes are many
    act_code = np.where(rng.random(rows + 50) < 0.3, -1, rng.integers(0, 4, rows + 50) * (acts // 4)).astype(np.int64)
    texts = [f"C{i:05d}" for i in range(rows + 50)] if ascending else [
        rng.choice(["案", "C", "c", "Ｃ", ""]) + str(i) for i in rng.permutation(rows + 50)]
    key_code = np.arange(rows + 50, dtype=np.int64) if ascending else rng.permutation(rows + 50).astype(np.int64)
    keys = [None] * (rows + 50)
    for row, code in enumerate(key_code.tolist()):
        keys[code] = texts[row]
    return fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, act_code, keys, key_code


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("acts", [4, 10**6])  # few act codes: an array of acts; many: a hash table
def test_art29_kernel_leads_every_act_as_the_reference(seed, ascending, acts):
    rows = 600
    fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, act_code, keys, key_code = _case_table(
        seed, rows, 40, acts, ascending)
    parts, count = by_enterprise(enterprise[scored], part_rows=150)
    assert count > 1
    key_offsets, key_data = string_buffers(pa.array(keys, pa.string()))
    owners = int(enterprise.max()) // count + 1
    got = set()
    for positions in parts:
        beaten = supersede_part(positions, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise,
                                act_code, acts, owners, count, key_code, ascending, key_offsets, key_data)
        got |= set(zip(*(b.tolist() for b in beaten), strict=True))
        assert got >= _reference(positions, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise,
                                 act_code, keys, key_code)
    want = set().union(*(_reference(p, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, act_code,
                                    keys, key_code) for p in parts))
    assert got == want and len(want) > 50


def test_art29_kernel_sorts_acts_too_wide_to_pack_with_their_index_in_pairs_as_the_reference():
    # act codes and enterprises of 31 bits each: a key and its note's index do not fit one word
    widest = (1 << 31) - 1
    fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, act_code, keys, key_code = _case_table(
        5, 400, 30, widest, False)
    key_offsets, key_data = string_buffers(pa.array(keys, pa.string()))
    positions = np.arange(400, dtype=np.int64)
    beaten = supersede_part(positions, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, act_code,
                            widest, widest, 1, key_code, False, key_offsets, key_data)
    got = set(zip(*(b.tolist() for b in beaten), strict=True))
    assert got == _reference(positions, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise,
                             act_code, keys, key_code) and len(got) > 50


def test_art29_kernel_without_acts_and_without_fines():
    fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, act_code, keys, key_code = _case_table(
        4, 200, 10, 3, True)
    none = np.zeros(0, np.int64)
    offsets, data = np.zeros(1, np.int32), np.zeros(1, np.uint8)
    positions = np.arange(200, dtype=np.int64)
    # no act column: every case its own act, its fines still compete (two fines of one rule)
    beaten = supersede_part(positions, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, none, 0,
                            1, 1, key_code, True, offsets, data)
    got = set(zip(*(b.tolist() for b in beaten), strict=True))
    assert got == _reference(positions, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, enterprise, none,
                             keys, key_code)
    assert got and all(p == winner for _, p, _, winner in got)
    for empty_positions, empty_fired in ((none, fired), (positions, np.zeros_like(fired))):
        beaten = supersede_part(empty_positions, empty_fired, amounts, slots, rule_of, fen_per, slot_rank, scored,
                                enterprise, act_code, 3, 10, 1, key_code, True, offsets, data)
        assert all(b.size == 0 for b in beaten)


def test_one_act_across_clauses_with_equal_amounts_goes_to_the_first_clause_then_case():
    # one enterprise, one act A (code 0): art83 and art84 fine 100 each (slots 0 and 1; rank: 83 < 84)
    fired = np.array([[1, 0, 1], [0, 1, 1]], np.uint8)  # rule 0 fires on cases 0 and 2, rule 1 on 1 and 2
    amounts = np.full((2, 3), 100, np.int64)
    slots, rule_of, fen_per, slot_rank = (np.array(v, np.int64) for v in ([0, 1], [0, 1], [1, 1], [0, 1]))
    scored = np.arange(3, dtype=np.int64)
    keys = ["c2", "c10", "c1"]  # case 2 has the smallest case_id, though not the smallest code
    key_offsets, key_data = string_buffers(pa.array(keys))
    beaten = supersede_part(scored, fired, amounts, slots, rule_of, fen_per, slot_rank, scored, np.zeros(3, np.int64),
                            np.zeros(3, np.int64), 1, 1, 1, np.arange(3, dtype=np.int64), False, key_offsets, key_data)
    assert set(zip(*(b.tolist() for b in beaten), strict=True)) == {(0, 0, 0, 2), (1, 1, 0, 2), (1, 2, 0, 2)}


# --- roll-up windows ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_window_bounds_are_those_of_a_stable_sort_and_a_search(seed):
    rng = np.random.default_rng(seed)
    n, owners, span = 3000, 70, 40
    owner = rng.integers(0, owners, n).astype(np.int64)
    offset = rng.integers(0, span - 1, n).astype(np.int64)
    # windows looking back, and (to test the other branch) a few starting after their day, or before day 0
    start_of = np.arange(span - 1, dtype=np.int64) - rng.integers(-3, 9, span - 1)
    sort, hi, lo = window_bounds(owner, offset, start_of, owners, span)
    key = owner * span + offset
    want = np.argsort(key, kind="stable")
    assert sort.tolist() == want.tolist()
    ordered = key[want]
    first = np.ones(n, bool)
    first[1:] = ordered[1:] != ordered[:-1]
    assert hi.tolist() == np.maximum.accumulate(np.where(first, np.arange(n), 0)).tolist()
    start = owner[want] * span + np.clip(start_of, 0, span - 1)[offset[want]]
    assert lo.tolist() == np.searchsorted(ordered, start, "left").tolist()


@pytest.mark.parametrize("owners, span", [(5000, 3000), (1 << 24, 2), (3, 1 << 20), (1 << 30, 1 << 12)])
def test_window_bounds_sort_as_a_stable_argsort_across_several_radix_passes(owners, span):
    """Keys of 11 to 42 bits (two or three packed passes, the case's index in the word's low
    bits): the radix sort's passes, and those it skips (every key with one digit: a single
    owner's bits, or the high bits of few days), sort as numpy's stable sort."""
    rng = np.random.default_rng(owners + span)
    n = 20000
    owner = rng.integers(0, owners, n).astype(np.int64)
    offset = rng.integers(0, span - 1, n).astype(np.int64)
    sort, hi, lo = window_bounds(owner, offset, np.arange(span - 1, dtype=np.int64) - 400, owners, span)
    key = owner * span + offset
    want = np.argsort(key, kind="stable")
    assert sort.tolist() == want.tolist()
    ordered = key[want]
    assert lo.tolist() == np.searchsorted(ordered, owner[want] * span + np.clip(offset[want] - 400, 0, span - 1)).tolist()
    assert hi.tolist() == np.searchsorted(ordered, ordered).tolist()


def test_window_bounds_of_no_case_and_bad_input():
    none = np.zeros(0, np.int64)
    assert all(a.size == 0 for a in window_bounds(none, none, np.zeros(1, np.int64), 1, 2))
    with pytest.raises(ValueError, match="out of range"):
        window_bounds(np.array([3], np.int64), np.array([0], np.int64), np.zeros(1, np.int64), 2, 2)


def _superseded_by_arrow(fired, rows, winner_label, winner_key, labels, keys):
    """The superseded_by of a slot as the stage built it with Arrow: the winners' texts joined,
    then taken into the fired rows (null where no fine supersedes)."""
    picked = np.flatnonzero(fired)
    texts = [f"{labels[lab]} ({keys[key]})" for lab, key in zip(winner_label.tolist(), winner_key.tolist(), strict=True)]
    where = np.full(picked.size, -1, np.int64)
    where[np.searchsorted(picked, rows)] = np.arange(rows.size)
    return pa.array(texts, pa.string()).take(pa.array(where, mask=where < 0))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("large", [False, True])
def test_superseded_texts_as_arrow_builds_them(seed, large):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    fired = (rng.random(n) < rng.random()).astype(np.uint8)
    candidates = np.flatnonzero(fired)
    rows = rng.permutation(candidates)[: int(rng.integers(0, candidates.size + 1))]  # any order, each once
    labels = ["test.fines@1 art83", "本地@2 local", "x"]
    keys = ["C1", "", "案件-0002", "C000000004" * 3, "k"]
    winner_label = rng.integers(0, len(labels), rows.size).astype(np.int64)
    winner_key = rng.integers(0, len(keys), rows.size).astype(np.int64)
    key_column = pa.array(keys, pa.large_string() if large else pa.string())
    count, offsets, valid, data = superseded_texts(fired, rows.astype(np.int64), winner_label, winner_key,
                                                   *string_buffers(pa.array(labels)), *string_buffers(key_column))
    got = pa.Array.from_buffers(pa.string(), count, [None if valid is None else pa.py_buffer(valid),
                                                     pa.py_buffer(offsets), pa.py_buffer(data)],
                                null_count=count - rows.size)
    got.validate(full=True)
    assert got.equals(_superseded_by_arrow(fired, rows, winner_label, winner_key, labels, keys))


def test_superseded_texts_refuses_a_row_not_fired_or_given_twice():
    fired = np.array([1, 0, 1], np.uint8)
    buffers = (*string_buffers(pa.array(["a"])), *string_buffers(pa.array(["C1"])))
    one = np.zeros(1, np.int64)
    with pytest.raises(ValueError, match="not a fired row"):
        superseded_texts(fired, np.array([1], np.int64), one, one, *buffers)
    with pytest.raises(ValueError, match="given twice"):
        superseded_texts(fired, np.array([2, 2], np.int64), np.zeros(2, np.int64), np.zeros(2, np.int64), *buffers)
    with pytest.raises(ValueError, match="out of range"):
        superseded_texts(fired, np.array([0], np.int64), one, np.array([3], np.int64), *buffers)


def _rollup_by_numpy(function: str, enterprise, counted, values, empty, n):
    """onto_enterprises as it was: bincount, ufunc.at, the empty value where none counted."""
    if function == "count":
        return np.bincount(enterprise[counted], minlength=n).astype(np.int64)
    rows = np.flatnonzero(counted)
    owners = enterprise[rows]
    out = np.zeros(n, np.int64) if function == "sum" else np.full(n, np.iinfo(np.int64).min, np.int64)
    (np.add if function == "sum" else np.maximum).at(out, owners, values[rows])
    out[np.bincount(owners, minlength=n) == 0] = empty
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("function", ["count", "sum", "max"])
def test_enterprise_rollup_writes_a_partition_s_enterprises_as_numpy_computes_them(seed, function):
    """Each partition's roll-up written into the run's array leaves the whole array as the
    numpy reduction over each partition apart, put together: the enterprises of a partition
    (any case row of theirs, counted or not) take that partition's values, the others keep
    theirs. Values near the int64 limits: the sums wrap as numpy's do, the maxima are exact."""
    from ecorules.fastcalc._cases import enterprise_rollup

    rng = np.random.default_rng(seed)
    n, empty = 300, -7
    partition_of = rng.integers(0, 3, n)  # each enterprise's cases in one partition
    out = np.full(n, 0 if function == "count" else empty, np.int64)
    want = out.copy()
    seen = np.full(n, 0xAB, np.uint8)  # scratch of any content
    for p in range(3):
        mine = np.flatnonzero(partition_of == p)
        rows = 2000
        enterprise = rng.choice(mine, rows).astype(np.int64)
        enterprise[rng.random(rows) < 0.05] = -1  # not linked: never counted
        counted = (rng.random(rows) < 0.6) & (enterprise >= 0)
        values = rng.integers(-(1 << 62), 1 << 62, rows, dtype=np.int64) * rng.integers(1, 4, rows)
        if seed == 3:
            values = rng.integers(-50, 50, rows, dtype=np.int64)
        enterprise_rollup(enterprise, counted.view(np.uint8), values if function != "count" else np.zeros(0, np.int64),
                          {"count": 0, "sum": 1, "max": 2}[function], empty, out, seen)
        with np.errstate(over="ignore"):
            part = _rollup_by_numpy(function, np.where(enterprise >= 0, enterprise, 0), counted, values, empty, n)
        touched = np.zeros(n, bool)
        touched[enterprise[enterprise >= 0]] = True
        want[touched] = part[touched]
        assert out.tolist() == want.tolist()
    assert (want != (0 if function == "count" else empty)).any()


def test_enterprise_rollup_refuses_an_enterprise_out_of_range():
    from ecorules.fastcalc._cases import enterprise_rollup

    out, seen = np.zeros(4, np.int64), np.zeros(4, np.uint8)
    with pytest.raises(ValueError, match="out of range"):
        enterprise_rollup(np.array([0, 4], np.int64), np.ones(2, np.uint8), np.zeros(0, np.int64), 0, 0, out, seen)
    with pytest.raises(ValueError, match="out of range"):  # a counted case of no enterprise
        enterprise_rollup(np.array([0, -1], np.int64), np.ones(2, np.uint8), np.zeros(0, np.int64), 0, 0, out, seen)
