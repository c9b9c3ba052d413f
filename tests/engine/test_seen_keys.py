"""The USCCs met so far (engine/_seen_keys.py): exact, in order, in the kernel as in numpy."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine._duplicates import canonical_keys
from ecorules.engine._nightly import run_nightly
from ecorules.engine._seen_keys import CodeSet, SeenUsccs, uscc_codes
from ecorules.rules import load_policies
from ecorules.rules._uscc import check_character, org_check_character
from nightly_data import usccs

FACT = load_policies().facts["uscc"]
HEADER = "uscc,name,district,industrial,untreated_outfalls,direct_discharge_cases,illegal_discharge_cases,high_pollution,high_energy"


def code(first16: str) -> str:
    first17 = first16 + org_check_character(first16[8:16])
    return first17 + check_character(first17)


def in_python(batches: list[list[int]]) -> list[list[bool]]:
    met, out = set(), []
    for values in batches:
        flags = []
        for value in values:
            flags.append(value in met)
            met.add(value)
        out.append(flags)
    return out


@pytest.mark.parametrize("kernel", [True, False])
def test_a_code_set_answers_as_a_python_set_through_collisions_and_growth(kernel):
    rng = np.random.default_rng(3)
    batches = [rng.integers(0, 5000, 900).tolist() for _ in range(40)]  # many repeats, far beyond 1024 slots
    batches[3][:2] = [0, 0]  # 0 mixes to the free-slot marker: kept aside, still exact
    codes = CodeSet(0, kernel=kernel)
    got = [codes.add(np.array(values, np.uint64)).tolist() for values in batches]
    assert got == in_python(batches)
    assert codes.count + codes.has_zero == len({v for values in batches for v in values})


@pytest.mark.parametrize("kernel", [True, False])
def test_codes_of_valid_usccs_are_exact_where_a_digest_would_not_be(kernel):
    # codes that differ only in positions 1-2 (the set number) or in one body character
    keys = [code("9141010012345678"), code("9241010012345678"), code("5141010012345678"),
            code("9141010012345679"), code("0000000000000000"), code("9141010012345678")]
    column, valid = canonical_keys(FACT, pa.array([*keys, "not a code", None]))
    seen = SeenUsccs(4, kernel=kernel)
    assert seen.add(column, valid).tolist() == [5]
    assert seen.add(column, valid).tolist() == [0, 1, 2, 3, 4, 5]
    rows, heads, values = uscc_codes(column, valid, kernel)
    assert rows.tolist() == [0, 1, 2, 3, 4, 5]
    assert len(set(zip(heads.tolist(), values.tolist(), strict=True))) == 5
    assert uscc_codes(column, valid, not kernel)[2].tolist() == values.tolist()


def test_later_rows_in_other_files_of_a_folder_name_their_first_row(tmp_path):
    first, second, other = usccs(np.random.default_rng(8), 3).tolist()
    folder = tmp_path / "registry"
    folder.mkdir()

    def line(uscc: str) -> str:
        return f"{uscc},郑州示例有限公司,金水区,true,1,0,0,false,false"

    (folder / "a.csv").write_text("\n".join([HEADER, line(first), line(other), line(second)]) + "\n", encoding="utf-8")
    (folder / "b.csv").write_text("\n".join([HEADER, line(second), line(first), line(first)]) + "\n", encoding="utf-8")
    summary = run_nightly(folder, tmp_path / "out.sqlite", as_of=dt.date(2012, 4, 14), progress=False, batch_rows=2)
    connection = sqlite3.connect(tmp_path / "out.sqlite")
    rejects = connection.execute('SELECT source, row, reason FROM rejects ORDER BY source, row').fetchall()
    connection.close()
    a, b = str(folder / "a.csv"), str(folder / "b.csv")
    assert rejects == [
        (b, 2, f"duplicate uscc '{second}': first at row 4 of {a} (one enterprise, one row)"),
        (b, 3, f"duplicate uscc '{first}': first at row 2 of {a} (one enterprise, one row)"),
        (b, 4, f"duplicate uscc '{first}': first at row 2 of {a} (one enterprise, one row)"),
    ]
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (6, 3, 3)
    assert {s["source"]: (s["rows_in"], s["rows_rejected"]) for s in summary.sources} == {a: (3, 0), b: (3, 3)}
