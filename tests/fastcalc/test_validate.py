"""Batch validation: every reason of rules/_records.py, from every kind of column.

Each case puts one raw value (among valid rows) into a column of a given container and
checks the reject entry against the message ``_records.coerce`` itself raises for that value,
or acceptance where it accepts it. The two documented differences (whole floats are integers,
NaN is missing; the implied range of facts without min/max) have their own tests.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from ecorules.fastcalc import compile_program
from ecorules.rules import RecordError, load_policies
from ecorules.rules._records import coerce
from fastcalc_reference import reference_check
from fastcalc_support import AS_OF, USCC, rule, score_both, write_policy

FACTS = (
    "  i:\n    type: integer\n    min: 0\n    max: 10000\n"
    "  d:\n    type: decimal\n    min: -5\n    max: 1000\n"
    "  b:\n    type: boolean\n"
    "  t:\n    type: date\n"
    "  e:\n    type: enum\n    values: [甲, 乙, 丙]\n"
    "  s:\n    type: string\n"
    "  n:\n    type: integer\n"  # no min/max: the implied +-2**31
)
WHEN = "b or i > 0 or d > 0 or t < as_of or e == '甲' or s == 'y' or n > 0"
GOOD = {"uscc": USCC, "i": 1, "d": "1.5", "b": True, "t": dt.date(2012, 1, 1), "e": "甲", "s": "y", "n": 5}


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    folder = write_policy(tmp_path_factory.mktemp("v"), FACTS, rule("r", WHEN, ["1"]))
    return compile_program(load_policies(folder)), folder


def _records_reason(name: str, raw, program) -> str | None:
    """_records' message, with the documented differences (fastcalc_reference.reference_check)."""
    fact = program.compiled.facts[name]
    try:
        coerce(fact, raw)
        plain = None
    except RecordError as error:
        plain = error.message
    batch = reference_check(fact, raw)[1]
    if batch != plain:  # only where the documented differences apply
        assert isinstance(raw, float) or fact.min is None, (name, raw, plain, batch)
    return batch


def _column(container: str, values: list):
    if container == "list":
        return values
    if container == "object":
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    if container == "numpy":
        return np.array(values)
    if container == "arrow":
        return pa.array(values)
    raise AssertionError(container)


CASES = [
    # column, container, raw
    ("i", "arrow", None), ("i", "list", "1.5"), ("i", "list", "abc"), ("i", "object", True), ("i", "numpy", -1),
    ("i", "numpy", 10001), ("i", "numpy", 1.5), ("i", "list", " 7 "), ("i", "list", "٣"), ("i", "list", "+7"),
    ("i", "list", "99999999999999999999"), ("i", "list", ""), ("i", "list", "  "), ("i", "numpy", True),
    ("i", "object", Decimal("2")), ("i", "object", Decimal("2.5")), ("i", "list", "1e3"),
    ("d", "numpy", 1.5), ("d", "list", "abc"), ("d", "list", "1.00001"), ("d", "list", "NaN"), ("d", "list", "-inf"),
    ("d", "list", "-5.0001"), ("d", "list", "-0"), ("d", "list", "1_000"), ("d", "list", " .5 "), ("d", "numpy", 7),
    ("d", "numpy", 1001), ("d", "object", True), ("d", "list", "1e-5"), ("d", "list", "1E+2"),
    ("b", "list", "yes!"), ("b", "numpy", 1), ("b", "list", "是"), ("b", "list", "FALSE"), ("b", "list", " n "),
    ("b", "object", 0.0), ("b", "arrow", None),
    ("t", "list", "2013-02-29"), ("t", "object", dt.datetime(2012, 4, 14)), ("t", "list", "20120414"),
    ("t", "list", "2012-4-14"), ("t", "list", "0000-01-01"), ("t", "list", " 2012-04-14 "), ("t", "object", 20120414),
    ("e", "list", "X"), ("e", "list", " 乙 "), ("e", "object", 1), ("e", "list", ""),
    ("s", "object", 5), ("s", "list", "   "), ("s", "list", " y "),
    ("uscc", "list", "bad"), ("uscc", "list", "91410100123456788X"), ("uscc", "list", " 91410100123456788Y "),
    ("uscc", "object", 12345),
]


