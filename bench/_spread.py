"""How far a bench's median can be trusted: its quartiles, its range, and an interval for it.

On a machine shared by other jobs, round-to-round noise is larger than most changes, and a
median of five rounds alone does not say whether 0.81x is above 0.8x. The interval given
here for the median is the distribution-free one of order statistics: the k-th smallest and
k-th largest of n rounds enclose the true median with probability 1 - 2 P(Binomial(n, 1/2) < k),
whatever the noise's shape, as long as the rounds are independent (alternated runs, each a
process of its own). It needs no more than the rounds themselves, and says its own coverage:
with 5 rounds the widest interval (min to max) covers 94%, with 9 rounds the 2nd to 8th value
covers 96%, so more rounds narrow it rather than raise a number of doubtful meaning.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median_interval(values: Sequence[float], coverage: float = 0.9) -> tuple[float, float, float]:
    """(low, high, exact coverage) of the narrowest order-statistic interval for the median of
    ``values`` that covers at least ``coverage``; fewer rounds than that needs: min to max, with
    the coverage they do give (3 rounds: 75%)."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        raise ValueError("no values")

    def covered(k: int) -> float:  # of [x_(k), x_(n-k+1)], k from 1
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= (n + 1) // 2 and covered(k + 1) >= coverage:
        k += 1
    return ordered[k - 1], ordered[n - k], covered(k)


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles (the middle half of the rounds); one value: itself twice."""
    if len(values) < 2:
        return values[0], values[0]
    first, _, third = statistics.quantiles(values, n=4, method="inclusive")
    return first, third


def described(values: Sequence[float], target: float | None = None) -> str:
    """"0.83 (middle half 0.80-0.85, all 0.76-0.88; median within 0.78-0.86 at 94%[; 7 of 9 >= 0.8])"."""
    low, high, cover = median_interval(values)
    first, third = quartiles(values)
    text = (f"{statistics.median(values):.3f} (middle half {first:.3f}-{third:.3f}, all {min(values):.3f}-"
            f"{max(values):.3f}; median within {low:.3f}-{high:.3f} at {cover:.0%}")
    if target is not None:
        text += f"; {sum(v >= target for v in values)} of {len(values)} rounds >= {target:g}"
    return text + ")"


__all__ = ["described", "median_interval", "quartiles"]
