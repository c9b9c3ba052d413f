"""Input loops of fastcalc/_cases.pyx against what they replaced: ``HashSet`` (the distinct
hashes of the case table's enterprise keys) against ``np.unique`` of every batch, and
``ascending_texts`` (through ``_table._ascending``) against Arrow's ``less`` of a column and
itself shifted by one."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ecorules.engine.cases._table import _ascending
from ecorules.fastcalc._cases import HashSet
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("seed", range(4))
def test_a_hash_set_holds_the_distinct_numbers_of_every_batch_sorted(seed):
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64, endpoint=True)
    pool[:4] = [0, 1, 2**64 - 1, 2**63]  # 0 is no empty slot; the largest numbers sort last
    batches = [pool[rng.integers(0, pool.size if seed else 3, rng.integers(0, 4000))] for _ in range(12)]
    found = HashSet()
    for batch in batches:
        found.add(np.ascontiguousarray(batch))
    want = np.unique(np.concatenate(batches))
    got = found.sorted()
    assert got.dtype == np.uint64 and np.array_equal(got, want) and len(found) == want.size


def test_an_empty_hash_set():
    found = HashSet()
    found.add(np.zeros(0, np.uint64))
    assert found.sorted().size == 0 and len(found) == 0


def _less(texts: list[str | None]) -> bool:
    column = pa.array(texts, pa.string())
    if column.null_count:
        return False
    return len(column) < 2 or pc.all(pc.less(column.slice(0, len(column) - 1), column.slice(1))).as_py()


TEXT = st.text(alphabet=st.sampled_from(["a", "b", "A", "é", "案", "\x00", " ", "9"]), max_size=4)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(TEXT, st.none()), max_size=8), st.booleans())
def test_ascending_texts_is_arrows_less_in_every_layout(texts, sort):
    if sort:
        texts = sorted({t for t in texts if t is not None})
    want = _less(texts)
    assert _ascending(pa.array(texts, pa.string())) is want
    assert _ascending(pa.array(texts, pa.large_string())) is want
    assert _ascending(pa.array(["zzz", *texts], pa.string()).slice(1)) is want  # the array's offset
    halves = [pa.array(texts[:3], pa.string()), pa.array(texts[3:], pa.string())]
    assert _ascending(pa.chunked_array(halves, pa.string())) is want