@pytest.mark.parametrize("name, container, raw", CASES)
def test_a_value_is_decided_as_records_decides_it(program, name, container, raw):
    """Every row of the column (numpy may convert the good values too) is decided by _records."""
    program, _ = program
    values = [GOOD[name], raw, GOOD[name]]
    if container == "numpy" and isinstance(raw, float) and isinstance(GOOD[name], int):
        values = [float(v) for v in values]
    batch = {column: [GOOD[column]] * 3 for column in program.columns}
    batch[name] = _column(container, values)
    result = program.score(batch, as_of=AS_OF)
    column = batch[name]
    python = column.to_pylist() if isinstance(column, pa.Array) else \
        [v.item() if isinstance(v, np.generic) else v for v in column]
    expected = []
    for row, value in enumerate(python):
        reason = _records_reason(name, value, program)
        if reason is not None:
            shown = "" if value is None else value if isinstance(value, str) else str(value)
            expected.append((row, name, shown, reason))
    assert result.valid.tolist() == [row not in {e[0] for e in expected} for row in range(3)]
    assert list(zip(result.reject_rows.tolist(), result.reject_columns.tolist(), result.reject_values.tolist(),
                    result.reject_reasons.tolist(), strict=True)) == expected


def test_the_reasons_read_as_records_words_them(program):
    program, _ = program
    reasons = {}
    for name, container, raw in CASES:
        batch = {column: [GOOD[column]] for column in program.columns}
        batch[name] = _column(container, [raw])
        result = program.score(batch, as_of=AS_OF)
        reasons.update(zip(result.reject_columns.tolist(), result.reject_reasons.tolist(), strict=True))
        for column, reason in zip(result.reject_columns.tolist(), result.reject_reasons.tolist(), strict=True):
            reasons[(column, repr(raw))] = reason
    assert reasons[("i", "'1.5'")] == "must be a whole number, got '1.5'"
    assert reasons[("i", "-1")] == "-1 is below the minimum 0"
    assert reasons[("i", "None")] == "is missing"
    assert reasons[("uscc", "'bad'")] == "is not a valid 统一社会信用代码: has 3 characters, expected 18"
    assert reasons[("e", "'X'")] == "'X' is not an allowed e (none of its 3 values is close)"
    assert reasons[("b", "'yes!'")] == "must be true or false, got 'yes!'"
    assert reasons[("d", "1.5")] == "must be an exact decimal (text or integer), got 1.5"
    assert reasons[("d", "'1.00001'")] == "has more than 4 decimal places: '1.00001'"
    assert reasons[("t", "'2013-02-29'")] == "must be a date YYYY-MM-DD, got '2013-02-29'"
    assert reasons[("s", "5")] == "must be text, got 5"


def test_pandas_timestamps_are_not_dates(program):
    program, _ = program
    batch = {column: [GOOD[column]] * 2 for column in program.columns}
    batch = pd.DataFrame(batch)
    batch["t"] = pd.to_datetime(["2012-01-01", "2012-01-01 08:00"], format="ISO8601")
    result = program.score(batch, as_of=AS_OF)
    assert result.reject_reasons.tolist() == [
        "must be a date without time, got datetime.datetime(2012, 1, 1, 0, 0)",
        "must be a date without time, got datetime.datetime(2012, 1, 1, 8, 0)"]


