"""The hash that spills a case to its enterprise's bucket (engine/cases/_spill.py), computed
in one pass by fastcalc/_cases.pyx, against the formula written out in Python: a key's bucket
must not depend on how its array is laid out (sliced, chunked, large, with nulls)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine.cases._spill import buckets_of, text_hashes

_MASK = (1 << 64) - 1


def _reference(text: str | None) -> int:
    """The length and the last eight bytes (0 before the text's start), mixed."""
    raw = b"" if text is None else text.encode()
    h = (len(raw) * 0x9E3779B97F4A7C15) & _MASK
    for back in range(1, 9):
        byte = raw[-back] if len(raw) >= back else 0
        h = ((h ^ byte) * 0x100000001B3) & _MASK
    h ^= h >> 29
    h = (h * 0xBF58476D1CE4E5B9) & _MASK
    return h ^ (h >> 32)


TEXTS = ["91410100123456788Y", "", None, "A", "案件-1", "９１４１０１００１２３４５６７８８Ｙ", "1234567", "12345678",
         "123456789", "x" * 40, None, "C000000001"]


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_hashes_are_the_formula_for_every_layout(kind):
    column = pa.array(TEXTS, kind)
    want = [_reference(t) for t in TEXTS]
    assert text_hashes(column).tolist() == want
    assert text_hashes(column.slice(3, 6)).tolist() == want[3:9]  # the array's offset applied
    chunked = pa.chunked_array([pa.array(TEXTS[:5], kind), pa.array(TEXTS[5:], kind)])
    assert text_hashes(chunked).tolist() == want


def test_no_texts_and_the_buckets_of_random_keys():
    assert text_hashes(pa.array([], pa.string())).size == 0
    rng = np.random.default_rng(5)
    keys = [f"9141{n:014d}" for n in rng.integers(0, 10**14, 2000)]
    buckets = buckets_of(pa.array(keys), 7)
    assert buckets.tolist() == [_reference(k) % 7 for k in keys]
    assert np.bincount(buckets, minlength=7).min() > 200  # spread over every bucket
