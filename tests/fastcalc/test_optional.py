"""Optional facts and calendar functions in the batch path, against the Python reference.

One policy reads optional facts of every kind through is_set()/value_or() and moves dates
with add_months/add_years (both modes, constant, parameter and per-row counts), add_days and
days_between. The same rows, with empty cells, are scored from every container score()
takes; each result must equal the plain-Python reference row by row (fastcalc_support), and
a required fact's empty cell must still reject its row.
"""

from __future__ import annotations

import datetime as dt

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from ecorules.fastcalc import compile_program
from ecorules.rules import KernelError, PolicyError, load_policies
from fastcalc_support import USCC, probe, read_probe, rule, score_both, write_policy

FACTS = (
    "  halted:\n    type: date\n    optional: true\n"
    "  resumed:\n    type: date\n    optional: true\n    min: 2000-01-01\n    max: 2030-12-31\n"
    "  months:\n    type: integer\n    min: -40\n    max: 40\n"
    "  paid:\n    type: decimal\n    min: 0\n    max: 100000\n    optional: true\n"
    "  repeat:\n    type: boolean\n    optional: true\n"
    "  grade:\n    type: enum\n    values: [轻微, 一般, 严重]\n    optional: true\n"
    "  note:\n    type: string\n    optional: true\n"
    "  count:\n    type: integer\n    min: 0\n    max: 50\n    optional: true\n"
)
PARAMETERS = "  grace:\n    type: integer\n    values:\n      - {from: 2000-01-01, value: 2, reference: t}\n"
RULES = [
    # guards: 'and' chains, 'not is_set() or', if() branches; amounts guarded by the condition
    ("is_set(halted) and add_months(halted, months, 'month_end') < as_of", ["value_or(count, 3) * 100"]),
    ("not is_set(halted) or add_years(halted, grace, 'next_day') >= as_of", ["max(0, round(value_or(paid, 1.5)))"]),
    ("is_set(resumed) and is_set(halted) and days_between(halted, resumed, 'inclusive') > 30",
     ["max(0, days_between(halted, resumed, 'exclusive'))"]),
    ("value_or(repeat, false) or value_or(grade, '一般') == '严重'", []),
    ("value_or(note, 'none') == 'alpha' or (is_set(note) and note != 'beta')", []),
    ("if(is_set(count), count > 10, months > 10)", ["max(0, if(is_set(count), count, 1) * 7)"]),
]
PROBES = [
    ("add_months(value_or(halted, date('2012-01-31')), months, 'next_day')", "date"),
    ("add_months(value_or(halted, date('2012-01-31')), months, 'month_end')", "date"),
    ("add_years(value_or(halted, as_of), 1, 'month_end')", "date"),
    ("add_years(value_or(halted, as_of), months, 'next_day')", "date"),
    ("add_months(date('2024-01-31'), months)", "date"),
    ("add_days(value_or(resumed, as_of), -months)", "date"),
    ("value_or(paid, 2) + value_or(count, 1)", "decimal"),
]

