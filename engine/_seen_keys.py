"""The USCCs a run has met so far, exactly, in 8 bytes each: duplicates found while reading.

Under ``--duplicates reject`` (the default) a row is a duplicate when its key was met on an
earlier row: a question about the rows already read, which the scoring pass can answer as it
goes, so the run no longer reads the registry twice (the first pass of engine/_duplicates.py
cost as much as the rest of a CSV run). ``last`` and ``sum`` still need that pass: they
decide a row by the rows after it.

**Exact, not a digest.** A valid USCC carries 70 bits: two characters of 31 values
(positions 1-2), six digits (3-8, < 2**20), eight characters of 31 values (9-16, 31**8 <
2**40); positions 17 and 18 are check characters computed from the others. The 60 bits of
positions 3-16 and the low 4 bits of positions 1-2 make a 64-bit code; the remaining 6 bits
choose one of up to 61 sets (in a real registry nearly every code starts 91 and lands in one).
Two valid codes are equal exactly when their (set, code) are, so a hit is a duplicate and
never a collision to check.

**A hash set over a uint64 array.** Open addressing with linear probing, sized at 4/3 of the
rows expected (10.7 bytes a row: 320 MB at 30,000,000 rows), grown by half when 85% full (the
old and the new table side by side while it is copied). The codes and the insertion run in
fastcalc's kernel (a few ms a batch); without a built kernel, in numpy (a batch of codes at
once: every pending code looks at its slot, the ones that find themselves are hits, the first
of those that find the slot empty takes it, the rest move on), the same table ~20x slower.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from ecorules.rules._arrow import from_bools, string_buffers
from ecorules.rules._uscc import USCC_CHARSET

_VALUE = np.zeros(256, np.uint64)
_VALUE[np.frombuffer(USCC_CHARSET.encode(), np.uint8)] = np.arange(31, dtype=np.uint64)
_BYTE_VALUE = _VALUE.astype(np.uint8)
_REGION = 10 ** np.arange(5, -1, -1, dtype=np.uint64)  # positions 3-8: digits, their values are 0-9
_ORG = np.uint64(31) ** np.arange(7, -1, -1, dtype=np.uint64)  # positions 9-16, base 31
_EMPTY = np.uint64(0)  # a free slot; the code whose mixed value is 0 is kept aside
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_FULL = 0.85


_KERNEL: list = []  # [(uscc_set_codes, code_set_add)], or [None] without a built kernel


def _kernel():
    if not _KERNEL:
        try:
            from ecorules.fastcalc._kernel import code_set_add, uscc_set_codes
            _KERNEL.append((uscc_set_codes, code_set_add))
        except (ImportError, AttributeError):  # a source tree without the (current) kernel
            _KERNEL.append(None)
    return _KERNEL[0]


def uscc_codes(keys: pa.Array, valid: np.ndarray, kernel: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, set, code) of the rows of ``keys`` holding a valid USCC in its canonical form
    (18 ASCII bytes; ``valid`` from engine/_duplicates.canonical_keys)."""
    rows = np.flatnonzero(valid)
    if not rows.size:
        empty = np.zeros(0, np.uint64)
        return rows, empty.astype(np.uint16), empty
    picked = keys if rows.size == len(keys) else keys.filter(from_bools(valid))
    offsets, data = string_buffers(picked)
    data = data[offsets[0] : offsets[-1]]
    if data.size != 18 * rows.size:
        raise ValueError("a valid USCC is 18 ASCII characters")
    if kernel and _kernel() is not None:
        code, head = np.empty(rows.size, np.uint64), np.empty(rows.size, np.uint16)
        _kernel()[0](data.reshape(-1, 18), _BYTE_VALUE, code, head)
        return rows, head, code
    chars = _VALUE[data.reshape(-1, 18)[:, :16]]
    head = chars[:, 0] * np.uint64(31) + chars[:, 1]  # < 961
    code = (chars[:, 8:16] @ _ORG) | ((chars[:, 2:8] @ _REGION) << np.uint64(40)) | ((head & np.uint64(15)) << np.uint64(60))
    return rows, (head >> np.uint64(4)).astype(np.uint16), code


