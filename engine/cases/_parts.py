"""The scored cases in parts of about a million rows, every case of an enterprise in one part.

What looks across cases (the windowed roll-ups, one act one fine) looks only within one
enterprise, so it can be done a part at a time; the kernel scores rows independently, so any
part will do for it. A part's working arrays (sort keys, prefix sums, act groups, the kernel's
input columns) are then a few megabytes instead of the whole table's: at ten million cases the
whole-table arrays were 80-100 MB each, every one mapped afresh and zeroed page by page by the
kernel (a third of the run's CPU time in the kernel, and 1.1 GB of peak memory for one act one
fine alone), while blocks of a part's size are reused by the allocator from one part to the next.
"""

from __future__ import annotations

import numpy as np

PART_ROWS = 1 << 20  # int64 arrays of 8 MB: under glibc's largest heap block (32 MB), so reused


def by_enterprise(enterprise: np.ndarray, part_rows: int | None = None) -> tuple[list[np.ndarray], int]:
    """Positions 0..n-1 of ``enterprise`` (an index >= 0 per position) in parts, and the
    number of parts ``p``: part ``i`` holds the positions whose enterprise is ``i`` modulo ``p``,
    ascending. Within a part ``enterprise // p`` numbers its enterprises densely (same
    residue), which keeps sort keys small."""
    n = enterprise.size
    count = max(1, -(-n // (part_rows or PART_ROWS)))
    if count == 1:
        return [np.arange(n, dtype=np.int64)], 1
    return grouped((enterprise % count).astype(np.uint16 if count < 1 << 16 else np.int64), count), count


def grouped(part: np.ndarray, count: int) -> list[np.ndarray]:
    """Per part number 0..count-1, the positions of ``part`` holding it, ascending."""
    order = np.argsort(part, kind="stable")  # a radix sort of small part numbers: linear
    bounds = np.cumsum(np.bincount(part, minlength=count))[:-1]
    return np.split(order.astype(np.int64, copy=False), bounds)


def in_rows(n: int, part_rows: int | None = None) -> list[slice]:
    """Consecutive slices of 0..n-1 of at most ``part_rows`` (the kernel's parts)."""
    step = part_rows or PART_ROWS  # read when called: a test makes the parts small
    return [slice(start, min(n, start + step)) for start in range(0, n, step)] or [slice(0, 0)]


__all__ = ["PART_ROWS", "by_enterprise", "grouped", "in_rows"]
