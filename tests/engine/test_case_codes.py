"""The case table's keys coded once per distinct text as written (engine/cases/_table.py):
the codes and their values equal those of putting every row in form first, then coding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ecorules.engine._generate import generate_registry
from ecorules.engine.cases._table import _coded_distinct, _codes, _stripped, linked
from ecorules.rules import load_policies
from ecorules.rules._arrow import numbers
from test_case_batch import DATA


def _row_by_row(column: pa.Array, form) -> tuple[np.ndarray, pa.Array]:
    encoded = pc.dictionary_encode(form(column))
    return numbers(encoded.indices, fill=-1).astype(np.int64), encoded.dictionary


def test_texts_that_become_one_key_get_one_code_in_first_row_order():
    column = pa.array([" A1", "B", "A1", None, "A1 ", "", "B", " "], pa.string())
    codes, values = _coded_distinct(column, _stripped)
    assert codes.tolist() == [0, 1, 0, -1, 0, 2, 1, 2]
    assert values.to_pylist() == ["A1", "B", ""]
    assert _codes(column)[0].tolist() == [0, 1, 0, -1, 0, -1, 1, -1]  # an empty act_id: no act


def test_usccs_written_full_width_or_with_blanks_are_their_enterprise():
    fact = load_policies(DATA).facts["uscc"]
    usccs = generate_registry(30, 5)["uscc"].to_pylist()
    rng = np.random.default_rng(6)
    written = []
    for i in rng.integers(0, 30, 400).tolist():
        code = usccs[i]
        form = rng.integers(0, 4)
        written.append(code if form == 0 else f" {code} " if form == 1 else
                       "".join(chr(ord(c) + 0xFEE0) for c in code) if form == 2 else None)
    column = pa.array(written + ["not a uscc", " not a uscc"], pa.string())
    codes, values = _coded_distinct(column, lambda texts: linked(fact, texts))
    want_codes, want_values = _row_by_row(column, lambda texts: linked(fact, texts))
    assert np.array_equal(codes, want_codes) and values.equals(want_values)
    assert set(values.to_pylist()) <= {*usccs, "not a uscc"}


@pytest.mark.parametrize("seed", [1, 2])
def test_a_column_of_packed_and_hashed_texts_codes_every_text_as_arrow_does(seed):
    """Short texts of letters, digits and '-' are looked up packed, the others by their
    bytes (fastcalc/_cases.pyx): both give Arrow's codes, in the order of the first rows."""
    from ecorules.engine.cases import _table

    rng = np.random.default_rng(seed)
    pool = ["", " ", "A", "a", "A1", " A1", "B22", "b22", "全角", "９１４１", "A-1", "A_1", "x" * 20, "x" * 21,
            "91410100123456788Y", "91410100123456788y", *(f"9141{i:014d}" for i in range(300)),
            *(f"案件{i}" for i in range(50)), *(f"CASE-{i:030d}" for i in range(50))]
    texts = [None if rng.random() < 0.05 else pool[i] for i in rng.integers(0, len(pool), 5000)]
    column = pa.array(texts, pa.string()).slice(7)  # an offset into the buffers, as a batch has
    codes, values = _table._encoded(column)
    encoded = pc.dictionary_encode(column)
    assert codes.tolist() == numbers(encoded.indices, fill=-1).tolist()
    assert values.equals(encoded.dictionary)
    for typed in (column.cast(pa.large_string()), column.slice(0, 0), pa.array([None, None], pa.string())):
        codes, values = _table._encoded(typed)
        encoded = pc.dictionary_encode(typed)
        assert codes.tolist() == numbers(encoded.indices, fill=-1).tolist()
        assert values.to_pylist() == encoded.dictionary.to_pylist()
    got, distinct = _coded_distinct(column, _stripped)
    want, want_distinct = _row_by_row(column, _stripped)
    assert distinct.take(pa.array(got, mask=got < 0)).to_pylist() == want_distinct.take(
        pa.array(want, mask=want < 0)).to_pylist()