def test_documented_differences_whole_floats_nan_and_implied_ranges(program):
    program, _ = program
    batch = {column: [GOOD[column]] * 5 for column in program.columns}
    batch["i"] = np.array([3.0, np.nan, 1.0, 2.0, 4.0])  # an integer column of pandas with a gap
    batch["n"] = np.array([5, 2**31, -(2**31) - 1, 2**31 - 1, 7], dtype=np.int64)
    result = program.score(batch, as_of=AS_OF)
    assert result.valid.tolist() == [True, False, False, True, True]
    assert list(zip(result.reject_rows.tolist(), result.reject_columns.tolist(), result.reject_reasons.tolist(),
                    strict=True)) == [
        (1, "i", "is missing"), (1, "n", "2147483648 is above the maximum 2147483647"),
        (2, "n", "-2147483649 is below the minimum -2147483648")]


def test_a_row_with_several_problems_has_one_entry_per_column_and_rows_add_up(program):
    program, _ = program
    rng = np.random.default_rng(7)
    n = 5000
    pools = {"uscc": [USCC, "bad", None], "i": [1, -1, "x", None, 5], "d": ["1.5", "x", 2.5, None],
             "b": [True, "maybe", None], "t": ["2012-01-01", "2012-02-30", None], "e": ["甲", "丁", None],
             "s": ["y", None, 3], "n": [1, 2**40, None]}
    batch = {}
    for name, pool in pools.items():
        picks = rng.choice(len(pool), n, p=[0.8] + [0.2 / (len(pool) - 1)] * (len(pool) - 1))
        column = np.empty(n, dtype=object)
        column[:] = [pool[k] for k in picks]
        batch[name] = column
    result = program.score(batch, as_of=AS_OF)
    rejected_rows = np.unique(result.reject_rows)
    assert result.n_rows == int(result.valid.sum()) + rejected_rows.size
    assert not result.valid[rejected_rows].any()
    assert (np.diff(result.reject_rows) >= 0).all()
    per_row = np.bincount(result.reject_rows, minlength=n)
    assert per_row.max() > 1  # some rows have several problems, each its own entry
    for out in (result.fired, result.amounts, result.sanctions):
        assert not out[:, ~result.valid].any()  # rejected rows: all zero
    assert not result.total_yuan[~result.valid].any()


CONTAINERS = ["dict-numpy", "dict-lists", "arrow-table", "record-batch", "pandas-numpy", "pandas-arrow",
              "pandas-nullable", "chunked"]


@pytest.mark.parametrize("container", CONTAINERS)
def test_every_container_gives_the_same_result(program, container):
    program, folder = program
    rng = np.random.default_rng(3)
    n = 2000
    i = rng.integers(-2, 12000, n)
    d = rng.integers(-600, 100000, n)
    columns = {
        "uscc": np.array([USCC, "9144030071526726XG", "bad"], dtype=object)[rng.integers(0, 3, n)],
        "i": i, "d": np.array([f"{x / 100:.2f}" for x in d], dtype=object), "b": rng.random(n) < 0.5,
        "t": np.datetime64("2011-01-01") + rng.integers(0, 900, n).astype("m8[D]"),
        "e": np.array(["甲", "乙", "丙", "丁"], dtype=object)[rng.integers(0, 4, n)],
        "s": np.array(["x", "y", " y"], dtype=object)[rng.integers(0, 3, n)],
        "n": rng.integers(-(2**33), 2**33, n),
    }
    _, expected = score_both(folder, columns)
    if container == "dict-numpy":
        batch = columns
    elif container == "dict-lists":
        batch = {k: v.tolist() for k, v in columns.items()}
    elif container in ("arrow-table", "record-batch", "chunked"):
        table = pa.table({k: pa.array(v) for k, v in columns.items()})
        if container == "record-batch":
            batch = table.to_batches()[0]
        elif container == "chunked":
            batch = pa.Table.from_batches(table.to_batches(max_chunksize=300))
        else:
            batch = table
    else:
        # pandas has no day unit: datetime64 columns are timestamps, which _records refuses
        # ("must be a date without time"); dates go in as date objects or Arrow date32.
        frame = pd.DataFrame(columns)
        dates = columns["t"].astype(object)
        if container == "pandas-numpy":
            frame["t"] = pd.Series(list(dates), dtype=object)
            batch = frame
        elif container == "pandas-arrow":
            frame["t"] = pd.array(list(dates), dtype=pd.ArrowDtype(pa.date32()))
            batch = frame.astype({"uscc": "string[pyarrow]", "e": "category", "s": "string[pyarrow]",
                                  "d": "string[pyarrow]"})
        else:
            frame["t"] = pd.Series(list(dates), dtype=object)
            batch = frame.astype({"i": "Int64", "n": "Int64", "b": "boolean"})
    result = program.score(batch, as_of=AS_OF)
    for name in ("valid", "fired", "amounts", "sanctions", "total_yuan", "reject_rows"):
        assert np.array_equal(getattr(result, name), getattr(expected, name)), name
    assert result.reject_reasons.tolist() == expected.reject_reasons.tolist()


