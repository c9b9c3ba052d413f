"""One act, one fine (行政处罚法 art 29) over the fines of the whole case table at once.

The candidates are the fired FINE findings of valid cases. An act is the enterprise's cases
sharing an act_id; a case with an empty act_id is an act of its own. In each act the highest
amount is imposed, ties going to the smallest (policy, rule, case_id), the order
``engine/_group.one_act_one_fine`` uses; the other fines of the act are superseded by it.
Done with one sort by act and reductions per act; deductions and fees never compete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import numbers


@dataclass
class Fines:
    """The fines of a table, one entry each: the scored row, the finding slot, the amount."""

    row: np.ndarray  # int64, index into the scored rows
    slot: np.ndarray  # int64, finding slot of the case program
    amount: np.ndarray  # int64 yuan


def supersede(fines: Fines, act: np.ndarray, slot_rank: np.ndarray, keys: pa.Array,
              key_rank: np.ndarray | None = None) -> np.ndarray:
    """For each fine, the index (into ``fines``) of the fine that supersedes it, or -1.

    ``act``: an int64 act code per scored row (unique per row for a case of its own);
    ``slot_rank``: the rank of each slot's (policy, rule) in string order; ``keys``: the
    case_id text of each scored row; ``key_rank``, if known, an int64 per scored row ordered
    as its case_id text is.

    One sort by act; then per act the highest amount, among those the smallest slot rank,
    and only where that still ties (two cases fined under one rule for one act), the
    case_id texts of the tied fines are compared, so that millions of case_ids are never
    sorted as strings."""
    n = fines.row.size
    winner_of = np.full(n, -1, np.int64)
    if n < 2:
        return winner_of
    group = act[fines.row]
    order = np.argsort(group)  # unstable will do: ties are broken by the fine's index below
    grouped = group[order]
    first = np.ones(n, bool)
    first[1:] = grouped[1:] != grouped[:-1]
    starts = np.flatnonzero(first)
    segment = np.cumsum(first) - 1  # per sorted position, its act's number
    sizes = np.diff(np.append(starts, n))
    if not (sizes > 1).any():
        return winner_of
    amount = fines.amount[order]
    best = np.maximum.reduceat(amount, starts)
    rank = slot_rank[fines.slot[order]]
    rank = np.where(amount == best[segment], rank, np.iinfo(np.int64).max)
    best_rank = np.minimum.reduceat(rank, starts)
    candidate = rank == best_rank[segment]  # the highest amount, then the smallest (policy, rule)
    count = np.add.reduceat(candidate.astype(np.int64), starts)
    # an act's leader: its one candidate, else the candidate of the smallest case_id (then the
    # earliest fine); the first candidate in sorted order is the earliest fine of the act
    leader = np.full(starts.size, -1, np.int64)
    lone = np.flatnonzero(candidate & (count[segment] == 1))
    leader[segment[lone]] = order[lone]
    tied = np.flatnonzero(candidate & (count[segment] > 1))
    if tied.size:
        if key_rank is not None:
            case_rank = key_rank[fines.row[order[tied]]]
        else:
            texts = keys.take(pa.array(fines.row[order[tied]]))
            case_rank = numbers(pc.rank(texts, sort_keys="ascending", tiebreaker="min"))
        pick = np.lexsort((order[tied], case_rank, segment[tied]))
        firsts = np.ones(pick.size, bool)
        firsts[1:] = segment[tied][pick][1:] != segment[tied][pick][:-1]
        chosen = tied[pick[firsts]]
        leader[segment[chosen]] = order[chosen]
    mine = leader[segment]
    beaten = order != mine
    winner_of[order[beaten]] = mine[beaten]
    return winner_of


__all__ = ["Fines", "supersede"]
