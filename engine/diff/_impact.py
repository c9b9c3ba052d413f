"""The impact of a proposed policy set on a registry: both sets scored in one pass, compared.

Each batch of the registry is read once and scored by both compiled programs (the fastcalc
kernel); everything that concerns all rows (totals per district, per rule and per list, which
rows changed) is then computed with a few vectorized passes over the kernel's output arrays.
Only the rows whose outcome differs are kept (their registry columns and the per-rule figures
on both sides), and only those that are shown are ever turned into Python objects. That is
what keeps the diff within a small multiple of one scoring pass on a registry of millions.

Findings, rules and sanctions of the two programs are paired by ``(policy id, rule id, ...)``,
not by ``id@version``: a draft that is a new version of a regulation compares rule by rule
with the version in force today. An outcome *changes* when a finding of a paired slot
appears, disappears or changes its amount, or any sanction differs. A finding is where its
rule fired, so one of 0 yuan that appears is a change (``ecorules explain`` shows it) though
no yuan move; rules whose findings and sanctions are unchanged are not "responsible".

Figures are over the rows that both sets accept (``rows_compared``); rows either set rejects
are counted apart, never silently folded into zeros. Amounts are exact int64 yuan throughout,
or, where a rule of either side rounds to the fen, int64 fen (every slot's amounts and the
row totals scaled to fen as each batch is scored), shown as exact two-place Decimals of yuan.
The result types are in ``_impact_types.py``; keeping and building the changed rows is
``_changed_rows.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import Policy, PolicySet

from .._ledger_money import FEN, FEN_PER_YUAN, YUAN, in_yuan
from .._scored import finding_units
from ._changed_rows import MostChanged, materialize
from ._impact_types import (
    DISTRICT,
    NO_DISTRICT,
    ChangedEnterprise,
    DistrictImpact,
    Impact,
    ListImpact,
    RuleChange,
    RuleImpact,
    RuleInfo,
)

Key = tuple  # (policy id, rule id[, finding index | list id])


def _policy_id(policy_key: str) -> str:
    return policy_key.rsplit("@", 1)[0]


class _Side:
    """One compiled program and how its output rows map onto the paired keys."""

    def __init__(self, program, policies: PolicySet, as_of: dt.date):
        self.program = program
        self.finding_keys = [(_policy_id(p), r, int(i)) for p, r, i, *_ in program.findings]
        rule_row = {(p, r): k for k, (p, r) in enumerate(program.rules)}
        self.finding_rules = [rule_row[(p, r)] for p, r, *_ in program.findings]  # row of ``fired``
        self.sanction_keys = [(_policy_id(p), r, lst) for p, r, lst in program.sanctions]
        self.rule_keys = [(_policy_id(p), r) for p, r in program.rules]
        self.info: dict[Key, RuleInfo] = {}
        self.list_titles: dict[str, str] = {}
        self.facts = policies.facts
        for policy in policies:
            if policy.in_force(as_of):
                for rule in policy.rules:
                    self.info[(policy.id, rule.id)] = _rule_info(policy, rule)
            for list_id, declared in policy.lists.items():
                self.list_titles.setdefault(list_id, declared.title)


def _rule_info(policy: Policy, rule) -> RuleInfo:
    kind = rule.findings[0].kind.value if rule.findings else None
    reads = tuple(name for name in rule.reads() if name in policy.facts)
    parameters = tuple(name for name in rule.reads() if name in policy.parameters)
    return RuleInfo(policy.key, rule.title, kind, rule.citation, rule.condition_text.strip(), reads, parameters)


def _slots(keys: Sequence[Key], side_keys: Sequence[Key]) -> list[list[int]]:
    """For each paired key, the slots of one side that hold it (none, one, or one per version)."""
    where: dict[Key, list[int]] = {}
    for index, key in enumerate(side_keys):
        where.setdefault(key, []).append(index)
    return [where.get(key, []) for key in keys]


def _gather(matrix: np.ndarray, slots: list[int], n: int) -> np.ndarray:
    """The paired key's row: a view of the one slot holding it, a sum of several, or zeros."""
    if not slots:
        return np.zeros(n, matrix.dtype)
    if len(slots) == 1:
        return matrix[slots[0]]
    return matrix[slots].sum(axis=0, dtype=matrix.dtype)


