"""The impact of a proposed policy set on a registry: both sets scored in one pass, compared.

Each batch of the registry is read once and scored by both compiled programs (the fastcalc
kernel); everything that concerns all rows (totals per district, per rule and per list, which
rows changed) is then computed with a few vectorized passes over the kernel's output arrays.
Only the rows whose outcome differs are kept (their registry columns and the per-rule figures
on both sides), and only those that are shown are ever turned into Python objects. That is
what keeps the diff within a small multiple of one scoring pass on a registry of millions.

Findings, rules and sanctions of the two programs are paired by ``(policy id, rule id, ...)``,
not by ``id@version``: a draft that is a new version of a regulation compares rule by rule
with the version in force today. An outcome *changes* when any finding amount or any
sanction of a paired slot differs; rules whose amount is unchanged are not "responsible".

Figures are over the rows that both sets accept (``rows_compared``); rows either set rejects
are counted apart, never silently folded into zeros. Amounts are exact int64 yuan throughout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import Citation, Fact, Policy, PolicySet, RecordError
from ecorules.rules._records import coerce

DISTRICT = "district"  # the registry column the impact is broken down by
NO_DISTRICT = "(无区县 none)"

Key = tuple  # (policy id, rule id[, finding index | list id])


def _policy_id(policy_key: str) -> str:
    return policy_key.rsplit("@", 1)[0]


@attrs.frozen
class RuleInfo:
    """What a reader needs to know about a rule on one side: its words and its clause."""

    policy: str  # id@version
    title: str
    kind: str | None  # the kind of its first finding; None for a sanction-only rule
    citation: Citation
    condition: str
    reads: tuple[str, ...]  # the registry facts its condition and amounts read
    parameters: tuple[str, ...]  # the parameters it reads


@attrs.frozen
class RuleImpact:
    policy: str  # policy id
    rule: str
    before_yuan: int
    after_yuan: int
    fired_before: int  # rows on which the rule fired
    fired_after: int
    base: RuleInfo | None  # None: the rule is not in force on that side
    proposed: RuleInfo | None

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


@attrs.frozen
class DistrictImpact:
    district: str
    before_yuan: int
    after_yuan: int
    enterprises_before: int  # rows with an amount owed
    enterprises_after: int
    changed: int  # rows whose outcome changed

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


@attrs.frozen
class ListImpact:
    list: str
    title: str
    before: int  # rows on the list
    after: int
    entered: int
    left: int


@attrs.frozen
class RuleChange:
    """One rule responsible for an enterprise's change: its figures on both sides."""

    policy: str
    rule: str
    before_yuan: int
    after_yuan: int
    fired_before: bool
    fired_after: bool
    lists_entered: tuple[str, ...]
    lists_left: tuple[str, ...]


@attrs.frozen
class ChangedEnterprise:
    uscc: str
    name: str | None
    district: str
    before_yuan: int
    after_yuan: int
    lists_entered: tuple[str, ...]
    lists_left: tuple[str, ...]
    rules: tuple[RuleChange, ...]
    facts: dict[str, Any]  # the registry row, as checked values (what the rules judged)

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


@attrs.frozen
class Impact:
    as_of: dt.date
    rows_in: int
    rows_compared: int
    rejected_base: int  # rows the base set rejects (bad USCC, missing field, ...)
    rejected_proposed: int
    rejected_only_proposed: int  # accepted today, rejected under the proposal
    before_yuan: int
    after_yuan: int
    districts: tuple[DistrictImpact, ...]  # by |difference| then name
    rules: tuple[RuleImpact, ...]  # in the order of the base program, then new rules
    lists: tuple[ListImpact, ...]
    changed_count: int
    changed: tuple[ChangedEnterprise, ...]  # the first `limit` by |difference|, then USCC
    rows_unreadable: int = 0  # rows the reader dropped before scoring (counted in rows_in)

    @property
    def difference_yuan(self) -> int:
        return self.after_yuan - self.before_yuan


