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


# texts about the packed form's bounds (fastcalc/_cases.pyx ``_pack``: at most 18 bytes of
# 1-127, 7 bits each): NUL, 0x01, 0x7F, a byte past 127 (UTF-8), at and past bytes 16 and 17
BYTES = st.sampled_from(["A", "9", "\x00", "\x01", "\x7f", "é", "-", " "])
BOUND_TEXT = st.builds(lambda head, tail: "9" * head + "".join(tail), st.integers(0, 19),
                       st.lists(BYTES, max_size=3))


def _arrow_codes(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    encoded = pc.dictionary_encode(column)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(BOUND_TEXT, st.none()), min_size=1, max_size=40), st.integers(1, 4))
def test_text_codes_across_batches_code_as_arrow_codes_the_whole_column(texts, pieces):
    """``TextCodes`` codes texts batch after batch as ``dictionary_encode`` codes them all at
    once (codes in the order of first rows), and ``local_codes`` of a slice's codes are
    ``encode_texts`` of the slice's texts: what a partition's keys are coded by."""
    from ecorules.fastcalc._cases import TextCodes, encode_texts, local_codes
    from ecorules.rules._arrow import string_buffers

    column = pa.array(texts, pa.string())
    null = np.array([t is None for t in texts], np.uint8)
    want, dictionary = _arrow_codes(column)
    found = TextCodes()
    codes, firsts, start = [], [], 0
    for end in sorted({*np.linspace(0, len(texts), pieces + 1).astype(int).tolist()})[1:]:
        part = column.slice(start, end - start)
        got, first = found.add(*string_buffers(part), null[start:end])
        codes.append(got)
        firsts.append(first + start)
        start = end
    codes, first = np.concatenate(codes), np.concatenate(firsts)
    assert codes.dtype == np.int32 and np.array_equal(codes, want) and len(found) == len(dictionary)
    assert column.take(pa.array(first)).equals(dictionary)
    whole, whole_first = encode_texts(*string_buffers(column), null)
    assert np.array_equal(whole, want) and np.array_equal(whole_first, first)
    half = len(texts) // 2
    local, local_first = local_codes(codes[half:].copy(), len(found))
    sliced = column.slice(half)
    assert np.array_equal(local, encode_texts(*string_buffers(sliced), null[half:])[0])
    assert np.array_equal(local_first, encode_texts(*string_buffers(sliced), null[half:])[1])


def test_local_codes_refuse_a_code_out_of_range():
    from ecorules.fastcalc._cases import local_codes

    with pytest.raises(ValueError):
        local_codes(np.array([0, 3], np.int32), 3)