class _Accumulator:
    """Running sums over batches, and the rows that changed, kept columnar."""

    def __init__(self, base: _Side, proposed: _Side, limit: int):
        units = (finding_units(base.program), finding_units(proposed.program))
        # in fen where either side has a finding in fen: each slot's factor to fen, per side
        self.unit = FEN if any(u != 1 for side in units for u in side) else YUAN
        self.to_fen = None if self.unit == YUAN else tuple(
            np.array([FEN_PER_YUAN // u for u in side], np.int64)[:, None] for side in units)
        self.finding_keys = list(dict.fromkeys(base.finding_keys + proposed.finding_keys))
        self.sanction_keys = list(dict.fromkeys(base.sanction_keys + proposed.sanction_keys))
        self.rule_keys = list(dict.fromkeys(base.rule_keys + proposed.rule_keys))
        self.lists = list(dict.fromkeys(k[2] for k in self.sanction_keys))
        self.slots = {
            "findings": (_slots(self.finding_keys, base.finding_keys), _slots(self.finding_keys, proposed.finding_keys)),
            "sanctions": (_slots(self.sanction_keys, base.sanction_keys), _slots(self.sanction_keys, proposed.sanction_keys)),
            "rules": (_slots(self.rule_keys, base.rule_keys), _slots(self.rule_keys, proposed.rule_keys)),
        }
        self.list_slots = [[i for i, k in enumerate(self.sanction_keys) if k[2] == lst] for lst in self.lists]
        # per paired finding key, the rows of ``fired`` on each side that say where it exists
        fb, fp = self.slots["findings"]
        self.finding_fired = ([[base.finding_rules[s] for s in slots] for slots in fb],
                              [[proposed.finding_rules[s] for s in slots] for slots in fp])
        self.rows_in = self.rows_compared = self.rejected_base = self.rejected_proposed = self.rejected_only_proposed = 0
        n_f, n_r, n_l = len(self.finding_keys), len(self.rule_keys), len(self.lists)
        self.finding_sums = np.zeros((2, n_f), np.int64)
        self.fired_counts = np.zeros((2, n_r), np.int64)
        self.list_counts = np.zeros((4, n_l), np.int64)  # before, after, entered, left
        self.totals = np.zeros(2, np.int64)
        self.district_ids: dict[str, int] = {}
        # per district: before, after, rows owing before, rows owing after, rows changed
        self.district_sums = np.zeros((5, 0), np.int64)
        self.changed_count = 0
        self.kept = MostChanged(limit)

    def money(self, amount: int):
        """An amount of the accumulator's unit in yuan, exactly (int, or a Decimal of fen)."""
        return int(amount) if self.unit == YUAN else in_yuan(int(amount), FEN)

    def add(self, batch: pa.Table | pa.RecordBatch, rb, rp) -> None:
        n = batch.num_rows
        if self.to_fen is not None:  # the outputs are the accumulator's to change (reused buffers)
            for result, factors in zip((rb, rp), self.to_fen, strict=True):
                if len(factors):
                    np.multiply(result.amounts, factors, out=result.amounts)
                np.multiply(result.total_yuan, FEN_PER_YUAN // getattr(result, "total_unit", 1), out=result.total_yuan)
        self.rows_in += n
        valid_b = np.asarray(rb.valid).astype(bool, copy=False)
        valid_p = np.asarray(rp.valid).astype(bool, copy=False)
        both = valid_b & valid_p
        excluded = np.flatnonzero(~both)
        self.rows_compared += n - excluded.size
        self.rejected_base += n - int(np.count_nonzero(valid_b))
        self.rejected_proposed += n - int(np.count_nonzero(valid_p))
        self.rejected_only_proposed += int(np.count_nonzero(valid_b & ~valid_p))
        if excluded.size:  # few: outputs of rows not compared count as nothing, on both sides
            for result in (rb, rp):
                for matrix in (result.fired, result.amounts, result.sanctions):
                    matrix[:, excluded] = 0
                result.total_yuan[excluded] = 0

        # Paired slots on both sides, each a row of the per-key matrices (views when 1:1).
        fb, fp = self.slots["findings"]
        amounts = [(_gather(rb.amounts, b, n), _gather(rp.amounts, p, n)) for b, p in zip(fb, fp, strict=True)]
        sb, sp = self.slots["sanctions"]
        flags = [(_gather(rb.sanctions, b, n) != 0, _gather(rp.sanctions, p, n) != 0) for b, p in zip(sb, sp, strict=True)]
        present = [(_gather(rb.fired, b, n) != 0, _gather(rp.fired, p, n) != 0)
                   for b, p in zip(*self.finding_fired, strict=True)]
        self.finding_sums += [[int(a.sum()) for a, _ in amounts], [int(a.sum()) for _, a in amounts]]
        rbk, rpk = self.slots["rules"]
        for index, (b, p) in enumerate(zip(rbk, rpk, strict=True)):
            self.fired_counts[0, index] += sum(int(np.count_nonzero(rb.fired[slot])) for slot in b)
            self.fired_counts[1, index] += sum(int(np.count_nonzero(rp.fired[slot])) for slot in p)
        total_b = np.asarray(rb.total_yuan)
        total_p = np.asarray(rp.total_yuan)
        self.totals += (int(total_b.sum()), int(total_p.sum()))

        changed = np.zeros(n, bool)
        for before, after in amounts:
            changed |= before != after
        for before, after in present:  # a 0-yuan finding appearing or going moves no yuan
            changed |= before != after
        for before, after in flags:
            changed |= before != after
        for index, slots in enumerate(self.list_slots):
            on_b, on_p = _any(flags, slots, 0, n), _any(flags, slots, 1, n)
            self.list_counts[:, index] += (
                np.count_nonzero(on_b), np.count_nonzero(on_p),
                np.count_nonzero(on_p & ~on_b), np.count_nonzero(on_b & ~on_p),
            )
        rows = np.flatnonzero(changed)
        self.changed_count += rows.size
        owing = np.flatnonzero((total_b != 0) | (total_p != 0))
        before, after = total_b[owing], total_p[owing]
        self._add_districts(batch, owing, (before, after, before != 0, after != 0), range(4))
        self._add_districts(batch, rows, (np.ones(rows.size, np.int64),), (4,))
        if rows.size:
            rows = self.kept.candidates(batch, rows, total_p[rows] - total_b[rows])
            self.kept.add(
                batch.take(pa.array(rows)),
                total=np.stack((total_b[rows], total_p[rows])),
                amounts=np.array([(b[rows], p[rows]) for b, p in amounts], np.int64).reshape(len(amounts), 2, rows.size),
                present=np.array([(b[rows], p[rows]) for b, p in present], bool).reshape(len(present), 2, rows.size),
                flags=np.array([(b[rows], p[rows]) for b, p in flags], bool).reshape(len(flags), 2, rows.size),
                fired=self._fired_rows(rb, rp, rows),
            )

    def _fired_rows(self, rb, rp, rows: np.ndarray) -> np.ndarray:
        rbk, rpk = self.slots["rules"]
        fired = np.zeros((len(self.rule_keys), 2, rows.size), bool)
        for index, (b, p) in enumerate(zip(rbk, rpk, strict=True)):
            for slot in b:
                fired[index, 0] |= rb.fired[slot][rows].astype(bool)
            for slot in p:
                fired[index, 1] |= rp.fired[slot][rows].astype(bool)
        return fired

    def _add_districts(self, batch, rows: np.ndarray, values, targets) -> None:
        """Add ``values`` (one array per target row of district_sums) by the rows' district."""
        if not rows.size:
            return
        codes = self._district_codes(batch, rows)
        missing = len(self.district_ids) - self.district_sums.shape[1]
        if missing > 0:
            self.district_sums = np.pad(self.district_sums, ((0, 0), (0, missing)))
        for target, value in zip(targets, values, strict=True):
            np.add.at(self.district_sums[target], codes, value.astype(np.int64, copy=False))

    def _district_codes(self, batch: pa.RecordBatch, rows: np.ndarray) -> np.ndarray:
        if DISTRICT not in batch.schema.names:
            names, indices = pa.array([NO_DISTRICT]), np.zeros(rows.size, np.int64)
        else:
            column = batch.column(DISTRICT).take(pa.array(rows))
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            encoded = pc.fill_null(pc.cast(column, pa.string()), NO_DISTRICT).dictionary_encode()
            names, indices = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
        lookup = np.array([self.district_ids.setdefault(name, len(self.district_ids)) for name in names.to_pylist()], np.int64)
        return lookup[indices]


def _any(flags: list[tuple[np.ndarray, np.ndarray]], slots: list[int], side: int, n: int) -> np.ndarray:
    """Rows on a list on one side: any of the list's sanction slots."""
    if len(slots) == 1:
        return flags[slots[0]][side]
    on = np.zeros(n, bool)
    for slot in slots:
        on |= flags[slot][side]
    return on


def _kernel() -> Callable:
    """The fastcalc kernel's compiler (imported late: it is a compiled extension)."""
    from ecorules.fastcalc import compile_program

    return compile_program


def compute_impact(
    base: PolicySet,
    proposed: PolicySet,
    batches: Iterable[pa.RecordBatch],
    as_of: dt.date,
    *,
    limit: int = 10_000,
    domain: str = "enterprise",
    threads: int = 1,
    compile_program: Callable | None = None,
) -> Impact:
    """Score ``batches`` under both sets (one pass) and compare; keep ``limit`` changed rows.

    ``compile_program`` defaults to the fastcalc kernel's; the tests may pass another with
    the same interface.
    """
    compile_program = compile_program or _kernel()
    base, proposed = base.for_domain(domain), proposed.for_domain(domain)
    sides = (
        _Side(compile_program(base, domain=domain), base, as_of),
        _Side(compile_program(proposed, domain=domain), proposed, as_of),
    )
    acc = _Accumulator(*sides, limit)
    previous: list[Any] = [None, None]
    for batch in batches:
        # The previous batch's outputs are reused (the accumulator keeps copies only): no
        # page faults for fresh arrays on every batch.
        previous = [_score(side.program, batch, as_of, threads, out) for side, out in zip(sides, previous, strict=True)]
        acc.add(batch, *previous)
    return _finish(acc, sides, as_of, limit)


def _score(program, batch, as_of: dt.date, threads: int, out):
    if out is None:
        return program.score(batch, as_of=as_of, threads=threads)
    return program.score(batch, as_of=as_of, threads=threads, out=out)


def _finish(acc: _Accumulator, sides: tuple[_Side, _Side], as_of: dt.date, limit: int) -> Impact:
    base, proposed = sides
    rules = []
    for index, (policy_id, rule_id) in enumerate(acc.rule_keys):
        finding_rows = [i for i, key in enumerate(acc.finding_keys) if key[:2] == (policy_id, rule_id)]
        rules.append(RuleImpact(
            policy_id, rule_id,
            acc.money(acc.finding_sums[0, finding_rows].sum()), acc.money(acc.finding_sums[1, finding_rows].sum()),
            int(acc.fired_counts[0, index]), int(acc.fired_counts[1, index]),
            base.info.get((policy_id, rule_id)), proposed.info.get((policy_id, rule_id)),
        ))
    titles = {**proposed.list_titles, **base.list_titles}
    lists = tuple(
        ListImpact(list_id, titles.get(list_id, list_id), *map(int, acc.list_counts[:, index]))
        for index, list_id in enumerate(acc.lists)
    )
    names = list(acc.district_ids)
    districts = sorted(
        (DistrictImpact(name, acc.money(acc.district_sums[0, index]), acc.money(acc.district_sums[1, index]),
                        *map(int, acc.district_sums[2:, index])) for index, name in enumerate(names)),
        key=lambda d: (-abs(d.difference_yuan), -d.changed, d.district),
    )
    kept = acc.kept.result()
    facts = {**proposed.facts, **base.facts}
    enterprises = materialize(acc, *kept, facts) if kept is not None else ()
    return Impact(
        as_of=as_of, rows_in=acc.rows_in, rows_compared=acc.rows_compared,
        rejected_base=acc.rejected_base, rejected_proposed=acc.rejected_proposed,
        rejected_only_proposed=acc.rejected_only_proposed,
        before_yuan=acc.money(acc.totals[0]), after_yuan=acc.money(acc.totals[1]), unit=acc.unit,
        districts=tuple(districts), rules=tuple(rules), lists=lists,
        changed_count=acc.changed_count,
        changed=tuple(enterprises),
    )


__all__ = [
    "ChangedEnterprise", "DistrictImpact", "Impact", "ListImpact", "RuleChange", "RuleImpact",
    "RuleInfo", "compute_impact",
]
