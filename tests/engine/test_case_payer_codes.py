"""A payer's labels and codes (engine/cases/_write._coded): each distinct text as written
trimmed and resolved once, a Parquet enum's dictionary coded already; the same labels per
row as trimming and coding every row (what it did before), for text and dictionary columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ecorules.engine.cases._table import _stripped
from ecorules.engine.cases._write import _coded
from ecorules.rules import Kind, load_policies
from ecorules.rules._choices import resolve
from test_case_batch import DATA


def _row_by_row(fact, column) -> list[str | None]:
    """Each row's label by trimming every row, then resolving (an enum)."""
    texts = _stripped(column.cast(pa.string())).to_pylist()
    if fact.type.kind is Kind.ENUM:
        return [None if t is None else resolve(fact, t) for t in texts]
    return texts


@pytest.mark.parametrize("dictionary", [False, True])
def test_payer_labels_per_row_are_those_of_trimming_every_row(dictionary):
    fact = load_policies(DATA).facts["district"]
    rng = np.random.default_rng(3)
    pool = ["金水区", " 金水区", "金水区 ", "二七区", "\u3000二七区", "无此区", "", None]
    column = pa.array([pool[i] for i in rng.integers(0, len(pool), 500)], pa.string())
    if dictionary:
        column = pc.dictionary_encode(column)
    labels, codes = _coded(fact, column)
    assert codes.dtype == np.int64 and labels[len(labels) - 1].as_py() is None
    assert labels.take(pa.array(codes)).to_pylist() == _row_by_row(fact, column)
    assert len(labels) <= 5  # one label per distinct trimmed text, and the empty one
