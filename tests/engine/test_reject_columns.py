"""A batch's kernel rejects counted in columns give what counting them one by one gives: the
rows of each (column, reason class) key once per row, the keys in the order the rejects
meet them, each key's first reason as its example, the values cut to 200 characters."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from ecorules.engine._rejects import count_reasons, kernel_rejects
from ecorules.engine._scored import reason_class

HEADERS = {"uscc": "统一社会信用代码", "count": "未处理排口数", "district": "所属区县"}
REASONS = ["check character is '{}', expected 'T'", "not an integer: '{}'", "above the maximum 9999: {}",
           "missing", "not one of the districts: '{}'"]


def _one_by_one(result, headers, counts, examples):
    """The counting as it was first written: a tuple, a set entry and a class per reject."""
    columns = [headers.get(name, name) if name is not None else None for name in result.reject_columns.tolist()]
    reasons = [str(r) for r in result.reject_reasons.tolist()]
    keys = [(column, reason_class(reason)) for column, reason in zip(columns, reasons, strict=True)]
    count_reasons(counts, result.reject_rows.tolist(), keys, reasons, examples)
    return columns, reasons


@pytest.mark.parametrize("seed", range(12))
def test_counted_in_columns_as_one_by_one(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    names = np.array([None, "uscc", "count", "district", "other"], dtype=object)[rng.integers(0, 5, n)]
    reasons = np.array([REASONS[k].format(int(v)) for k, v in zip(rng.integers(0, len(REASONS), n),
                                                                 rng.integers(-3, 40, n), strict=True)], dtype=object)
    values = np.array(["x" * int(w) for w in rng.choice([0, 3, 18, 200, 201, 500], n)], dtype=object)
    rows = np.sort(rng.integers(0, max(1, n // 3), n))  # a row may have several rejects, in one column too
    result = SimpleNamespace(reject_rows=rows, reject_columns=names, reject_values=values, reject_reasons=reasons)
    file_rows = np.arange(1000, 1000 + n // 3 + 1, dtype=np.int64)
    counts, examples = Counter({("统一社会信用代码", "missing"): 5}), {}
    got = kernel_rejects(result, "r.csv", file_rows, HEADERS, counts, reason_class, examples)
    want_counts, want_examples = Counter({("统一社会信用代码", "missing"): 5}), {}
    columns, reasons_text = _one_by_one(result, HEADERS, want_counts, want_examples)
    assert list(counts.items()) == list(want_counts.items())  # the same counts, keys in the same order
    assert list(examples.items()) == list(want_examples.items())
    assert got.columns == columns and got.reasons == reasons_text
    assert got.rows.tolist() == file_rows[rows].tolist()
    assert got.values == [v[:200] for v in values.tolist()]


def test_values_that_are_not_text_are_shown_as_text():
    result = SimpleNamespace(reject_rows=np.array([0, 1, 2]), reject_columns=np.array(["count"] * 3, dtype=object),
                             reject_values=np.array([None, b"\xff1", 12], dtype=object),
                             reject_reasons=np.array(["missing", "not an integer: '\\xff1'", "x"], dtype=object))
    got = kernel_rejects(result, "r.csv", np.array([2, 3, 4]), HEADERS, Counter(), reason_class)
    assert got.values == [None, "\\xff1", "12"]


def test_counting_rejects_does_not_import_pandas():
    """Arrow's dictionary_encode imports pandas on its first call: ~0.5 CPU-s of every run
    with a rejected row, which a clean run never paid."""
    code = """
import sys
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace
import numpy as np
from ecorules.engine._rejects import kernel_rejects
from ecorules.engine._scored import reason_class
result = SimpleNamespace(reject_rows=np.array([0, 1]), reject_columns=np.array(["uscc", None], dtype=object),
                         reject_values=np.array(["x", "y"], dtype=object),
                         reject_reasons=np.array(["missing", "malformed line: 3 fields"], dtype=object))
assert "pandas" not in sys.modules
kernel_rejects(result, "r.csv", np.arange(2), {}, Counter(), reason_class, {})
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
