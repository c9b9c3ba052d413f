"""One act, one fine (行政处罚法 art 29) over the fines of a part of the case table at once
(every case of an enterprise in one part, ``_parts.py``: an act never spans two parts).

The candidates are the fired FINE findings of valid cases. An act is the enterprise's cases
sharing an act_id; a case with an empty act_id is an act of its own. In each act the highest
amount is imposed, ties going to the smallest (policy, rule, case_id), the order
``engine/_group.one_act_one_fine`` uses; the other fines of the act are superseded by it.
Done by ``fastcalc/_cases.pyx`` (``supersede_part``), a part in one pass over its fired rows;
deductions and fees never compete.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from ecorules.fastcalc._cases import supersede_part, superseded_texts
from ecorules.rules import FindingKind
from ecorules.rules._arrow import string_buffers, strings

from .._ledger_money import FEN_PER_YUAN
from .._scored import finding_units


def one_act_one_fine(program, result, cases, scored: np.ndarray, parts: list[np.ndarray],
                     count: int) -> dict[int, pa.Array]:
    """行政处罚法 art 29 over the fired fines of ``result`` (the case program's outputs over
    the case rows ``scored``), a part of the enterprises at a time (``parts``: positions into
    ``scored``, every case of an enterprise in one part, ``_parts.by_enterprise``'s ``count``
    parts): per fine slot, per fired row in row order, "policy rule (case_id)" of the fine
    that supersedes it, null where it is imposed."""
    fine_slots = [k for k, slot in enumerate(program.findings) if slot.kind is FindingKind.FINE]
    if not fine_slots:
        return {}
    rule_row = {(p, r): i for i, (p, r) in enumerate(program.rules)}
    rule_of = np.array([rule_row[(program.findings[k].policy_key, program.findings[k].rule_id)] for k in fine_slots],
                       np.int64)
    # in fen: the fines of one act may round to different units (0.48 yuan < 1 yuan)
    fen_per = np.array([FEN_PER_YUAN // unit for unit in finding_units(program)], np.int64)
    names = sorted(range(len(program.findings)), key=lambda k: (program.findings[k].policy_key, program.findings[k].rule_id))
    slot_rank = np.empty(len(program.findings), np.int64)
    slot_rank[names] = np.arange(len(names))
    fired = np.ascontiguousarray(result.fired, np.uint8)
    amounts = np.ascontiguousarray(result.amounts, np.int64)
    acts = cases.act_code if cases.act_code is not None else np.zeros(0, np.int64)
    if cases.keys_ascending:  # a code is its case_id's rank: the texts are never read
        key_offsets, key_data = np.zeros(1, np.int32), np.zeros(1, np.uint8)
    else:
        key_offsets, key_data = string_buffers(cases.keys)
    owners = int(cases.enterprise.max(initial=0)) // count + 1
    beaten = [supersede_part(positions, fired, amounts, np.array(fine_slots, np.int64), rule_of, fen_per, slot_rank,
                             scored, cases.enterprise, acts, len(cases.acts) if cases.acts is not None else 0, owners, count, cases.key_code,
                             cases.keys_ascending, key_offsets, key_data)
              for positions in parts if positions.size]
    if beaten:
        slot, row, winner_slot, winner_row = (np.concatenate(a) for a in zip(*beaten, strict=True))
    else:
        slot = row = winner_slot = winner_row = np.zeros(0, np.int64)
    labels = string_buffers(strings([f"{finding.policy_key} {finding.rule_id}" for finding in program.findings]))
    keys = (key_offsets, key_data) if not cases.keys_ascending else string_buffers(cases.keys)
    # (every row scored, as most partitions are: ``scored`` is 0..n-1, a gather less)
    winner_key = cases.key_code[winner_row if scored.size == cases.n else scored[winner_row]]
    out = {}
    for k in fine_slots:
        mine = np.flatnonzero(slot == k)
        rows_fired, offsets, valid, data = superseded_texts(
            fired[rule_row[(program.findings[k].policy_key, program.findings[k].rule_id)]], row[mine], winner_slot[mine],
            winner_key[mine], *labels, *keys)
        out[k] = pa.Array.from_buffers(pa.string(), rows_fired, [None if valid is None else pa.py_buffer(valid),
                                                            pa.py_buffer(offsets), pa.py_buffer(data)],
                                       null_count=rows_fired - mine.size)
    return out


__all__ = ["one_act_one_fine"]
