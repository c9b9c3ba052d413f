import numpy as np
import pyarrow as pa
import pytest
from ecorules.rules._arrow import (
    bools,
    distinct_sorted,
    fill_null,
    from_numbers,
    numbers,
    scalar,
    string_scalar,
    strings,
)
from ecorules.rules._uscc import _nulls


def slices(array):
    n = len(array)
    for offset in range(min(n, 17)):
        for length in {0, 1, n - offset, (n - offset) // 2}:
            yield array.slice(offset, length)


def test_bools_unpacks_any_slice_like_to_numpy():
    rng = np.random.default_rng(7)
    for n in (0, 1, 7, 8, 9, 100, 1000):
        for part in slices(pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.2)):
            assert bools(part).tolist() == part.fill_null(False).to_pylist()
            assert _nulls(part).tolist() == part.is_null().to_pylist()


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64, np.float32, np.float64])
def test_numbers_reads_any_slice_with_nulls_filled(dtype):
    rng = np.random.default_rng(3)
    values = (rng.random(300) * 100).astype(dtype)
    for nulls in (None, rng.random(300) < 0.3):
        for part in slices(pa.array(values, mask=nulls)):
            got = numbers(part, fill=7)
            assert got.dtype == dtype
            assert got.tolist() == [7 if v is None else v for v in part.to_pylist()]


def test_numbers_without_nulls_is_zero_copy_and_from_numbers_round_trips():
    values = np.arange(10, dtype=np.int64)
    array = from_numbers(values)
    assert array.type == pa.int64() and array.to_pylist() == list(range(10))
    assert np.shares_memory(numbers(array), values)
    assert from_numbers(values[::2]).to_pylist() == [0, 2, 4, 6, 8]  # strided: copied contiguous


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="integer or floating-point array, got string"):
        numbers(pa.array(["a"]))
    with pytest.raises(TypeError, match="1-D integer or floating-point"):
        from_numbers(np.array(["a"]))


@pytest.mark.parametrize(("value", "type_"), [
    (True, pa.bool_()), (False, pa.bool_()), (0, pa.int8()), (-5, pa.int64()), (7, pa.uint16()),
    (1.5, pa.float64()), ("金水区", pa.string()), ("", pa.large_string()), (0, pa.decimal128(38, 4)),
    (3, pa.date32()),
])
def test_scalar_and_fill_null_equal_pyarrows_own(value, type_):
    assert scalar(value, type_).equals(pa.scalar(value, type_))
    if pa.types.is_date32(type_):
        return
    column = pa.array([None, value, None], type_)
    assert fill_null(column, value).equals(pa.array([value] * 3, type_))
    no_nulls = column.slice(1, 1)
    assert fill_null(no_nulls, value) is no_nulls  # nothing to fill: the array itself


def test_strings_build_what_pa_array_builds():
    texts = ["", "a", "金水区", 'x"y', "\u0000"]
    assert strings(texts).equals(pa.array(texts, pa.string()))
    assert strings([]).equals(pa.array([], pa.string()))
    assert string_scalar("郑州").equals(pa.scalar("郑州"))


def test_distinct_sorted_is_numpys_unique_for_every_dtype_and_size():
    rng = np.random.default_rng(11)
    for dtype in (np.int64, np.uint64, np.int32, np.intp):
        for n in (0, 1, 2, 3, 100, 10_000):
            for spread in (1, 5, n + 1):
                values = rng.integers(0, spread, n).astype(dtype)
                got = distinct_sorted(values)
                assert got.dtype == values.dtype
                assert np.array_equal(got, np.unique(values))
    values = rng.integers(0, 9, 50)
    before = values.copy()
    distinct_sorted(values)
    assert np.array_equal(values, before)  # the caller's array is not sorted in place
