"""A partition's enterprise keys are checked as USCCs once (engine/cases/_table.py,
``linked_checked``): the spill finds which keys are valid as written while it puts them in
the ledger's form, and ``check_values`` checks only the others. The rejects, the keys' codes
and forms must be those of checking every row, for keys valid, invalid, full-width, empty,
null and needing a trim."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine._generate import generate_registry
from ecorules.engine.cases._generate import generate_cases
from ecorules.engine.cases._plan import make_plan
from ecorules.engine.cases._table import CaseTable, check_values, linked, linked_checked
from ecorules.rules import load_policies
from test_case_parts import AS_OF, DATA


def _plan():
    from ecorules.fastcalc import compile_program

    return make_plan(load_policies(DATA), "enterprise", AS_OF, compile_program)


def _full_width(code: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in code)


def _keys(rng, good: list[str], n: int, trims: bool) -> list[str | None]:
    odd = [good[0][:-1] + ("0" if good[0][-1] != "0" else "1"), _full_width(good[1]), "", None, good[2][:10],
           good[3].lower(), "郑东新区", good[4] + "X"]
    if trims:
        odd += [f" {good[5]} ", f"{good[6]}\u3000"]
    keys = [good[i] for i in rng.integers(0, len(good), n).tolist()]
    for at in rng.choice(n, size=min(n, 3 * len(odd)), replace=False).tolist():
        keys[at] = odd[at % len(odd)]
    return keys


def _case_table(table: pa.Table, link_valid) -> CaseTable:
    n = table.num_rows
    return CaseTable(table, ["cases.csv"], np.zeros(n, np.int32), np.arange(2, n + 2, dtype=np.int64),
                     {name: name for name in table.column_names}, n, link_valid=link_valid)


@pytest.mark.parametrize("seed", range(6))
def test_checking_only_the_keys_not_known_valid_rejects_what_checking_all_rejects(seed):
    plan = _plan()
    rng = np.random.default_rng(seed)
    usccs = generate_registry(30, seed)["uscc"].combine_chunks()
    table = generate_cases(usccs, 300, seed, ("a83_2", "a84_2"))
    keys = pa.array(_keys(rng, usccs.to_pylist(), table.num_rows, trims=bool(seed % 2)), pa.string())
    table = table.set_column(table.column_names.index("uscc"), "uscc", keys)

    formed, valid = linked_checked(plan.facts[plan.link], keys)
    assert formed.equals(linked(plan.facts[plan.link], keys))
    known = usccs.to_pylist()
    assert valid.tolist() == [k in known for k in keys.to_pylist()]

    every, once = _case_table(table, None), _case_table(table, valid)
    check_values(every, plan)
    check_values(once, plan)
    assert once.rejects == every.rejects and len(every.rejects) > 10
    assert np.array_equal(once.valid, every.valid)
    assert np.array_equal(once.uscc_code, every.uscc_code)
    assert once.uscc_distinct.equals(every.uscc_distinct) and once.uscc.equals(every.uscc)
    assert once.uscc.to_pylist().count(usccs[1].as_py()) >= keys.to_pylist().count(_full_width(usccs[1].as_py()))
