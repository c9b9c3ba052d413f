"""One act, one fine (行政处罚法 art 29) over the fines of a part of the case table at once
(every case of an enterprise in one part, ``_parts.py``: an act never spans two parts).

The candidates are the fired FINE findings of valid cases. An act is the enterprise's cases
sharing an act_id; a case with an empty act_id is an act of its own. In each act the highest
amount is imposed, ties going to the smallest (policy, rule, case_id), the order
``engine/_group.one_act_one_fine`` uses; the other fines of the act are superseded by it.
Done with reductions per act (``ufunc.at``, ``bincount``); deductions and fees never compete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import from_numbers, numbers


@dataclass
class Fines:
    """The fines of a table, one entry each: the scored row, the finding slot, the amount."""

    row: np.ndarray  # int64, index into the scored rows
    slot: np.ndarray  # int64, finding slot of the case program
    amount: np.ndarray  # int64 fen (findings of one act may round to different units)


def supersede(fines: Fines, act: np.ndarray, slot_rank: np.ndarray, keys: pa.Array, key_code: np.ndarray,
              key_rank: np.ndarray | None = None) -> np.ndarray:
    """For each fine, the index (into ``fines``) of the fine that supersedes it, or -1.

    Per fine (aligned with ``fines``, so that the caller may pass the fines of a part of the
    table with their own arrays): ``act``, an int64 act code (the fines of a case of its own
    share one, no other case's); ``key_code``, the index of its case_id in ``keys`` (case_id
    texts); ``key_rank``, if known, an int64 ordered as its case_id text is. ``slot_rank``:
    the rank of each slot's (policy, rule) in string order.

    Per act the highest amount, among those the smallest slot rank, and only where that
    still ties (two cases fined under one rule for one act), the case_id texts of the tied
    fines are compared, so that millions of case_ids are never sorted as strings. The acts
    are numbered densely (``_dense``) and reduced with ``ufunc.at`` and ``bincount``: no sort
    of the fines, which took most of this step at ten million cases."""
    n = fines.row.size
    winner_of = np.full(n, -1, np.int64)
    if n < 2:
        return winner_of
    group, groups = _dense(act)
    if groups == n:  # every fine an act of its own
        return winner_of
    best = np.full(groups, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(best, group, fines.amount)
    rank = np.where(fines.amount == best[group], slot_rank[fines.slot], np.iinfo(np.int64).max)
    best_rank = np.full(groups, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(best_rank, group, rank)
    candidate = rank == best_rank[group]  # the highest amount, then the smallest (policy, rule)
    count = np.bincount(group[candidate], minlength=groups)
    # an act's leader: its one candidate, else the candidate of the smallest case_id, then
    # the earliest fine
    leader = np.full(groups, -1, np.int64)
    lone = np.flatnonzero(candidate & (count[group] == 1))
    leader[group[lone]] = lone
    tied = np.flatnonzero(candidate & (count[group] > 1))
    if tied.size:
        if key_rank is not None:
            case_rank = key_rank[tied]
        else:
            texts = keys.take(from_numbers(key_code[tied]))
            case_rank = numbers(pc.rank(texts, sort_keys="ascending", tiebreaker="min"))
        smallest = np.full(groups, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(smallest, group[tied], case_rank)
        tied = tied[case_rank == smallest[group[tied]]]
        first = np.full(groups, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(first, group[tied], tied)
        leader[group[tied]] = first[group[tied]]
    mine = leader[group]
    beaten = np.flatnonzero(mine != np.arange(n))
    winner_of[beaten] = mine[beaten]
    return winner_of


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """``codes`` renumbered 0..groups-1, equal codes equal: by offset where their range is
    small (a few acts per enterprise), else by a sort."""
    low, high = int(codes.min()), int(codes.max())
    if high - low < 4 * codes.size + 1024:
        dense = codes - low
        present = np.zeros(high - low + 1, bool)
        present[dense] = True
        number = np.cumsum(present) - 1
        return number[dense], int(number[-1]) + 1
    distinct, dense = np.unique(codes, return_inverse=True)
    return dense.astype(np.int64, copy=False), distinct.size


__all__ = ["Fines", "supersede"]