ROWS = {
    "uscc": [USCC] * 10,
    "halted": ["2011-01-31", None, "2012年2月29日", "", "2010-01-31", "2000年1月31日", None, "2012-04-14",
               "2012年03月31日", "   "],
    "resumed": [None, "2012-01-01", "2012-06-30", None, "2011-02-01", "2000-02-01", None, "", "2012-05-01", None],
    "months": [1, 2, -30, 5, 24, 1, 0, -1, 11, 40],
    "paid": [None, "5", "10.5", "", "3.25", None, "0", "99999", "", "12"],
    "repeat": [None, "是", "否", None, "true", "", "f", None, "1", None],
    "grade": [None, "严重", "轻微", "", "一般", None, "严重", None, "一般", None],
    "note": [None, "alpha", "beta", "", "gamma", "  ", "alpha", None, "beta", "黄河"],
    "count": [None, 5, 11, 0, None, 50, None, 20, 1, None],
}
N = len(ROWS["uscc"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    rules = "".join(rule(f"r{k}", when, amounts) for k, (when, amounts) in enumerate(RULES))
    rules += "".join(rule(f"p{k}", "true", probe(text, kind), sanction=False) for k, (text, kind) in enumerate(PROBES))
    return write_policy(tmp_path_factory.mktemp("optional"), FACTS, rules, PARAMETERS)


@pytest.fixture(scope="module")
def scored(folder):
    program, result = score_both(folder, ROWS)
    return program, result


def test_lists_with_empty_cells_equal_the_reference(scored):
    program, result = scored
    assert result.valid.all(), list(zip(result.reject_rows, result.reject_reasons, strict=True))
    # worked out by hand: 2011-01-31 + 1 month = 2011-02-28 (month_end) < 2012-04-14, but
    # 2012-03-31 + 11 months = 2013-02-28 is not; the amount reads count, or 3 when empty
    assert result.fired[0].tolist() == [1, 0, 1, 0, 1, 1, 0, 1, 0, 0]
    assert result.amounts[0].tolist() == [300, 0, 1100, 0, 300, 5000, 0, 2000, 0, 0]
    # 2012-01-31 + 1 month: next_day -> 2012-03-01, month_end -> 2012-02-29 (row 1 has no date)
    first = program.findings.index(next(f for f in program.findings if f.rule_id == "p0"))
    as_date = [dt.date(1970, 1, 1) + dt.timedelta(days=int(v)) for v in read_probe(result, first)]
    assert as_date[1] == dt.date(2012, 3, 31)  # empty: 2012-01-31 + 2 months
    assert as_date[0] == dt.date(2011, 3, 1)  # 2011-01-31 + 1 month, no Feb 31: March 1
    second = [dt.date(1970, 1, 1) + dt.timedelta(days=int(v)) for v in read_probe(result, first + 2)]
    assert second[0] == dt.date(2011, 2, 28)


def _same(result, reference) -> None:
    for name in ("valid", "reject_rows", "reject_columns", "reject_values", "reject_reasons", "fired", "amounts",
                 "sanctions", "total_yuan", "rewards_yuan"):
        assert np.array_equal(getattr(result, name), getattr(reference, name)), name
    assert result.totals_by_payer() == reference.totals_by_payer()


def _object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _masked(values, dtype=None):
    """A masked array hiding harmless-looking data under the empty cells."""
    mask = np.array([v is None for v in values])
    filler = {"U": "2012-04-14", "i": 42, "O": "x"}
    data = [filler.get(np.dtype(dtype).kind if dtype else "O") if v is None else v for v in values]
    return np.ma.MaskedArray(np.array(data, dtype=dtype) if dtype else _object_array(data), mask=mask)


CONTAINERS = {
    "numpy object arrays with None": lambda: {k: _object_array(v) for k, v in ROWS.items()},
    "pyarrow arrays with nulls": lambda: {k: pa.array(v) for k, v in ROWS.items()},
    "pyarrow table, chunked": lambda: pa.table({k: pa.chunked_array([pa.array(v[:4]), pa.array(v[4:])])
                                               for k, v in ROWS.items()}),
    "pandas with NaN and None": lambda: pd.DataFrame({k: pd.Series(v, dtype="float64" if k == "count" else object)
                                                      for k, v in ROWS.items()}),
    "pandas extension dtypes": lambda: pd.DataFrame({**{k: pd.array(v, dtype="string") for k, v in ROWS.items()
                                                        if k not in ("count", "months")},
                                                     "count": pd.array(ROWS["count"], dtype="Int64"),
                                                     "months": pd.array(ROWS["months"], dtype="Int8")}),
    "numpy masked arrays": lambda: {**{k: _masked(v, "U" if k in ("halted", "resumed") else None)
                                       for k, v in ROWS.items()},
                                    "count": _masked(ROWS["count"], np.int64)},
}


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_every_container_gives_the_same_rows(scored, container):
    program, reference = scored
    result = program.score(CONTAINERS[container](), as_of=reference.as_of)
    _same(result, reference)
    again = program.score(CONTAINERS[container](), as_of=reference.as_of, threads=2, block_rows=64)
    _same(again, reference)


def test_masked_cells_are_empty_even_for_a_required_fact(tmp_path):
    folder = write_policy(tmp_path, "  n:\n    type: integer\n    min: 0\n    max: 100\n", rule("r", "n > 1"))
    program = compile_program(load_policies(folder))
    masked = np.ma.MaskedArray(np.array([5, 500, 7]), mask=[False, True, False])
    result = program.score({"uscc": [USCC] * 3, "n": masked}, as_of=dt.date(2012, 4, 14))
    assert result.valid.tolist() == [True, False, True]
    assert result.reject_reasons.tolist() == ["is missing"]  # not '500 is above the maximum'


def test_required_facts_still_reject_empty_cells_and_optional_ones_bad_values(tmp_path):
    facts = ("  d:\n    type: date\n  o:\n    type: date\n    optional: true\n"
             "  k:\n    type: integer\n    min: 0\n    max: 9\n    optional: true\n")
    folder = write_policy(tmp_path, facts, rule("r", "is_set(o) and o > d and value_or(k, 0) > 1"))
    columns = {"uscc": [USCC] * 6, "d": ["2012-01-01", None, "", "2012-01-01", "2012-01-01", "2012-01-01"],
               "o": ["2012-02-01", None, None, "2012-02-30", "", "2016年3月1日"],
               "k": [5, None, 1, 2, 10, "x"]}
    _, result = score_both(folder, columns)
    assert result.valid.tolist() == [True, False, False, False, False, False]
    reasons = dict(zip(zip(result.reject_rows.tolist(), result.reject_columns.tolist(), strict=True),
                       result.reject_reasons.tolist(), strict=True))
    assert reasons[(1, "d")] == reasons[(2, "d")] == "is missing"
    assert (1, "o") not in reasons and (2, "o") not in reasons and (1, "k") not in reasons
    assert reasons[(3, "o")].startswith("must be a date")
    assert reasons[(4, "k")] == "10 is above the maximum 9"
    assert reasons[(5, "k")] == "must be a whole number, got 'x'"


def test_chinese_dates_in_text_columns(tmp_path):
    folder = write_policy(tmp_path, "  d:\n    type: date\n", rule("r", "true", probe("d", "date"), sanction=False))
    texts = ["2016年3月1日", "2016年03月01日", "2016年3月01日", "2013年2月29日", "２０１６年３月１日", " 2016年3月1日 ",
             "2016年13月1日", "2016-3-1", "16年3月1日", "2016年3月1"]
    _, result = score_both(folder, {"uscc": [USCC] * len(texts), "d": pa.array(texts)})
    days = read_probe(result, 0).tolist()
    want = 16861  # 2016-03-01
    assert result.valid.tolist() == [True, True, True, False, True, True, False, False, False, False]
    assert [days[i] for i in (0, 1, 2, 4, 5)] == [want] * 5


def test_empty_optional_dates_read_as_zero_without_touching_the_input(tmp_path):
    folder = write_policy(tmp_path, "  o:\n    type: date\n    optional: true\n",
                          rule("r", "true", probe("value_or(o, date('1999-12-31'))", "date"), sanction=False))
    program = compile_program(load_policies(folder))
    stamps = np.array(["2012-04-14", "NaT", "2000-01-01"], dtype="M8[D]")
    before = stamps.copy()
    result = program.score({"uscc": [USCC] * 3, "o": stamps}, as_of=dt.date(2012, 4, 14))
    assert result.valid.all()
    assert read_probe(result, 0).tolist() == [15444, 10956, 10957]
    assert np.array_equal(stamps.view(np.int64), before.view(np.int64))


def test_an_optional_payer_pays_only_where_the_condition_proves_it_set(tmp_path):
    facts = "  district:\n    type: enum\n    values: [金水区, 二七区]\n    optional: true\n"
    folder = write_policy(tmp_path / "bare", facts, rule("r", "true", ["100"], payer="district"))
    with pytest.raises(PolicyError, match="payer 'district' is an optional fact"):
        load_policies(folder)
    # under is_set(district): a payer on every row the rule fires on, in the kernel as in the
    # reference (the responsible unit, 责任单位, of eco_water_interception.yaml)
    folder = write_policy(tmp_path / "guarded", facts, rule("r", "is_set(district)", ["100"], payer="district"))
    _, result = score_both(folder, {"uscc": [USCC] * 3, "district": pa.array(["二七区", None, "金水区"])})
    assert result.totals_by_payer() == {"二七区": 100, "金水区": 100}
    # the kernel refuses an unguarded one too, for a policy built without the loader
    loaded = load_policies(write_policy(tmp_path / "plain", facts.replace("    optional: true\n", ""),
                                        rule("r", "true", ["100"], payer="district")))
    optional = attrs.evolve(loaded.policies[0], facts={**loaded.policies[0].facts,
                            "district": attrs.evolve(loaded.policies[0].facts["district"], optional=True)})
    with pytest.raises(KernelError, match="optional fact"):
        compile_program([optional])


def test_an_optional_column_may_be_left_out_of_the_batch(folder):
    """As a single record may leave out an optional field: every row of it is then empty."""
    program = compile_program(load_policies(folder))
    empty = {k: ([None] * N if program.compiled.facts[k].optional else v) for k, v in ROWS.items()}
    _, reference = score_both(folder, empty)  # all empty, equal to the Python reference
    assert reference.valid.all() and reference.fired.any()
    for container in (dict, pa.table, pd.DataFrame):
        left_out = container({k: v for k, v in empty.items() if not program.compiled.facts[k].optional})
        _same(program.score(left_out, as_of=dt.date(2012, 4, 14)), reference)
    with pytest.raises(ValueError, match="no column 'months'"):
        program.score({k: v for k, v in ROWS.items() if k != "months"}, as_of=dt.date(2012, 4, 14))