class _Side:
    """One compiled program and how its output rows map onto the paired keys."""

    def __init__(self, program, policies: PolicySet, as_of: dt.date):
        self.program = program
        self.finding_keys = [(_policy_id(p), r, int(i)) for p, r, i, *_ in program.findings]
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

    def __init__(self, base: _Side, proposed: _Side):
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
        self.rows_in = self.rows_compared = self.rejected_base = self.rejected_proposed = self.rejected_only_proposed = 0
        n_f, n_r, n_l = len(self.finding_keys), len(self.rule_keys), len(self.lists)
        self.finding_sums = np.zeros((2, n_f), np.int64)
        self.fired_counts = np.zeros((2, n_r), np.int64)
        self.list_counts = np.zeros((4, n_l), np.int64)  # before, after, entered, left
        self.totals = np.zeros(2, np.int64)
        self.district_ids: dict[str, int] = {}
        self.district_sums = np.zeros((4, 0), np.int64)  # before, after, owing before, owing after
        self.changed_parts: list[dict[str, Any]] = []

    def add(self, batch: pa.RecordBatch, rb, rp) -> None:
        n = batch.num_rows
        self.rows_in += n
        valid_b = np.asarray(rb.valid).astype(bool, copy=False)
        valid_p = np.asarray(rp.valid).astype(bool, copy=False)
        both = valid_b & valid_p
        excluded = np.flatnonzero(~both)
        self.rows_compared += n - excluded.size
        self.rejected_base += n - int(np.count_nonzero(valid_b))
        self.rejected_proposed += n - int(np.count_nonzero(valid_p))
        self.rejected_only_proposed += int(np.count_nonzero(valid_b & ~valid_p))

        # Paired slots on both sides, each a row of the per-key matrices (views when 1:1).
        fb, fp = self.slots["findings"]
        amounts = [(_gather(rb.amounts, b, n), _gather(rp.amounts, p, n)) for b, p in zip(fb, fp, strict=True)]
        sb, sp = self.slots["sanctions"]
        flags = [(_gather(rb.sanctions, b, n) != 0, _gather(rp.sanctions, p, n) != 0) for b, p in zip(sb, sp, strict=True)]
        for index, (before, after) in enumerate(amounts):
            self.finding_sums[0, index] += _masked_sum(before, excluded)
            self.finding_sums[1, index] += _masked_sum(after, excluded)
        rbk, rpk = self.slots["rules"]
        for index, (b, p) in enumerate(zip(rbk, rpk, strict=True)):
            for side, (result, slots) in enumerate(((rb, b), (rp, p))):
                for slot in slots:
                    self.fired_counts[side, index] += _masked_sum(result.fired[slot], excluded, np.int64)
        total_b = np.asarray(rb.total_yuan)
        total_p = np.asarray(rp.total_yuan)
        self.totals += (_masked_sum(total_b, excluded), _masked_sum(total_p, excluded))

        changed = np.zeros(n, bool)
        for before, after in amounts:
            changed |= before != after
        on_lists = []
        for slots in self.list_slots:
            on_b = np.zeros(n, bool)
            on_p = np.zeros(n, bool)
            for slot in slots:
                on_b |= flags[slot][0]
                on_p |= flags[slot][1]
            on_lists.append((on_b, on_p))
        for before, after in flags:
            changed |= before != after
        if excluded.size:
            changed[excluded] = False
            for on_b, on_p in on_lists:
                on_b[excluded] = on_p[excluded] = False
        for index, (on_b, on_p) in enumerate(on_lists):
            self.list_counts[:, index] += (
                np.count_nonzero(on_b), np.count_nonzero(on_p),
                np.count_nonzero(on_p & ~on_b), np.count_nonzero(on_b & ~on_p),
            )
        self._add_districts(batch, total_b, total_p, both)
        rows = np.flatnonzero(changed)
        if rows.size:
            self.changed_parts.append({
                "table": batch.take(pa.array(rows)),
                "total": (total_b[rows], total_p[rows]),
                "amounts": np.array([(b[rows], p[rows]) for b, p in amounts], np.int64).reshape(len(amounts), 2, rows.size),
                "flags": np.array([(b[rows], p[rows]) for b, p in flags], bool).reshape(len(flags), 2, rows.size),
                "fired": self._fired_rows(rb, rp, rows),
            })

    def _fired_rows(self, rb, rp, rows: np.ndarray) -> np.ndarray:
        rbk, rpk = self.slots["rules"]
        fired = np.zeros((len(self.rule_keys), 2, rows.size), bool)
        for index, (b, p) in enumerate(zip(rbk, rpk, strict=True)):
            for slot in b:
                fired[index, 0] |= rb.fired[slot][rows].astype(bool)
            for slot in p:
                fired[index, 1] |= rp.fired[slot][rows].astype(bool)
        return fired

    def _add_districts(self, batch, total_b, total_p, both) -> None:
        owing = np.flatnonzero(((total_b != 0) | (total_p != 0)) & both)
        if not owing.size:
            return
        codes = self._district_codes(batch, owing)
        size = len(self.district_ids)
        if self.district_sums.shape[1] < size:
            self.district_sums = np.pad(self.district_sums, ((0, 0), (0, size - self.district_sums.shape[1])))
        before, after = total_b[owing], total_p[owing]
        for row, values in enumerate((before, after, (before != 0).astype(np.int64), (after != 0).astype(np.int64))):
            np.add.at(self.district_sums[row], codes, values)

    def _district_codes(self, batch: pa.RecordBatch, rows: np.ndarray) -> np.ndarray:
        if DISTRICT not in batch.schema.names:
            names, indices = pa.array([NO_DISTRICT]), np.zeros(rows.size, np.int64)
        else:
            column = pc.fill_null(pc.cast(batch.column(DISTRICT).take(pa.array(rows)), pa.string()), NO_DISTRICT)
            encoded = column.dictionary_encode()
            names, indices = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
        lookup = np.array([self.district_ids.setdefault(name, len(self.district_ids)) for name in names.to_pylist()], np.int64)
        return lookup[indices]


