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

import contextlib
import datetime as dt
import gc
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import Citation, Fact, Kind, Policy, PolicySet, RecordError
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


class RuleChange(NamedTuple):
    """One rule responsible for an enterprise's change: its figures on both sides.

    Named tuples, not attrs classes, for this and :class:`ChangedEnterprise`: thousands are
    made per diff, and a tuple is built several times faster.
    """

    policy: str
    rule: str
    before_yuan: int
    after_yuan: int
    fired_before: bool
    fired_after: bool
    lists_entered: tuple[str, ...]
    lists_left: tuple[str, ...]


class ChangedEnterprise(NamedTuple):
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

    def __init__(self, base: _Side, proposed: _Side, limit: int):
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
        # per district: before, after, rows owing before, rows owing after, rows changed
        self.district_sums = np.zeros((5, 0), np.int64)
        self.changed_count = 0
        self.kept = _MostChanged(limit)

    def add(self, batch: pa.Table | pa.RecordBatch, rb, rp) -> None:
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
            int(acc.finding_sums[0, finding_rows].sum()), int(acc.finding_sums[1, finding_rows].sum()),
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
        (DistrictImpact(name, *map(int, acc.district_sums[:, index])) for index, name in enumerate(names)),
        key=lambda d: (-abs(d.difference_yuan), -d.changed, d.district),
    )
    kept = acc.kept.result()
    facts = {**proposed.facts, **base.facts}
    enterprises = _materialize(acc, *kept, facts) if kept is not None else ()
    return Impact(
        as_of=as_of, rows_in=acc.rows_in, rows_compared=acc.rows_compared,
        rejected_base=acc.rejected_base, rejected_proposed=acc.rejected_proposed,
        rejected_only_proposed=acc.rejected_only_proposed,
        before_yuan=int(acc.totals[0]), after_yuan=int(acc.totals[1]),
        districts=tuple(districts), rules=tuple(rules), lists=lists,
        changed_count=acc.changed_count,
        changed=tuple(enterprises),
    )


class _MostChanged:
    """The ``limit`` changed rows that matter most, kept as the batches go by.

    Order: |difference| descending, then USCC. Memory is bounded by ``limit``, not by how
    many rows change: each batch offers at most ``limit`` candidates (an Arrow top-k), and
    once twice ``limit`` rows are kept they are cut back to ``limit``.
    """

    FIELDS = ("total", "amounts", "flags", "fired")  # arrays whose last axis is the row

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[tuple[pa.Table, dict[str, np.ndarray]]] = []
        self.size = 0

    def candidates(self, batch, rows: np.ndarray, difference: np.ndarray) -> np.ndarray:
        if rows.size <= self.limit or not self.limit:
            return rows[: self.limit]
        subjects = batch.column("uscc").take(pa.array(rows)) if "uscc" in batch.schema.names else pa.array(rows)
        return rows[_top(difference, subjects, self.limit)]

    def add(self, table: pa.Table | pa.RecordBatch, **arrays: np.ndarray) -> None:
        if not self.limit:
            return
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self.parts.append((table, arrays))
        self.size += table.num_rows
        if self.size >= 2 * self.limit:
            self.parts = [self._ordered(self.limit)]
            self.size = self.parts[0][0].num_rows

    def _ordered(self, limit: int) -> tuple[pa.Table, dict[str, np.ndarray]]:
        table = pa.concat_tables([t for t, _ in self.parts]).combine_chunks()
        arrays = {name: np.concatenate([a[name] for _, a in self.parts], axis=-1) for name in self.FIELDS}
        difference = arrays["total"][1] - arrays["total"][0]
        subjects = table.column("uscc") if "uscc" in table.column_names else pa.array(np.arange(table.num_rows))
        order = _top(difference, subjects, limit)
        return table.take(pa.array(order)), {name: value[..., order] for name, value in arrays.items()}

    def result(self) -> tuple[pa.Table, dict[str, np.ndarray]] | None:
        """The kept rows in order, at most ``limit`` of them; None if none changed."""
        if not self.parts:
            return None
        return self._ordered(self.limit)


def _top(difference: np.ndarray, subjects, k: int) -> np.ndarray:
    """Positions of the first ``k`` rows by |difference| descending then subject, in order."""
    keys = pa.table({"magnitude": -np.abs(difference), "subject": subjects})
    sort_keys = [("magnitude", "ascending"), ("subject", "ascending")]
    if k < keys.num_rows:
        chosen = pc.select_k_unstable(keys, k, sort_keys=sort_keys)
        keys = keys.take(chosen)
        return chosen.to_numpy()[pc.sort_indices(keys, sort_keys=sort_keys).to_numpy()]
    return pc.sort_indices(keys, sort_keys=sort_keys).to_numpy()


_ARROW_TYPES = {Kind.INTEGER: pa.int64(), Kind.BOOLEAN: pa.bool_()}


