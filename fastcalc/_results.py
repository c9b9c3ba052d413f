"""What a call of ``Program.score`` returns, and the per-payer roll-ups it is built from.

Separate from ``_program.py`` because whoever reads results needs only these types, not how
a batch is scored: ``ScoreResult`` (row outputs, rejects, slots, roll-ups) and ``PayerTotal``.
The roll-up helpers that turn the kernel's per-thread accumulators into exact Python sums
(``_Rollups``, ``_case_counts``, ``_exact_sum``) and order the rejects (``_sorted_rejects``)
live here too, next to the fields they fill.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import numpy as np
from ecorules.rules._arrow import distinct_sorted
from ecorules.rules._money import UNITS
from ecorules.rules._schema import ENTERPRISE
from ecorules.rules._types import INT64_MAX

from . import _opcodes as opc
from ._compiled import CompiledProgram, FindingSlot, RuleSlot, SanctionSlot

_UNIT_NAMES = {count: name for name, count in UNITS.items()}


@attrs.frozen
class PayerTotal:
    """Sums of one finding slot per payer: ``yuan[code]`` is owed by ``labels[code]``, in
    whole units of the slot (``ScoreResult.finding_units``: yuan, or fen)."""

    slot: int  # index into ScoreResult.finding_slots / Program.findings
    payer: str  # the fact naming the payer
    labels: tuple[str, ...]  # enum choices, or the batch dictionary of a text fact
    yuan: np.ndarray  # int64, one per label


@attrs.frozen(eq=False)
class ScoreResult:
    """What one call of :meth:`Program.score` found, row by row and rolled up.

    All arrays are numpy. Rejected rows (``valid`` false) have zero in every output and are
    never counted; each of their problems is one entry of the parallel ``reject_*`` arrays,
    sorted by row then column, with the wording of ``rules/_records.py``.
    """

    n_rows: int
    as_of: dt.date
    valid: np.ndarray  # bool (n_rows,)
    reject_rows: np.ndarray  # int64 row index in the batch
    reject_columns: np.ndarray  # object array of str
    reject_values: np.ndarray  # object array of str: the raw value as text, "" for null
    reject_reasons: np.ndarray  # object array of str
    fired: np.ndarray  # uint8 (n_rules, n_rows)
    amounts: np.ndarray  # int64 (n_findings, n_rows), whole units of each slot (finding_units)
    sanctions: np.ndarray  # uint8 (n_sanctions, n_rows)
    # int64 (n_rows,), in total_unit (whole yuan unless some slot rounds to the fen):
    total_yuan: np.ndarray  # payable findings (every kind but reward)
    rewards_yuan: np.ndarray  # findings of kind reward
    payer_totals: tuple[PayerTotal, ...]  # slots with a text/enum payer
    enterprise_totals: dict  # slot -> yuan, for slots paid by the enterprise itself
    warnings: tuple[str, ...]  # rules not applied on as_of, and why
    rule_slots: tuple[RuleSlot, ...]
    finding_slots: tuple[FindingSlot, ...]
    sanction_slots: tuple[SanctionSlot, ...]
    case_counts: dict  # payer label -> rows where a payable finding's rule fired (0 yuan too)
    # int64 (n_dates, n_rows): list entries' from:/until: as day numbers since 1970-01-01
    # where their rule fired (see CompiledProgram.sanction_dates, lift_dates)
    dates: np.ndarray | None = None
    # per finding slot: how many of its unit make a yuan (1 yuan, 100 fen); ``amounts``,
    # ``PayerTotal.yuan`` and ``enterprise_totals`` of the slot are whole numbers of that unit
    finding_units: tuple[int, ...] = ()
    total_unit: int = 1  # the unit of total_yuan and rewards_yuan (the finest of the slots')
    # the checks (CheckSlot: policy, check, column, reason) and, uint8 (n_checks, n_rows), 1
    # where a row otherwise accepted fails one: it is rejected, an entry of reject_* per check
    check_slots: tuple = ()
    checks_failed: np.ndarray | None = None

    def unit_of(self, slot: int) -> int:
        return self.finding_units[slot] if self.finding_units else 1

    @property
    def units(self) -> tuple[str, ...]:
        """Per finding slot, the unit its ``amounts`` count (``yuan`` or ``fen``), by name,
        as the results database records it (``finding_slots.unit``)."""
        return tuple(_UNIT_NAMES[self.unit_of(slot)] for slot in range(len(self.finding_slots)))

    @property
    def total_unit_name(self) -> str:
        """The unit of ``total_yuan`` and ``rewards_yuan`` by name: fen if any slot is."""
        return _UNIT_NAMES[self.total_unit]

    def totals_by_payer(self) -> dict[str, int | Decimal]:
        """Yuan owed per payer label over all payable slots, for labels that owe something
        (``"enterprise"`` for slots paid by the subjects themselves): exact, an int where
        every slot is in yuan, else a Decimal with the fen."""
        totals: dict[str, int | Decimal] = {}
        for part in self.payer_totals:
            if not self.finding_slots[part.slot].kind.payable:
                continue
            for label, units in zip(part.labels, part.yuan.tolist(), strict=True):
                if units:
                    totals[label] = totals.get(label, 0) + _in_yuan(units, self.unit_of(part.slot))
        for slot, units in self.enterprise_totals.items():
            if self.finding_slots[slot].kind.payable and units:
                totals[ENTERPRISE] = totals.get(ENTERPRISE, 0) + _in_yuan(units, self.unit_of(slot))
        return totals

    def case_counts_by_payer(self) -> dict[str, int]:
        """Rows with at least one payable finding booked to each label (a row counts once
        per label even when several of its findings name it).

        A finding is there because its rule fired, whatever its amount: a 0-yuan finding is
        a case, as ``ecorules explain`` shows it, so cases and findings count the same rows."""
        return dict(self.case_counts)


def _in_yuan(units: int, per_yuan: int) -> int | Decimal:
    return int(units) if per_yuan == 1 else Decimal(int(units)) / per_yuan


class _Rollups:
    """Per-payer sums and case counts, merged over segments by label, exactly."""

    def __init__(self, c: CompiledProgram):
        self.c = c
        self.sums: dict[int, dict] = {}  # slot -> label -> yuan (Python int)
        self.labels: dict[int, list] = {}  # slot -> labels in first-seen order
        self.counts: dict[str, int] = {}

    def add(self, sums: np.ndarray, layout: list, columns: dict, outputs: dict) -> None:
        per_group = []
        for group, labels, slot_offsets, count_offset in layout:
            n_codes = len(labels)
            for f, offset in zip(group.slots, slot_offsets, strict=True):
                target = self.sums.setdefault(f, {})
                order = self.labels.setdefault(f, [])
                for label, yuan in zip(labels, sums[offset: offset + n_codes].tolist(), strict=True):
                    if label not in target:
                        target[label] = 0
                        order.append(label)
                    target[label] += yuan
            per_group.append((group, labels, sums[count_offset: count_offset + n_codes]))
        for label, count in _case_counts(per_group, columns, outputs, self.c.finding_rules).items():
            self.counts[label] = self.counts.get(label, 0) + count

    def result(self):
        payer_totals, enterprise_totals = [], {}
        for f, slot in enumerate(self.c.findings):
            if f not in self.sums:
                continue
            yuan = [self.sums[f][label] for label in self.labels[f]]
            if any(v > INT64_MAX for v in yuan):
                raise OverflowError(opc.ERROR_MESSAGES[opc.ERR_OVERFLOW])
            if slot.payer == ENTERPRISE:
                enterprise_totals[f] = yuan[0]
            else:
                payer_totals.append(PayerTotal(f, slot.payer, tuple(self.labels[f]), np.array(yuan, np.int64)))
        return tuple(payer_totals), enterprise_totals, dict(self.counts)


def _case_counts(per_group: list, columns: dict, outputs: dict, finding_rules: tuple[int, ...]) -> dict[str, int]:
    """Cases per label: rows where the rule of a payable slot fired (see ``rollup`` in
    _kernel.pyx). Groups whose labels overlap (two text facts naming the same payer) are
    merged exactly, so that a row counts once per label."""
    seen: dict[str, int] = {}
    overlap = False
    for _, labels, _ in per_group:
        for label in labels:
            seen[label] = seen.get(label, 0) + 1
            overlap = overlap or seen[label] > 1
    counts: dict[str, int] = {}
    if not overlap:
        for _, labels, group_counts in per_group:
            for label, count in zip(labels, group_counts.tolist(), strict=True):
                if count:
                    counts[label] = count
        return counts
    labels_all = list(seen)
    global_id = {label: i for i, label in enumerate(labels_all)}
    keys = []
    for group, labels, _ in per_group:
        payable = [f for f, p in zip(group.slots, group.payable, strict=True) if p]
        if not payable:
            continue
        rules = [finding_rules[f] for f in payable]
        rows = np.flatnonzero(outputs["fired"][rules].any(axis=0))
        if not rows.size:
            continue  # (its payer column may not even be checked: no rule of it applies)
        codes = np.zeros(rows.size, np.int64) if group.fact is None else columns[group.fact].values[rows].astype(np.int64)
        ids = np.array([global_id[label] for label in labels], np.int64)[codes]
        keys.append(rows.astype(np.int64) * len(labels_all) + ids)
    if keys:
        unique = distinct_sorted(np.concatenate(keys))
        per_label = np.bincount(unique % len(labels_all), minlength=len(labels_all))  # counts, no weights
        for label, count in zip(labels_all, per_label.tolist(), strict=True):
            if count:
                counts[label] = count
    return counts


def _sorted_rejects(parts: list, names: tuple[str, ...]):
    if not parts:
        empty = np.empty(0, dtype=object)
        return np.empty(0, np.int64), empty, empty.copy(), empty.copy()
    rows = np.concatenate([p[1] for p in parts])
    positions = np.concatenate([np.full(p[1].size, p[0], np.int64) for p in parts])
    order = np.lexsort((positions, rows))
    return (rows[order], np.array(names, dtype=object)[positions[order]],
            np.concatenate([p[2] for p in parts])[order], np.concatenate([p[3] for p in parts])[order])


def _exact_sum(acc: np.ndarray) -> np.ndarray:
    """Sum the per-thread accumulators in int64, refusing any overflow (no float anywhere)."""
    total = acc[0].copy()
    for row in acc[1:]:
        result = total + row
        if (((total ^ result) & (row ^ result)) < 0).any():
            raise OverflowError(opc.ERROR_MESSAGES[opc.ERR_OVERFLOW])
        total = result
    return total


__all__ = ["PayerTotal", "ScoreResult"]
