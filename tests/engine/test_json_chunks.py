"""The chunk layout of the store (engine/_chunks.py): rows laid out in one element-wise join
are byte for byte what the column-by-column layout writes, escapes and edge cases included."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine._chunks import (
    Same,
    _json_rows,
    _json_rows_at_once,
    _json_rows_joined,
    _needs_escaping,
)

TEXTS = ["C000000001", "", 'a "quoted" 案件', "back\\slash", "tab\there", "金水区", "line\nbreak", "\u3000"]


@pytest.mark.parametrize("seed", range(6))
def test_rows_at_once_equal_rows_joined(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 40))
    width = int(rng.integers(1, 6))
    columns, safe = [], []
    for _ in range(width):
        if rng.random() < 0.4:
            columns.append(pa.array(rng.integers(-10**12, 10**12, n), pa.int64()))
            safe.append(True)
        else:
            plain = rng.random() < 0.5  # texts needing no escape, declared safe or not
            pool = TEXTS[:2] + ["金水区"] if plain else TEXTS
            columns.append(pa.array([pool[i] for i in rng.integers(0, len(pool), n)], pa.string()))
            safe.append(bool(plain and rng.random() < 0.5))
    at_once = _json_rows_at_once(columns, tuple(safe))
    assert at_once == _json_rows_joined(columns, tuple(safe)) == _json_rows(columns, tuple(safe))
    expected = [[c[i].as_py() for c in columns] for i in range(n)] if width > 1 else [columns[0][i].as_py() for i in range(n)]
    assert json.loads(at_once) == expected


def test_a_column_with_nulls_keeps_the_column_by_column_layout():
    columns = [pa.array(["a", None]), pa.array([1, 2])]
    assert _json_rows(columns) == _json_rows_joined(columns, (False, False))


def test_a_slice_is_laid_out_from_its_own_rows():
    column = pa.array(["x", "y", "z", "w"]).slice(1, 2)
    assert _json_rows([column, pa.array([5, 6, 7, 8]).slice(1, 2)], (True, True)) == '[["y",6],["z",7]]'


@pytest.mark.parametrize("seed", range(4))
def test_columns_all_alike_are_written_as_the_rows_would_be(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    keys = pa.array([TEXTS[i] for i in rng.integers(0, len(TEXTS), n)], pa.string())
    amounts = pa.array(rng.integers(0, 10**6, n), pa.int64())
    alike = {"first": ('"first"', pa.array(["first"] * n)), "zero": ("0", pa.array([0] * n, pa.int64())),
             "empty": ('""', pa.array([""] * n))}
    order = [str(k) for k in rng.permutation(list(alike))]
    same = [keys, amounts, *(Same(alike[k][0]) for k in order)]
    spelled = [keys, amounts, *(alike[k][1] for k in order)]
    assert _json_rows(same) == _json_rows(spelled)
    assert json.loads(_json_rows(same))[0][2:] == [alike[k][1][0].as_py() for k in order]


def test_same_columns_need_a_column_of_rows():
    with pytest.raises(ValueError, match="alone"):
        _json_rows([Same("0"), Same('""')])


@pytest.mark.parametrize("texts", [["a", 'b"c'], ["a\\b"], ["x\ny"], ["\x00"], ["\x1f", "ok"]])
def test_a_character_json_escapes_is_found_anywhere(texts):
    column = pa.array(["plain", *texts, "中文"])
    assert _needs_escaping(column)
    assert _needs_escaping(pa.chunked_array([column]))  # (the regular expression's way)
    assert json.loads(_json_rows([column])) == column.to_pylist()


def test_plain_text_cjk_and_other_rows_of_a_slice_need_no_escaping():
    column = pa.array(['"quoted"', "中文 全角　空格", "91410100MA0001", "x\\"])
    assert not _needs_escaping(column.slice(1, 2))
    assert _needs_escaping(column.slice(0, 1)) and _needs_escaping(column.slice(3, 1))
    assert not _needs_escaping(pa.array([], pa.string()))
    assert not _needs_escaping(pa.array(["a", None, "b"]))
