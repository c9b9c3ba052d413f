"""Text columns as a CSV batch with bad cells leaves them, and optional columns a registry
leaves out: decided as rules/_records.py decides each cell, by the faster paths too.

A count column with a bad cell or two stays text (Arrow's cast refuses the whole column):
its plain-digit cells are cast where they lie and the others go to _records. A column the
registry does not have (``may_be_absent``) arrives as nulls in every batch: all empty, with
the dtype and labels the general path gives.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from ecorules.fastcalc._validate import validate_column
from ecorules.fastcalc._validate_common import Rejects, check_value, value_text
from ecorules.rules import load_policies
from fastcalc_support import rule, write_policy

FACTS = (
    "  i:\n    type: integer\n    min: 0\n    max: 10000\n"
    "  b:\n    type: boolean\n"
    "  o_s:\n    type: string\n    optional: true\n"
    "  o_i:\n    type: integer\n    optional: true\n"
    "  o_e:\n    type: enum\n    values: [甲, 乙]\n    optional: true\n"
    "  o_b:\n    type: boolean\n    optional: true\n"
)
RULE = rule("r", "i > 0 or b or is_set(o_s) or is_set(o_i) or is_set(o_e) or is_set(o_b)", ["1"])
ODD = ["1.5", "三", "-1", " 7", "+7", "", "  ", "100000", "10001", "٣", "99999999999999999999", "1e3", "007", "0",
       "999999999999999999", "1234567890123456789", "1 2", "12a"]


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    return load_policies(write_policy(tmp_path_factory.mktemp("t"), FACTS, RULE)).facts


def _cells(seed: int, n: int) -> list:
    rng = np.random.default_rng(seed)
    return [None if rng.random() < 0.05 else ODD[rng.integers(len(ODD))] if rng.random() < 0.2
            else str(rng.integers(0, 10001)) for _ in range(n)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_an_integer_text_column_with_bad_cells_is_decided_cell_by_cell_as_records(facts, seed, kind):
    cells = _cells(seed, 3_000)
    before = seed % 3  # a slice of a larger array (an offset into its buffers), as a batch's column may be
    column = pa.array([None] * before + cells, kind).slice(before)
    rejects = Rejects()
    values = validate_column(facts["i"], column, len(cells), True, rejects).values
    got = {int(row): (value, reason) for rows, shown, reasons in zip(rejects.rows, rejects.values, rejects.reasons,
                                                                     strict=True)
           for row, value, reason in zip(rows.tolist(), shown.tolist(), reasons.tolist(), strict=True)}
    expected = {}
    for row, raw in enumerate(cells):
        value, problem = check_value(facts["i"], raw)
        if problem is None:
            assert values[row] == value, (row, raw)
        else:
            expected[row] = (value_text(raw), problem)
    assert got == expected
    assert any("whole number" in reason for _, reason in got.values())  # the bad cells were met
    assert any("above the maximum" in reason for _, reason in got.values())


BOOLEANS = ["true", "false", "1", "0"]  # what an export writes; the rest of ODD_BOOLEANS is rare
ODD_BOOLEANS = ["也许", "TRUE", "False", " true", "true ", "", "是", "yes", "2", "tRuE", "１", "truE", "fals", "falsE",
                "01", "t", "f", "10", "0 ", "falsee"]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
@pytest.mark.parametrize("name", ["b", "o_b"])
def test_a_boolean_text_column_with_bad_cells_is_decided_cell_by_cell_as_records(facts, seed, kind, name):
    """A boolean column Arrow's cast refused (a '也许' in it): the usual spellings found by a
    lookup, the others decided per distinct value; each cell as _records decides it."""
    rng = np.random.default_rng(seed)
    cells = [None if rng.random() < 0.05 else ODD_BOOLEANS[rng.integers(len(ODD_BOOLEANS))] if rng.random() < 0.1
             else BOOLEANS[rng.integers(len(BOOLEANS))] for _ in range(3_000)]
    before = seed % 3
    column = pa.array([None] * before + cells, kind).slice(before)
    rejects = Rejects()
    valid = validate_column(facts[name], column, len(cells), True, rejects)
    got = {int(row): (value, reason) for rows, shown, reasons in zip(rejects.rows, rejects.values, rejects.reasons,
                                                                     strict=True)
           for row, value, reason in zip(rows.tolist(), shown.tolist(), reasons.tolist(), strict=True)}
    absent = set(np.flatnonzero(valid.present == 0).tolist()) if facts[name].optional else set()
    expected, empty = {}, set()
    for row, raw in enumerate(cells):
        value, problem = check_value(facts[name], raw)
        if problem is None:
            assert valid.values[row] == int(value), (row, raw)
        elif facts[name].optional and value_text(raw).strip() == "":
            empty.add(row)
        else:
            expected[row] = (value_text(raw), problem)
    assert got == expected
    assert absent == empty
    assert any(raw == "也许" for raw, _ in got.values())  # the bad cells were met
    assert not valid.values[sorted(expected)].any()  # a rejected row reads 0, as the general path leaves it


@pytest.mark.parametrize("name", ["o_s", "o_i", "o_e", "o_b"])
@pytest.mark.parametrize("read", [True, False])
def test_an_absent_optional_column_is_all_empty_as_the_general_path_gives_it(facts, name, read):
    n = 5_000
    absent = Rejects()
    fast = validate_column(facts[name], pa.nulls(n, pa.string()), n, read, absent)
    assert not absent.rows
    # one value in the column: the general path, whose empty rows must read alike
    one = {"o_s": "x", "o_i": "3", "o_e": "乙", "o_b": "true"}[name]
    general = validate_column(facts[name], pa.array([None] * (n - 1) + [one], pa.string()), n, read, Rejects())
    if not read:
        assert fast.values is None and general.values is None
        return
    assert fast.values.dtype == general.values.dtype and fast.values.shape == (n,)
    assert not fast.values.any() and not general.values[:-1].any()
    assert fast.present.dtype == general.present.dtype and not fast.present.any()
    assert general.present[-1] == 1 and not general.present[:-1].any()
    assert (fast.labels, general.labels) == (((), ("x",)) if name == "o_s" else (None, None))
