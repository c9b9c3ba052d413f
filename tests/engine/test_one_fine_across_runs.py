"""One act, one fine across runs (行政处罚法 art 29, engine/cases/_earlier_fines.py).

The test policies of tests/data/cases: art84 fines a84_2 cases (fine_yuan as decided), art83
a83_2 cases. A case of an act an earlier run fined, added to the table later, is superseded by
that earlier fine, lower or higher (higher: with a warning), whether the earlier case is still
listed or not; another act of the same enterprise is fined; --reassess of the earlier case
lets the act's fines compete afresh. The memory keeps each assessment's act.
"""

from __future__ import annotations

import sqlite3

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from ecorules.engine._nightly import run_nightly
from test_assessed_once import A, B, C, D, make_world, write_cases

LABEL_K1 = "test.fines@1 art84 (K1), run {run}"


def _case(uscc: str, case_id: str, act: str | None, clause: str, fine: int) -> dict:
    return {"case_id": case_id, "uscc": uscc, "act_id": act, "clause": clause, "act_date": "2025-03-01",
            "act_end": None, "discovered": "2025-04-01", "fine_yuan": str(fine), "into_eco_water": None,
            "decided": "2025-06-01"}


@pytest.fixture
def world(tmp_path):
    world = make_world(tmp_path, enterprises=10, cases=2)  # (its case table is replaced by each run)
    registry = pacsv.read_csv(world["registry"], convert_options=pacsv.ConvertOptions(column_types={"uscc": pa.string()}))
    world["uscc"], world["other"] = registry["uscc"][0].as_py(), registry["uscc"][1].as_py()
    return world


def _run(world, as_of, rows, **options):
    write_cases(pa.Table.from_pylist(rows, schema=world["table"].schema), world["cases"])
    summary = run_nightly(world["registry"], world["db"], policies=world["policies"], as_of=as_of, cases=world["cases"],
                          threads=1, **options)
    assert summary.status == "done" and summary.rows_rejected == 0
    connection = sqlite3.connect(world["db"])
    try:
        found = connection.execute(
            "SELECT case_id, rule, status, amount_yuan, superseded_by, assessed_in_run FROM findings "
            "WHERE run_id = ? AND case_id IS NOT NULL AND kind = 'fine'", (summary.run_id,)).fetchall()
    finally:
        connection.close()
    return summary, {(case_id, rule): (status, amount, by, run) for case_id, rule, status, amount, by, run in found}


def _memory(world) -> dict:
    connection = sqlite3.connect(world["db"])
    try:
        return {(run, case_id): (act, amount) for run, case_id, act, amount in connection.execute(
            "SELECT run_id, case_id, act_id, amount_yuan FROM assessed WHERE kind = 'fine'")}
    finally:
        connection.close()


def test_a_case_of_an_act_fined_by_an_earlier_run_is_superseded_by_that_fine(world):
    u, other = world["uscc"], world["other"]
    k1, k9 = _case(u, "K1", "X", "a84_2", 30000), _case(other, "K9", None, "a84_2", 20000)
    first, found = _run(world, A, [k1, k9])
    assert found == {("K1", "art84"): ("imposed", 30000, None, None), ("K9", "art84"): ("imposed", 20000, None, None)}
    assert _memory(world) == {(first.run_id, "K1"): ("X", 30000), (first.run_id, "K9"): (None, 20000)}
    # a lower fine of the same act, and a fine of another act of the same enterprise
    k2, k3 = _case(u, "K2", "X", "a84_2", 25000), _case(u, "K3", "Y", "a84_2", 40000)
    second, found = _run(world, B, [k1, k9, k2, k3])
    label = LABEL_K1.format(run=first.run_id)
    assert found == {
        ("K1", "art84"): ("already_assessed", 0, None, first.run_id),
        ("K9", "art84"): ("already_assessed", 0, None, first.run_id),
        # K1 listed too: this run's own competition names it, as the first run would have
        ("K2", "art84"): ("superseded", 25000, "test.fines@1 art84 (K1)", None),
        ("K3", "art84"): ("imposed", 40000, None, None),
    }
    assert second.total_yuan - first.total_yuan == 40000 - 30000 - 20000  # K3 alone is owed now
    assert {key for key in _memory(world) if key[0] == second.run_id} == {(second.run_id, "K3")}
    assert not [w for w in second.warnings if "art 29" in w]
    # the earlier case no longer listed, and a higher fine of the act under another clause:
    # still no second fine, and the run says why
    k4 = _case(u, "K4", "X", "a83_2", 200000)
    third, found = _run(world, C, [k2, k4])
    assert found == {("K2", "art84"): ("superseded", 25000, label, None),
                     ("K4", "art83"): ("superseded", 200000, label, None)}
    warned = [w for w in third.warnings if "art 29" in w]
    assert len(warned) == 1 and "1 fine(s)" in warned[0] and "K4: 200,000 > 30,000" in warned[0]
    assert "不得给予两次以上罚款的行政处罚" in warned[0]
    assert {key for key in _memory(world) if key[0] == third.run_id} == set()
    # a new decision of the earlier case: the act's fines compete afresh, the higher is imposed
    fourth, found = _run(world, D, [k1, k4], reassess=["K1"])
    assert found == {("K1", "art84"): ("superseded", 30000, "test.fines@1 art83 (K4)", None),
                     ("K4", "art83"): ("imposed", 200000, None, None)}
    assert _memory(world)[(fourth.run_id, "K4")] == ("X", 200000)


def test_the_earlier_fine_wins_even_where_this_runs_competition_would_pick_another(world):
    """Within one run the higher fine of an act wins; across runs the fine imposed first stands:
    the remembered case is already assessed and the new higher one superseded by it."""
    u = world["uscc"]
    k1 = _case(u, "K1", "X", "a84_2", 30000)
    first, _ = _run(world, A, [k1])
    k5 = _case(u, "K5", "X", "a84_2", 90000)
    second, found = _run(world, B, [k1, k5])
    assert found == {("K1", "art84"): ("already_assessed", 0, None, first.run_id),
                     ("K5", "art84"): ("superseded", 90000, LABEL_K1.format(run=first.run_id), None)}
    assert [w for w in second.warnings if "art 29" in w]
    # the same enterprise's act_id X and another enterprise's act_id X are different acts
    k6 = _case(world["other"], "K6", "X", "a84_2", 10000)
    _, found = _run(world, C, [k1, k5, k6])
    assert found[("K6", "art84")] == ("imposed", 10000, None, None)
