"""Arrow arrays to and from numpy for the cases that need no conversion at all.

pyarrow's ``Array.to_numpy``, ``np.asarray(array)`` and ``pa.array(ndarray)`` go through its
pandas conversion layer (importing pandas, 0.2-0.4 s, on first use) even for an int64 array
they then hand over zero-copy. These read or wrap the buffers directly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def numbers(arr: pa.Array, fill: int | float = 0) -> np.ndarray:
    """An integer or floating-point Arrow array as numpy (nulls as ``fill``); zero-copy without nulls."""
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        raise TypeError(f"expected an integer or floating-point array, got {arr.type}")
    if arr.null_count:
        arr = arr.fill_null(fill)
    data = np.frombuffer(arr.buffers()[1], np.dtype(arr.type.to_pandas_dtype()))
    return data[arr.offset : arr.offset + len(arr)]


def from_numbers(values: np.ndarray) -> pa.Array:
    """A 1-D numeric numpy array as an Arrow array without nulls, zero-copy (it keeps ``values`` alive)."""
    values = np.ascontiguousarray(values)
    if values.ndim != 1 or values.dtype.kind not in "iuf":
        raise TypeError(f"expected a 1-D integer or floating-point array, got {values.dtype} of shape {values.shape}")
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def bools(arr: pa.Array) -> np.ndarray:
    """A boolean Arrow array as a numpy bool array (null as False), unpacked from its bitmap."""
    n = len(arr)
    if arr.null_count:
        arr = arr.fill_null(False)
    start = arr.offset
    bits = np.frombuffer(arr.buffers()[1], np.uint8)[start // 8 : (start + n + 7) // 8]
    return np.unpackbits(bits, bitorder="little")[start % 8 : start % 8 + n].view(bool)


__all__ = ["bools", "from_numbers", "numbers"]