def _typed_rows(table: pa.Table, facts: Mapping[str, Fact]) -> list[dict[str, Any]]:
    """The rows as the rules saw their values: a CSV gives text, and '3' is the integer 3.

    Columns are converted whole with Arrow where they can be (these rows were accepted, so
    integers and true/false convert); any other column, or one in words such as 是/否, goes
    value by value through the same coercion the single-case engine uses.
    """
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        fact = facts.get(name)
        if fact is not None and column.type == pa.string() and fact.type.kind in _ARROW_TYPES:
            try:
                columns[name] = pc.cast(column, _ARROW_TYPES[fact.type.kind]).to_pylist()
                continue
            except pa.ArrowInvalid:
                pass
        values = column.to_pylist()
        if fact is not None and column.type == pa.string() and fact.type.kind not in (Kind.STRING, Kind.ENUM):
            values = [_coerced(fact, value) for value in values]
        columns[name] = values
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _coerced(fact: Fact, raw: Any) -> Any:
    try:
        return coerce(fact, raw)
    except RecordError:
        return raw


def _list_tuples(list_ids: list[str], masks: list[np.ndarray], n: int) -> list[tuple[str, ...]]:
    """Per row, the lists (of ``list_ids``) whose mask is set; fast for the usual 0 or 1 list."""
    if not masks:
        return [()] * n
    if len(masks) == 1:
        one = (list_ids[0],)
        return [one if hit else () for hit in masks[0].tolist()]
    columns = [mask.tolist() for mask in masks]
    return [tuple(x for x, hit in zip(list_ids, row, strict=True) if hit) for row in zip(*columns, strict=True)]


@contextlib.contextmanager
def _without_cyclic_gc():
    """Build many small acyclic objects without the cyclic collector walking them all again.

    Creating tens of thousands of tuples, lists and dicts triggers full collections that
    scan every live object; measured here, they doubled the time of ``_materialize``. None
    of these objects can form a cycle, so nothing is lost by collecting after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _materialize(acc: _Accumulator, table: pa.Table, parts, facts) -> list[ChangedEnterprise]:
    with _without_cyclic_gc():
        return _build_rows(acc, table, parts, facts)


def _build_rows(acc: _Accumulator, table: pa.Table, parts, facts) -> list[ChangedEnterprise]:
    """Python objects for the shown rows only: the responsible rules, lists entered and left.

    Per rule, which rows it is responsible for is one vectorized comparison; the Python loop
    then visits only (row, responsible rule) pairs.
    """
    m = table.num_rows
    shown = _typed_rows(table, facts)
    amounts, flags, fired = parts["amounts"], parts["flags"], parts["fired"]
    totals = parts["total"].tolist()
    changes: list[list[RuleChange]] = [[] for _ in range(m)]
    for index, key in enumerate(acc.rule_keys):
        findings = [i for i, k in enumerate(acc.finding_keys) if k[:2] == key]
        sanctions = [i for i, k in enumerate(acc.sanction_keys) if k[:2] == key]
        money = amounts[findings].sum(axis=0) if findings else np.zeros((2, m), np.int64)
        entered = [flags[i, 1] & ~flags[i, 0] for i in sanctions]
        left = [flags[i, 0] & ~flags[i, 1] for i in sanctions]
        responsible = money[0] != money[1]
        for mask in entered + left:
            responsible |= mask
        hits = np.flatnonzero(responsible)
        if not hits.size:
            continue
        before, after = money[0, hits].tolist(), money[1, hits].tolist()
        fired_before, fired_after = fired[index, 0, hits].tolist(), fired[index, 1, hits].tolist()
        list_ids = [acc.sanction_keys[i][2] for i in sanctions]
        entered_t = _list_tuples(list_ids, [mask[hits] for mask in entered], hits.size)
        left_t = _list_tuples(list_ids, [mask[hits] for mask in left], hits.size)
        for position, j in enumerate(hits.tolist()):
            changes[j].append(RuleChange(
                key[0], key[1], before[position], after[position], fired_before[position], fired_after[position],
                entered_t[position], left_t[position],
            ))
    entered_lists: list[list[str]] = [[] for _ in range(m)]
    left_lists: list[list[str]] = [[] for _ in range(m)]
    for list_index, list_id in enumerate(acc.lists):
        slots = acc.list_slots[list_index]
        on_before, on_after = flags[slots, 0].any(axis=0), flags[slots, 1].any(axis=0)
        for j in np.flatnonzero(on_after & ~on_before).tolist():
            entered_lists[j].append(list_id)
        for j in np.flatnonzero(on_before & ~on_after).tolist():
            left_lists[j].append(list_id)
    return [
        ChangedEnterprise(
            str(row.get("uscc")), row.get("name"), row.get(DISTRICT) or NO_DISTRICT, totals[0][j], totals[1][j],
            tuple(entered_lists[j]), tuple(left_lists[j]), tuple(changes[j]), row,
        )
        for j, row in enumerate(shown)
    ]


__all__ = [
    "ChangedEnterprise", "DistrictImpact", "Impact", "ListImpact", "RuleChange", "RuleImpact",
    "RuleInfo", "compute_impact",
]