def test_a_missing_column_names_the_policy_that_needs_it(program):
    program, _ = program
    batch = {column: [GOOD[column]] for column in program.columns if column != "t"}
    with pytest.raises(ValueError, match=r"no column 't', needed by test.tiny@1"):
        program.score(batch, as_of=AS_OF)
    batch["t"] = [GOOD["t"]] * 2
    with pytest.raises(ValueError, match="has 2 rows"):
        program.score(batch, as_of=AS_OF)


def test_arguments_are_checked(program):
    program, _ = program
    batch = {column: [GOOD[column]] for column in program.columns}
    with pytest.raises(ValueError, match="as_of"):
        program.score(batch, as_of=dt.datetime(2012, 4, 14))
    with pytest.raises(ValueError, match="threads"):
        program.score(batch, as_of=AS_OF, threads=0)
    with pytest.raises(ValueError, match="expected a dict"):
        program.score([1, 2], as_of=AS_OF)


def test_space_codepoints_are_pythons_whitespace():
    import sys

    from ecorules.fastcalc._validate_coded import SPACE_CODEPOINTS

    assert list(SPACE_CODEPOINTS) == [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]


# -- enum aliases: the batch reads each distinct text as _records does -----------------------------
ALIASED = ["乙类", "甲", "\u3000乙 ", "丙（管委会）", "乙类", "丁", None, "丙管委会"]


@pytest.mark.parametrize("container", ["list", "object", "arrow", "large", "dictionary", "category"])
def test_enum_aliases_and_full_width_forms_get_the_canonical_code(container):
    from ecorules.fastcalc._validate import validate_column
    from ecorules.fastcalc._validate_common import Rejects
    from ecorules.rules import Fact
    from ecorules.rules._types import enum_type

    fact = Fact("e", enum_type(("甲", "乙", "丙")), label="类别",
                value_aliases=(("乙类", "乙"), ("丙管委会", "丙")))
    column = {
        "list": lambda: ALIASED,
        "object": lambda: _column("object", ALIASED),
        "arrow": lambda: pa.array(ALIASED),
        "large": lambda: pa.array(ALIASED, pa.large_string()),
        "dictionary": lambda: pa.array(ALIASED).dictionary_encode(),
        "category": lambda: pd.Series(ALIASED, dtype="category"),
    }[container]()
    rejects = Rejects()
    codes = validate_column(fact, column, len(ALIASED), True, rejects).values
    rejected = dict(zip(np.concatenate(rejects.rows).tolist(), np.concatenate(rejects.reasons).tolist(), strict=True))
    assert rejected == {5: "'丁' is not an allowed 类别 (none of its 3 values is close)", 6: "is missing"}
    valid = [row for row in range(len(ALIASED)) if row not in rejected]
    assert codes[valid].tolist() == [1, 0, 1, 2, 1, 2]
    for row in valid:  # exactly what a single record gets
        assert fact.type.choices[codes[row]] == coerce(fact, ALIASED[row])
