"""Freed memory kept for reuse while the case table is judged (glibc only; elsewhere nothing).

The case stage and its writer make and drop hundreds of arrays of megabytes (a column of the
table, a take of it, a chunk of JSON). glibc hands each such block back to the kernel when it
is freed and maps a new one for the next array, which the kernel then zeroes page by page: at
2 M cases ~250,000 page faults, a third of the run's CPU time in the kernel (perf: clear_page).
Kept in the heap, the next array reuses the block (~130,000 faults, ~12% less CPU per run,
bench/cases.py, for ~20% more peak memory). Afterwards glibc's fixed defaults are set again
(its dynamic thresholds cannot be restored) and the kept memory is returned.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Iterator

log = logging.getLogger("ecorules.cases")

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_LARGEST_HEAP_BLOCK = 32 << 20  # glibc's largest mmap threshold on 64-bit systems
_DEFAULT_THRESHOLD = 128 << 10  # glibc's default for both
_LARGEST_INT = 2**31 - 1  # mallopt's value is a C int


def _glibc():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both; musl and macOS do not
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def reused_memory() -> Iterator[None]:
    libc = _glibc()
    if libc is None or not libc.mallopt(_M_MMAP_THRESHOLD, _LARGEST_HEAP_BLOCK):
        yield
        return
    libc.mallopt(_M_TRIM_THRESHOLD, _LARGEST_INT)  # (an int: kept up to 2 GiB of freed memory)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
        libc.malloc_trim(0)


__all__ = ["reused_memory"]
