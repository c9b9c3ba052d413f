"""One act, one fine (行政处罚法 art 29) over the fines of the whole case table at once.

The candidates are the fired FINE findings of valid cases. An act is the enterprise's cases
sharing an act_id; a case with an empty act_id is an act of its own. In each act the highest
amount is imposed, ties going to the smallest (policy, rule, case_id), the order
``engine/_group.one_act_one_fine`` uses; the other fines of the act are superseded by it.
Done with one ``np.lexsort``; deductions and fees never compete.
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


def supersede(fines: Fines, act: np.ndarray, slot_rank: np.ndarray, keys: pa.Array) -> np.ndarray:
    """For each fine, the index (into ``fines``) of the fine that supersedes it, or -1.

    ``act``: an int64 act code per scored row (unique per row for a case of its own);
    ``slot_rank``: the rank of each slot's (policy, rule) in string order; ``keys``: the
    case_id text of each scored row."""
    n = fines.row.size
    winner_of = np.full(n, -1, np.int64)
    if n < 2:
        return winner_of
    group = act[fines.row]
    # the case_id's rank among the candidates' case_ids, in string (code point) order
    case_rank = numbers(pc.rank(keys.take(pa.array(fines.row)), sort_keys="ascending", tiebreaker="min"))
    order = np.lexsort((np.arange(n), case_rank, slot_rank[fines.slot], -fines.amount, group))
    grouped = group[order]
    first = np.ones(n, bool)
    first[1:] = grouped[1:] != grouped[:-1]
    leader = order[np.maximum.accumulate(np.where(first, np.arange(n), 0))]
    beaten = order[~first]
    winner_of[beaten] = leader[~first]
    return winner_of


__all__ = ["Fines", "supersede"]