def _mixed(codes: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of uint64 that spreads nearby codes over the table."""
    x = codes ^ (codes >> np.uint64(30))
    x *= _MIX[0]
    x ^= x >> np.uint64(27)
    x *= _MIX[1]
    x ^= x >> np.uint64(31)
    return x


class CodeSet:
    """A set of uint64 values (see the module's docstring)."""

    def __init__(self, expected: int = 0, kernel: bool = True):
        self.slots = np.zeros(max(1024, expected * 4 // 3), np.uint64)
        self.count = 0
        self.has_zero = False  # the value stored as _EMPTY's mix
        self.kernel = _kernel()[1] if kernel and _kernel() is not None else None

    def add(self, codes: np.ndarray) -> np.ndarray:
        """Which of ``codes`` were in the set already, or earlier in ``codes``; all are in it after."""
        codes = np.ascontiguousarray(codes, np.uint64)
        if self.count + codes.size > _FULL * self.slots.size:
            self._grow(self.count + codes.size)
        if self.kernel is not None:
            seen, zero = np.empty(codes.size, np.uint8), np.array([self.has_zero], np.uint8)
            self.count += self.kernel(self.slots, codes, seen, zero, False)
            self.has_zero = bool(zero[0])
            return seen.view(bool)
        mixed = _mixed(codes)
        seen = np.zeros(codes.size, bool)
        zero = np.flatnonzero(mixed == _EMPTY)
        for row in zero.tolist():
            seen[row], self.has_zero = self.has_zero, True
        pending = np.flatnonzero(mixed != _EMPTY) if zero.size else np.arange(codes.size)
        self.count += self._insert(mixed[pending], pending, seen)
        return seen

    def _insert(self, values: np.ndarray, pending: np.ndarray, seen: np.ndarray) -> int:
        slots, size = self.slots, np.uint64(self.slots.size)
        at = ((values >> np.uint64(32)) * size) >> np.uint64(32)  # the home slot, without a modulo
        taken = 0
        while pending.size:
            current = slots[at]
            hit = current == values
            seen[pending[hit]] = True
            empty = np.flatnonzero(current == _EMPTY)
            done = hit
            if empty.size:
                # the first of the codes wanting a free slot takes it (rows in order: the
                # earlier row of two equal codes is the first, the later then finds it)
                _, first = np.unique(at[empty], return_index=True)
                won = empty[first]
                slots[at[won]] = values[won]
                taken += won.size
                done = hit.copy()
                done[won] = True
            moving = (current != _EMPTY) & ~hit
            at = np.where(moving, at + np.uint64(1), at)
            at[at == size] = 0
            left = ~done
            pending, at, values = pending[left], at[left], values[left]
        return taken

    def _grow(self, needed: int) -> None:
        old = self.slots[self.slots != _EMPTY]
        size = self.slots.size
        while needed > _FULL * size:
            size += size // 2  # not doubled: an estimate a little low (a CSV's) costs a little
        self.slots = np.zeros(size, np.uint64)
        if self.kernel is not None:
            self.kernel(self.slots, old, np.empty(old.size, np.uint8), np.zeros(1, np.uint8), True)
        else:
            self._insert(old, np.arange(old.size), np.zeros(old.size, bool))

    @property
    def nbytes(self) -> int:
        return self.slots.nbytes


class SeenUsccs:
    """Every valid USCC met so far (see the module's docstring)."""

    def __init__(self, expected_rows: int = 0, kernel: bool = True):
        self.expected, self.kernel = expected_rows, kernel
        self.sets: dict[int, CodeSet] = {}

    def add(self, keys: pa.Array, valid: np.ndarray) -> np.ndarray:
        """The rows of ``keys`` whose USCC was met before (on an earlier row of this batch or of
        an earlier one); every valid one is met after."""
        rows, head, code = uscc_codes(keys, valid, self.kernel)
        seen = np.zeros(rows.size, bool)
        heads = np.flatnonzero(np.bincount(head)) if rows.size else head
        for value in heads.tolist():
            mine = slice(None) if heads.size == 1 else np.flatnonzero(head == value)
            codes = self.sets.get(value)
            if codes is None:  # the first set met holds nearly every code: sized for the rows
                codes = self.sets[value] = CodeSet(self.expected if not self.sets else 0, self.kernel)
            seen[mine] = codes.add(code[mine])
        return rows[seen]

    @property
    def nbytes(self) -> int:
        return sum(codes.nbytes for codes in self.sets.values())


__all__ = ["CodeSet", "SeenUsccs", "uscc_codes"]