def _masked_sum(values: np.ndarray, excluded: np.ndarray, dtype=np.int64) -> int:
    """The sum of ``values`` over the rows not ``excluded`` (few): total minus their part."""
    total = int(values.sum(dtype=dtype))
    if excluded.size:
        total -= int(values[excluded].sum(dtype=dtype))
    return total


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
    acc = _Accumulator(*sides)
    for batch in batches:
        if isinstance(batch, pa.Table):
            for part in batch.to_batches():
                acc.add(part, *(side.program.score(part, as_of=as_of, threads=threads) for side in sides))
        else:
            acc.add(batch, *(side.program.score(batch, as_of=as_of, threads=threads) for side in sides))
    return _finish(acc, sides, as_of, limit)


def _finish(acc: _Accumulator, sides: tuple[_Side, _Side], as_of: dt.date, limit: int) -> Impact:
    base, proposed = sides
    rules = []
    for index, (policy_id, rule_id) in enumerate(acc.rule_keys):
        finding_rows = [i for i, key in enumerate(acc.finding_keys) if key[:2] == (policy_id, rule_id)]
        rules.append(RuleImpact(
            policy_id, rule_id,
            int(acc.finding_sums[0, finding_rows].sum()), int(acc.finding_sums[1, finding_rows].sum()),
            int(acc.fired_counts[0, index]), int(acc.fired_counts[1, index]),
            base.info.get((policy_id, rule_id)), proposed.info.get((policy_id, rule_id)),
        ))
    titles = {**proposed.list_titles, **base.list_titles}
    lists = tuple(
        ListImpact(list_id, titles.get(list_id, list_id), *map(int, acc.list_counts[:, index]))
        for index, list_id in enumerate(acc.lists)
    )
    changed_table, order, parts = _changed(acc)
    changed_by_district: dict[str, int] = {}
    if changed_table is not None and DISTRICT in changed_table.schema.names:
        counts = pc.value_counts(pc.fill_null(pc.cast(changed_table.column(DISTRICT), pa.string()), NO_DISTRICT))
        changed_by_district = {item["values"].as_py(): item["counts"].as_py() for item in counts}
    names = list(acc.district_ids) + [d for d in changed_by_district if d not in acc.district_ids]
    sums = np.pad(acc.district_sums, ((0, 0), (0, len(names) - acc.district_sums.shape[1])))
    districts = sorted(
        (DistrictImpact(name, *map(int, sums[:, index]), changed_by_district.get(name, 0)) for index, name in enumerate(names)),
        key=lambda d: (-abs(d.difference_yuan), -d.changed, d.district),
    )
    facts = {**proposed.facts, **base.facts}
    enterprises = _materialize(acc, changed_table, order[:limit], parts, facts) if changed_table is not None else ()
    return Impact(
        as_of=as_of, rows_in=acc.rows_in, rows_compared=acc.rows_compared,
        rejected_base=acc.rejected_base, rejected_proposed=acc.rejected_proposed,
        rejected_only_proposed=acc.rejected_only_proposed,
        before_yuan=int(acc.totals[0]), after_yuan=int(acc.totals[1]),
        districts=tuple(districts), rules=tuple(rules), lists=lists,
        changed_count=0 if changed_table is None else changed_table.num_rows,
        changed=tuple(enterprises),
    )


def _changed(acc: _Accumulator):
    """All changed rows in one table, their per-key figures, and their order of importance."""
    if not acc.changed_parts:
        return None, np.zeros(0, np.int64), {}
    table = pa.Table.from_batches([p["table"] for p in acc.changed_parts]).combine_chunks()
    parts = {
        "total": np.concatenate([np.stack(p["total"]) for p in acc.changed_parts], axis=1),
        "amounts": np.concatenate([p["amounts"] for p in acc.changed_parts], axis=2),
        "flags": np.concatenate([p["flags"] for p in acc.changed_parts], axis=2),
        "fired": np.concatenate([p["fired"] for p in acc.changed_parts], axis=2),
    }
    difference = parts["total"][1] - parts["total"][0]
    uscc = table.column("uscc").to_numpy(zero_copy_only=False) if "uscc" in table.schema.names else np.arange(table.num_rows)
    by_uscc = np.argsort(uscc, kind="stable")
    order = by_uscc[np.argsort(-np.abs(difference[by_uscc]), kind="stable")]
    return table, order, parts


def _checked(row: dict[str, Any], facts: Mapping[str, Fact]) -> dict[str, Any]:
    """The row's values as the rules saw them (a CSV gives text: '3' is the integer 3)."""
    values = {}
    for name, raw in row.items():
        try:
            values[name] = coerce(facts[name], raw) if name in facts else raw
        except RecordError:
            values[name] = raw
    return values


def _materialize(acc: _Accumulator, table: pa.Table, rows: np.ndarray, parts, facts) -> list[ChangedEnterprise]:
    """Python objects for the shown rows only: the responsible rules, lists entered and left."""
    shown = [_checked(row, facts) for row in table.take(pa.array(rows)).to_pylist()]
    amounts = parts["amounts"][:, :, rows]
    flags = parts["flags"][:, :, rows]
    fired = parts["fired"][:, :, rows]
    totals = parts["total"][:, rows]
    rule_findings = {key: [i for i, k in enumerate(acc.finding_keys) if k[:2] == key] for key in acc.rule_keys}
    rule_sanctions = {key: [i for i, k in enumerate(acc.sanction_keys) if k[:2] == key] for key in acc.rule_keys}
    result = []
    for j, row in enumerate(shown):
        changes = []
        entered_all: dict[str, None] = {}
        left_all: dict[str, None] = {}
        for index, key in enumerate(acc.rule_keys):
            f, s = rule_findings[key], rule_sanctions[key]
            before = int(amounts[f, 0, j].sum()) if f else 0
            after = int(amounts[f, 1, j].sum()) if f else 0
            entered = tuple(acc.sanction_keys[i][2] for i in s if flags[i, 1, j] and not flags[i, 0, j])
            left = tuple(acc.sanction_keys[i][2] for i in s if flags[i, 0, j] and not flags[i, 1, j])
            if before == after and not entered and not left:
                continue
            changes.append(RuleChange(key[0], key[1], before, after, bool(fired[index, 0, j]), bool(fired[index, 1, j]), entered, left))
        for list_index, list_id in enumerate(acc.lists):
            on_before = any(flags[i, 0, j] for i in acc.list_slots[list_index])
            on_after = any(flags[i, 1, j] for i in acc.list_slots[list_index])
            if on_after and not on_before:
                entered_all[list_id] = None
            elif on_before and not on_after:
                left_all[list_id] = None
        result.append(ChangedEnterprise(
            uscc=str(row.get("uscc")), name=row.get("name"), district=row.get(DISTRICT) or NO_DISTRICT,
            before_yuan=int(totals[0, j]), after_yuan=int(totals[1, j]),
            lists_entered=tuple(entered_all), lists_left=tuple(left_all),
            rules=tuple(changes), facts=row,
        ))
    return result


__all__ = [
    "ChangedEnterprise", "DistrictImpact", "Impact", "ListImpact", "RuleChange", "RuleImpact",
    "RuleInfo", "compute_impact",
]
