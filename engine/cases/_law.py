"""The law in force at the act (行政处罚法 art 37, 从旧兼从轻) over a whole case table.

The reference is ``engine/_group.judge_by_law_in_force``: a case of a kind declaring
``dates: {law: ..., decision: ...}`` is judged, statute by statute (policy id), by the version
and parameter values in force on its law date; where those in force on its decision date
(``decided`` when set and <= as_of, else as_of) are lighter for that case (smaller fines,
then fewer list entries, then smaller other payable amounts), or no longer make it a
violation, those apply instead. No version at the act: no violation of that statute.

Here with columns. The days on which anything of the case policies changes (a version's
effective or expires, a parameter's dated value) cut the timeline into periods inside which
the law is one and the same (``Timeline``). The rows are grouped by the period of their law
date and, separately, of their decision date; each group is scored once by the kernel bound
at a day of that period (``Program.score(law_date=...)``, ``as_of`` staying the run's), a row
whose two dates fall in one period only once. Then per row and policy id the outcome is
chosen (``choose``): the one of the law date, unless the decision date's is strictly lighter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from ecorules.fastcalc._cases import lighter_law
from ecorules.rules import FindingKind, Kind, ParameterNotSetError, evaluate
from ecorules.rules import _ast as ast
from ecorules.rules._types import EPOCH, days_to_date
from ecorules.rules._types import date_to_days as _days
from ecorules.rules._workdays import calendar_failures, outside_calls

from .. import _law_notes as law_notes
from .._ledger_money import FEN_PER_YUAN
from .._scored import finding_units
from ._plan import CasePlanError


def _day(days) -> dt.date:
    """A day number (a numpy integer too) as a date."""
    return days_to_date(int(days))


@dataclass(frozen=True)
class Timeline:
    """The days (since 1970-01-01, ascending) on which the law of the case policies changes."""

    cuts: np.ndarray  # int64

    @classmethod
    def of(cls, policies) -> Timeline:
        days = set()
        for policy in policies:
            days.add(_days(policy.effective))
            if policy.expires is not None:
                days.add(_days(policy.expires))
            for parameter in policy.parameters.values():
                days.update(_days(dated.start) for dated in parameter.values)
        return cls(np.array(sorted(days), np.int64))

    def period(self, days: np.ndarray) -> np.ndarray:
        """The period of each day: 0 before the first change, k from the k-th change on."""
        if self.cuts.size > 8:
            return np.searchsorted(self.cuts, days, side="right").astype(np.int64, copy=False)
        # the changes passed, counted: a comparison per change is a streamed pass, where a
        # binary search mispredicts a branch per day (0.09 of 0.1 CPU-s at 10 M cases)
        period = np.zeros(days.size, np.int8)
        for cut in self.cuts.tolist():
            period += (days >= cut).view(np.int8)
        return period.astype(np.int64)

    def day(self, period: int) -> dt.date:
        """A day of ``period``, on which the law is the same as on every other day of it."""
        if not self.cuts.size:
            return EPOCH
        return _day(self.cuts[period - 1] if period > 0 else self.cuts[0] - 1)

    def together(self, program, pairs: np.ndarray) -> list[list[int]]:
        """The periods needed (``pairs``: rows per (period of the law date, period of the
        decision date)) in groups, ascending, each scored in one kernel pass under the laws
        of all its periods (``Program.score`` with a tuple of days): consecutive periods
        whose versions agree on their parameter values, joined while one pass costs no more
        than two. A pass costs its rows times the rules it runs; a rule of a version in force
        on none of its days costs half (the kernel still zeroes its outputs) and a row one
        more (its checks and totals). A row whose dates fall in two periods of one group is
        scored once instead of twice; a row of one period runs the rules of the others too."""
        rules = [p for p, _rule in program.rules]
        policies = {p.key: p for p in program.compiled.policies}
        per_period = [frozenset(key for key, p in policies.items() if p.in_force(self.day(k))) for k in range(pairs.shape[0])]
        needed = np.flatnonzero(pairs.any(axis=1) | pairs.any(axis=0)).tolist()

        def cost(group: list[int]) -> float:
            mine = np.zeros(pairs.shape[0], bool)
            mine[group] = True
            rows = int(pairs[mine].sum() + pairs[~mine][:, mine].sum())
            running = frozenset().union(*(per_period[k] for k in group))
            enabled = sum(key in running for key in rules)
            return rows * (enabled + (len(rules) - enabled) / 2 + 1)

        groups: list[list[int]] = []
        for period in needed:
            if groups and _agree(policies, per_period, groups[-1], period, self) and \
                    cost([*groups[-1], period]) <= cost(groups[-1]) + cost([period]):
                groups[-1].append(period)
            else:
                groups.append([period])
        return groups


def _agree(policies: dict, per_period: list[frozenset], group: list[int], period: int, timeline: Timeline) -> bool:
    """Whether every version in force in ``period`` and in some period of ``group`` takes
    the same parameter values in both (or lacks the same ones: its rules reading them are
    not judged in either)."""
    def values(policy, day: dt.date) -> dict:
        out = {}
        for name, parameter in policy.parameters.items():
            try:
                out[name] = parameter.value_at(day)
            except ParameterNotSetError:
                out[name] = ParameterNotSetError  # (no value: compared as a marker)
        return out

    day = timeline.day(period)
    for other in group:
        for key in per_period[period] & per_period[other]:
            if values(policies[key], day) != values(policies[key], timeline.day(other)):
                return False
    return True


def law_days(node: ast.Node, columns, rows: np.ndarray) -> np.ndarray:
    """The law date (int64 days) of case rows ``rows``: the kind's ``dates: law`` expression
    over the checked case columns. A fact, a date literal and ``value_or`` of them are
    computed with columns; any other form row by row with the reference ``evaluate``."""
    try:
        values, present = _vector(node, columns, rows)
    except _NotVectorised:
        return _row_by_row(node, columns, rows)
    if present is not None and not present.all():
        raise CasePlanError(f"the law date {node} is empty for some cases; make it a required fact or give a default")
    return values


def decision_days(column, rows: np.ndarray, as_of: dt.date) -> np.ndarray:
    """The day the decision is made (int64 days): ``decided`` when set and known as of the
    run, else the run's as_of."""
    today = _days(as_of)
    if column is None or column.values is None:
        return np.full(rows.size, today, np.int64)
    values = column.values[rows].astype(np.int64)
    known = values <= today
    if column.present is not None:
        known &= column.present[rows].astype(bool)
    return np.where(known, values, today)


class _NotVectorised(Exception):
    pass


def _vector(node, columns, rows):
    if isinstance(node, ast.Name) and node.kind == "fact" and node.type.kind is Kind.DATE:
        column = columns.get(node.name)
        if column is None or column.values is None:
            raise _NotVectorised
        present = None if column.present is None else column.present[rows].astype(bool)
        return column.values[rows].astype(np.int64), present
    if isinstance(node, ast.Literal) and isinstance(node.value, dt.date):
        return np.full(rows.size, _days(node.value), np.int64), None
    if isinstance(node, ast.Call) and node.function == "value_or":
        first, first_present = _vector(node.args[0], columns, rows)
        other, other_present = _vector(node.args[1], columns, rows)
        if first_present is None:
            return first, None
        return np.where(first_present, first, other), None if other_present is None else (first_present | other_present)
    raise _NotVectorised


def _row_by_row(node, columns, rows: np.ndarray) -> np.ndarray:
    kinds = {item.name: item.type.kind for item in ast.walk(node) if isinstance(item, ast.Name) and item.kind == "fact"}
    unread = [name for name, kind in kinds.items()
              if kind not in (Kind.DATE, Kind.INTEGER) or columns.get(name) is None or columns[name].values is None]
    if unread:
        raise CasePlanError(f"the law date {node} reads {', '.join(unread)}: the batch run reads only date and "
                            "integer facts of the case there")
    out = np.empty(rows.size, np.int64)
    for position, row in enumerate(rows.tolist()):
        out[position] = _days(evaluate(node, _env(kinds, columns, row)))
    return out


def _env(kinds, columns, row: int) -> dict:
    env = {}
    for name, kind in kinds.items():
        column = columns[name]
        if column.present is not None and not column.present[row]:
            env[name] = None
        else:
            env[name] = _day(column.values[row]) if kind is Kind.DATE else int(column.values[row])
    return env


def reject_outside_law_dates(kind, cases) -> None:
    """A case whose law date counts working days to a day outside the holiday table is a
    reject (its row, the column, its dates, the table's range), before anything is scored,
    as ``engine/_group.judge_by_law_in_force`` rejects it: it counts in no roll-up."""
    found = outside_calls(f"{kind.source or kind.id} dates law", kind.law_date, kind.key)
    if not found:
        return
    kinds = {item.name: item.type.kind for item in ast.walk(kind.law_date) if isinstance(item, ast.Name) and item.kind == "fact"}
    by_column: dict[str, list] = {}
    for row in np.flatnonzero(cases.valid).tolist():
        env = _env(kinds, cases.columns, row)
        for failure in calendar_failures(found, env, env):
            by_column.setdefault(failure.column, []).append((row, failure.value, failure.reason))
    for column, entries in by_column.items():
        rows, values, reasons = zip(*entries, strict=True)
        cases.reject(rows, column, values, reasons)


@dataclass
class LawResult:
    """The chosen outcome per case row, shaped like the kernel's ``ScoreResult`` outputs
    that the store writer and one act one fine read."""

    fired: np.ndarray  # uint8 (rules, rows)
    amounts: np.ndarray  # int64 (findings, rows)
    sanctions: np.ndarray  # uint8 (sanctions, rows)
    warnings: tuple[str, ...]
    lighter: np.ndarray  # bool per row: some statute judged by the lighter law of the decision date
    law_days: np.ndarray  # int64 per row
    decision_days: np.ndarray  # int64 per row
    # per statute (policy id): how its law was chosen per row, for the findings' notes
    choices: dict[str, StatuteChoice] = field(default_factory=dict)
    # int64 (n_dates, rows): list entries' from:/until: and lifts' from:, of the chosen law
    dates: np.ndarray | None = None
    # per statute: its LIGHTER rows (ascending), the distinct figures of their notes and each
    # row's index among them; per version: each distinct figures' note (an index into its
    # distinct texts) and those texts (finding_notes)
    _figures: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _texts: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict, repr=False)

    def finding_notes(self, policy_key: str, rows: np.ndarray) -> list[tuple[np.ndarray, str]]:
        """The findings of version ``policy_key`` at rows ``rows`` in groups of one law note
        (``_law_notes``): (their positions in ``rows``, ascending; the note), the SAME rows,
        the KEPT rows, then the LIGHTER rows by the text of their note. A 从轻 note holds the
        case's figures, but a statute change's lighter rows are many and their figures few
        (16 notes among 13,000 lighter cases at 200,000 cases, bench/cases.py --dated): each
        group's note is written once per chunk (the findings view reads the chunk's note
        where a row has none of its own), not in every row, where its ~90 bytes made the
        chunk's JSON non-ASCII, decoded whole on the store writer's thread and encoded again
        for SQLite. The distinct figures are found once per statute, not once per finding
        slot (a sort of every lighter row's seven figures, 40 ms a slot at a million cases)."""
        statute = policy_key.rsplit("@", 1)[0]
        choice = self.choices[statute]
        codes = choice.code[rows]
        groups = []
        for code, note in ((law_notes.SAME, law_notes.same_law), (law_notes.KEPT, law_notes.kept)):
            at = np.flatnonzero(codes == code)
            if at.size:
                groups.append((at, note(policy_key)))
        lighter = np.flatnonzero(codes == law_notes.LIGHTER)
        if not lighter.size:
            return groups
        if statute not in self._figures:
            every = np.flatnonzero(choice.code == law_notes.LIGHTER)
            among = np.searchsorted(choice.differs, every)  # a LIGHTER row is one of ``differs``
            figures = np.concatenate([choice.severity[1][:, among], choice.severity[0][:, among],
                                      choice.act_period[every][None, :]]).T
            distinct, which = distinct_rows(figures)
            self._figures[statute] = (every, distinct, which)
        every, distinct, which = self._figures[statute]
        if policy_key not in self._texts:
            # per distinct row: the new figures, the old ones, the period of the law date; two
            # rows may read alike (a note names the first figure that differs): one text
            written = [law_notes.lighter(policy_key, _in_yuan(f[0:3], choice.in_fen), choice.keys[f[6]],
                                         _in_yuan(f[3:6], choice.in_fen)) for f in distinct.tolist()]
            texts = list(dict.fromkeys(written))
            number = {text: k for k, text in enumerate(texts)}
            self._texts[policy_key] = (np.array([number[text] for text in written], np.int64), texts)
        text_of, texts = self._texts[policy_key]
        note = text_of[which[np.searchsorted(every, rows[lighter])]]
        order = np.argsort(note, kind="stable")  # (stable: each group's rows stay ascending)
        for part in np.split(order, np.flatnonzero(np.diff(note[order])) + 1):
            groups.append((lighter[part], texts[int(note[part[0]])]))
        return groups


def distinct_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of an int64 table (in no particular order) and, per row, the index of
    its own among them. Each column is ranked by its distinct values and the ranks combined
    into one int64 key (re-ranked before the product could overflow), so that one sort of
    integers finds them: ``np.unique(axis=0)`` sorts the rows as opaque bytes, 0.2 CPU-s
    for the 70,000 lighter-law rows of a million cases."""
    rows = table.shape[0]
    key, size = np.zeros(rows, np.int64), 1
    for column in table.T:
        if rows and column.min() == column.max():
            continue  # one value (a rank of 0 times a width of 1: the key as it is), not sorted
        _values, rank = np.unique(column, return_inverse=True)
        width = int(rank.max(initial=0)) + 1
        if size > (1 << 62) // width:
            _keys, key = np.unique(key, return_inverse=True)
            key, size = key.reshape(-1).astype(np.int64), int(key.max(initial=0)) + 1
        key = key * width + rank.reshape(-1)
        size *= width
    _keys, first, which = np.unique(key, return_index=True, return_inverse=True)
    return table[first], which.reshape(-1).astype(np.int64)


def _in_yuan(severity: np.ndarray, in_fen: bool) -> tuple:
    """(fines, list entries, other amounts) with the amounts from fen back in yuan, as the
    reference sums them: whole yuan, or two-place Decimals where the statute rounds to the fen."""
    fines, entries, others = (int(v) for v in severity)
    if in_fen:
        return Decimal(fines).scaleb(-2), entries, Decimal(others).scaleb(-2)
    return fines // FEN_PER_YUAN, entries, others // FEN_PER_YUAN


@dataclass
class StatuteChoice:
    """One statute's choice of law per case row (``_group.judge_by_law_in_force``'s, with columns)."""

    code: np.ndarray  # int8 per row: _law_notes.SAME, KEPT or LIGHTER
    # int64 (2, 3, rows ``differs``): old and new (fines, list entries, other amounts in fen)
    severity: np.ndarray
    differs: np.ndarray  # int64, ascending: the rows whose law and decision dates fall in two periods
    act_period: np.ndarray  # int64 per row: the period of the law date
    keys: list[str | None]  # per period: the version in force (None: no version)
    in_fen: bool = False  # some finding of the statute rounds to the fen: its amounts shown as two-place yuan


def score_by_law(program, timeline: Timeline, law: np.ndarray, decision: np.ndarray,
                 score: Callable[..., object],
                 score_together: Callable[[np.ndarray, tuple], object] | None = None) -> LawResult:
    """Score the rows (positions 0..n-1 of ``law``) by the period of their law date and of
    their decision date; ``score(positions, day)`` scores those rows with the law of ``day``.
    ``score_together(positions, days)``, when given, scores them under the laws of several
    days in one pass (``Program.score`` with a tuple of days, its checks' failures not
    collected): the periods ``Timeline.together`` groups are scored so, each row once, and
    a row that pass rejects (a check of a version not its own may) again period by period
    with ``score``, which judges its checks as before.

    A statute with no version in force at a row's law date was not violated by the act, and
    its version at the decision date does not reach back (art 37; ``_group`` skips it): a
    row whose decision date has such a version is scored at its decision date apart, by
    ``score(positions, day, without)`` with those versions off (their rules and checks)."""
    n = law.size
    act_period, decision_period = timeline.period(law), timeline.period(decision)
    old = _Outputs.empty(program, n)
    differs = np.flatnonzero(act_period != decision_period)
    periods = timeline.cuts.size + 1
    pairs = np.bincount(act_period * periods + decision_period, minlength=periods * periods).reshape(periods, periods)
    if score_together is None:
        groups = [[period] for period in np.flatnonzero(pairs.any(axis=1) | pairs.any(axis=0)).tolist()]
    else:
        groups = timeline.together(program, pairs)
    in_force = np.array([[p.in_force(timeline.day(k)) for k in range(periods)] for p in program.compiled.policies], bool)
    unreached = _unreached(program, in_force, pairs)
    apart = np.zeros(n, bool)  # rows scored at their decision date apart (``unreached``)
    if unreached:
        marked = np.zeros((periods, periods), bool)
        marked[tuple(np.array(list(unreached)).T)] = True
        apart[differs] = marked[act_period[differs], decision_period[differs]]
    owners = _owners(program)
    warnings: dict[str, None] = {}
    done = None  # the one group's pass, made already
    if len(groups) == 1 and len(groups[0]) > 1 and not unreached:
        # every row's two dates in one group of periods: one pass, and where it rejects no
        # row its outputs are chosen among and masked in place (no masks, copies or takes)
        every = np.arange(n, dtype=np.int64)
        result = score_together(every, tuple(timeline.day(k) for k in groups[0]))
        if np.asarray(result.valid, bool).all() and old.adopt(result):
            warnings.update(dict.fromkeys(str(w) for w in result.warnings))
            lighter, choices = _lighter_in_place(program, old, owners, in_force, act_period, decision_period, differs)
            return _judged(program, timeline, old, warnings, lighter, choices, law, decision, act_period,
                           decision_period, differs)
        done = result  # (some row rejected: judged below as any pass under several laws)
    # (below the one pass, which reads none of them: ~10 ms a million cases)
    new = _Outputs.empty(program, differs.size)
    position_in_new = np.full(n, -1, np.int64)
    position_in_new[differs] = np.arange(differs.size)
    group_of = np.full(periods, -1, np.int64)
    for g, group in enumerate(groups):
        group_of[group] = g
    act_group, decision_group = group_of[act_period], group_of[decision_period]
    again: list[np.ndarray] = []  # rows a pass under several laws rejected
    for g, group in enumerate(groups):
        at_act = act_group == g
        at_decision = np.zeros(n, bool)
        at_decision[differs] = decision_group[differs] == g
        if unreached:
            at_decision &= ~apart
        rows = np.flatnonzero(at_act | at_decision)
        if done is not None:
            result = done
            again.append(rows[~np.asarray(result.valid, bool)])
        elif len(group) == 1:
            result = score(rows, timeline.day(group[0]))
        else:
            result = score_together(rows, tuple(timeline.day(k) for k in group))
            again.append(rows[~np.asarray(result.valid, bool)])
        warnings.update(dict.fromkeys(str(w) for w in result.warnings))
        mine = at_act[rows]
        later = at_decision[rows]  # (in a group of periods a row may be at its act and its decision both)
        new.put(result, later, position_in_new[rows[later]],
                None if len(group) == 1 else (owners, in_force, decision_period[rows[later]]))
        law_of = None if len(group) == 1 else (owners, in_force, act_period[rows[mine]])
        if mine.all() and rows.size == n and old.adopt(result, law_of):
            continue  # every row at its act: the result's own outputs, with no copy
        old.put(result, mine, rows[mine], law_of)
    rescored = np.concatenate(again) if again else np.zeros(0, np.int64)
    if rescored.size:  # their outputs of the pass are those of rejected rows: scored again, one law at a time
        rescored.sort()
        old.clear(rescored)
        new.clear(position_in_new[rescored[position_in_new[rescored] >= 0]])
        at_act_period, at_decision_period = act_period[rescored], decision_period[rescored]
        for period in np.union1d(at_act_period, at_decision_period[at_act_period != at_decision_period]).tolist():
            at_act = at_act_period == period
            at_decision = (at_decision_period == period) & ~at_act & ~apart[rescored]
            result = score(rescored[at_act | at_decision], timeline.day(period))
            rows = rescored[at_act | at_decision]
            old.put(result, at_act[at_act | at_decision], rows[at_act[at_act | at_decision]])
            later = at_decision[at_act | at_decision]
            new.put(result, later, position_in_new[rows[later]])
    for (act, decided), keys in unreached.items():
        rows = np.flatnonzero(apart & (act_period == act) & (decision_period == decided))
        result = score(rows, timeline.day(decided), keys)
        warnings.update(dict.fromkeys(str(w) for w in result.warnings))
        new.put(result, None, position_in_new[rows])
    choices = {}
    lighter = choose(program, old, new, differs, choices)
    return _judged(program, timeline, old, warnings, lighter, choices, law, decision, act_period, decision_period,
                   differs)


def _judged(program, timeline: Timeline, old: _Outputs, warnings: dict, lighter: np.ndarray, choices: dict,
            law: np.ndarray, decision: np.ndarray, act_period: np.ndarray, decision_period: np.ndarray,
            differs: np.ndarray) -> LawResult:
    """The result of :func:`score_by_law`, each statute's choice (``choose``'s take and
    severities) described by ``_choice``."""
    choices = {statute: _choice(program, timeline, statute, act_period, decision_period, differs, take, severity)
               for statute, (take, severity) in choices.items()}
    return LawResult(old.fired, old.amounts, old.sanctions, tuple(warnings), lighter, law, decision, choices, old.dates)


def _lighter_in_place(program, old: _Outputs, owners: tuple[np.ndarray, ...], in_force: np.ndarray,
                      act_period: np.ndarray, decision_period: np.ndarray, differs: np.ndarray):
    """``choose`` and the masks of a pass under several laws at once, over ``old`` holding
    that pass's outputs as they are (every row's, unmasked): by ``lighter_law``, the masks
    applied in place."""
    compiled = program.compiled
    statutes = list(dict.fromkeys(p.id for p in compiled.policies))
    statute_of = np.array([statutes.index(p.id) for p in compiled.policies], np.int64)
    rule_row = {(p, r): i for i, (p, r) in enumerate(program.rules)}
    units = finding_units(program)
    finding_rule = np.array([rule_row[(slot.policy_key, slot.rule_id)] for slot in program.findings], np.int64)
    finding_fen = np.array([FEN_PER_YUAN // units[k] if slot.kind.payable else 0
                            for k, slot in enumerate(program.findings)], np.int64)
    finding_fine = np.array([slot.kind is FindingKind.FINE for slot in program.findings], np.uint8)
    take, severity, keep, everywhere = lighter_law(
        old.fired, old.amounts, old.sanctions, old.dates, *owners, statute_of, np.ascontiguousarray(in_force, np.uint8),
        act_period, decision_period, np.ascontiguousarray(differs, np.int64), finding_rule, finding_fen, finding_fine,
        len(statutes))
    for output, policies in zip((old.fired, old.amounts, old.sanctions, old.dates), owners, strict=True):
        for k, policy in enumerate(policies.tolist()):
            if not everywhere[policy]:
                np.multiply(output[k], keep[policy], out=output[k])
    lighter = np.zeros(old.fired.shape[1], bool)
    lighter[differs[take.any(axis=0)]] = True
    # as ``choose`` gives them: per statute of the case rules, which of ``differs`` took the
    # later law and the severities
    ruled = dict.fromkeys(compiled.policies[int(k)].id for k in owners[0])
    return lighter, {statute: (take[statutes.index(statute)].astype(bool), severity[statutes.index(statute)])
                     for statute in ruled}


def _unreached(program, in_force: np.ndarray, pairs: np.ndarray) -> dict[tuple[int, int], frozenset[str]]:
    """Per (period of the law date, period of the decision date) of some row, where the
    statutes of the decision date's law include some with no version at the act: the keys of
    their versions in force at the decision date (not applied to those rows). ``in_force``:
    per policy (version) and period, whether it is in force there."""
    policies = program.compiled.policies
    found = {}
    for act, decided in zip(*np.nonzero(pairs), strict=True):
        if act == decided:
            continue
        at_act = {p.id for p, there in zip(policies, in_force[:, act], strict=True) if there}
        keys = frozenset(p.key for p, there in zip(policies, in_force[:, decided], strict=True)
                         if there and p.id not in at_act)
        if keys:
            found[(int(act), int(decided))] = keys
    return found


def _owners(program) -> tuple[np.ndarray, ...]:
    """Per row of each output (fired, amounts, sanctions, dates), the index of the policy
    (version) it belongs to: a row of a pass under several laws counts where its version is
    in force on the day that applies."""
    compiled = program.compiled
    index = {p.key: k for k, p in enumerate(compiled.policies)}
    fired = np.array([index[key] for key, _rule in program.rules], np.int64)
    amounts = np.array([index[slot.policy_key] for slot in program.findings], np.int64)
    sanctions = np.array([index[slot[0]] for slot in program.sanctions], np.int64)
    dates = np.full(compiled.n_dates, -1, np.int64)
    for s, rows in enumerate(compiled.sanction_dates):
        for row in rows:
            if row >= 0:
                dates[row] = sanctions[s]
    for k, (key, _rule, _list) in enumerate(getattr(program, "lifts", ())):
        if compiled.lift_dates[k] >= 0:
            dates[compiled.lift_dates[k]] = index[key]
    if (dates < 0).any():
        raise ValueError("a row of the kernel's dates output belongs to no list entry or lift")
    return fired, amounts, sanctions, dates


def _choice(program, timeline: Timeline, statute: str, act_period, decision_period, differs, take, severity) -> StatuteChoice:
    """SAME where the statute's version and parameter values are those of the decision
    date too (as ``_group._same_parameters`` decides: a parameter not set is never the same),
    LIGHTER where the decision date's outcome was taken, KEPT elsewhere."""
    from ecorules.rules import ParameterNotSetError

    versions = [p for p in program.compiled.policies if p.id == statute]
    keys, signatures = [], []
    for period in range(timeline.cuts.size + 1):
        day = timeline.day(period)
        version = next((p for p in versions if p.in_force(day)), None)
        keys.append(version.key if version else None)
        try:
            values = tuple(parameter.value_at(day) for parameter in version.parameters.values()) if version else ()
            signatures.append((keys[-1], values))
        except ParameterNotSetError:
            signatures.append(object())  # equal to no other period's, nor compared with itself
    same_as = np.array([[a == b and isinstance(a, tuple) for b in signatures] for a in signatures], bool)
    # a row whose two dates fall in one period reads the table's diagonal (a 1-D lookup); only
    # the rows ``differs`` are looked up in the whole table
    # (the codes looked up as int8 in the small table: no int64 array of the rows' size, then cast)
    outcome = np.where(same_as, law_notes.SAME, law_notes.KEPT).astype(np.int8)
    code = np.diagonal(outcome)[act_period]
    if differs.size:
        code[differs] = outcome[act_period[differs], decision_period[differs]]
        code[differs[take]] = law_notes.LIGHTER
    units = finding_units(program)
    in_fen = any(units[k] != 1 for k, slot in enumerate(program.findings) if slot.policy_key.rsplit("@", 1)[0] == statute)
    return StatuteChoice(code, severity, differs, act_period, keys, in_fen)


@dataclass
class _Outputs:
    fired: np.ndarray
    amounts: np.ndarray
    sanctions: np.ndarray
    dates: np.ndarray  # list entries' and lifts' dates: a list entry of a case keeps its from:/until:

    @classmethod
    def empty(cls, program, n: int) -> _Outputs:
        return cls(np.zeros((len(program.rules), n), np.uint8), np.zeros((len(program.findings), n), np.int64),
                   np.zeros((len(program.sanctions), n), np.uint8), np.zeros((program.compiled.n_dates, n), np.int64))

    def put(self, result, which: np.ndarray | None, into: np.ndarray | None, law: tuple | None = None) -> None:
        """Rows ``which`` (a mask) of ``result`` into rows ``into`` (both None: every row
        into every row, in order): one output row at a time, by take and put (a 2-D mask
        over millions of columns was 4x slower). The outputs start as zeros and each of
        their columns is put once (a row's law date, or its decision date, is in one period
        or group of periods): an output row that is zero throughout the result (a rule of
        another version, a date no entry has) is left as it is. Half of the puts were such
        rows (0.2 of 0.4 CPU-s at 2 M cases, bench/cases.py --dated).

        ``law`` (a result under several laws at once): (the policy of each output row per
        output, whether each policy is in force per period, the period of each row put):
        a row's value where its version is in force in that period, else 0."""
        if into is not None and not into.size:
            return
        # every row of the result, most often (the period of most acts): put, with no take
        taken = None if which is None or into.size == which.size else np.flatnonzero(which)
        # into every row of the outputs (distinct ascending positions as many as the rows):
        # assigned, with no put
        whole = into is None or into.size == self.fired.shape[1]
        masks: dict[int, np.ndarray] = {}
        for k_output, (mine, theirs) in enumerate(((self.fired, result.fired), (self.amounts, result.amounts),
                                                   (self.sanctions, result.sanctions), (self.dates, result.dates))):
            theirs = np.asarray(theirs)
            for k in range(mine.shape[0]):
                if not theirs[k].any():
                    continue
                mask = None
                if law is not None:
                    owners, in_force, period = law
                    policy = int(owners[k_output][k])
                    if policy not in masks:
                        masks[policy] = in_force[policy][period]
                    mask = masks[policy]
                if taken is None and whole:
                    if mask is None:
                        mine[k] = theirs[k]
                    else:  # (the outputs are zeros where not put)
                        np.copyto(mine[k], theirs[k], where=mask)
                    continue
                values = theirs[k] if taken is None else np.take(theirs[k], taken)
                if mask is not None:
                    values = values * mask if taken is None else np.multiply(values, mask, out=values)
                if whole:
                    mine[k] = values
                else:
                    np.put(mine[k], into, values)

    def adopt(self, result, law: tuple | None = None) -> bool:
        """The outputs of ``result``, of as many rows as these, taken as these (they are put
        once: nothing was put yet), the rows of another law zeroed in place (``law`` as for
        ``put``); False where an output is not one this could own (left as it was). A copy
        into fresh zeros cost the copy and a page fault per 4 KiB of it."""
        outputs = [np.asarray(o) for o in (result.fired, result.amounts, result.sanctions, result.dates)]
        mine = (self.fired, self.amounts, self.sanctions, self.dates)
        if any(o.shape != m.shape or o.dtype != m.dtype or not o.flags.writeable or not o.flags.c_contiguous
               for o, m in zip(outputs, mine, strict=True)):
            return False
        if law is not None:
            owners, in_force, period = law
            masks: dict[int, np.ndarray] = {}
            for k_output, output in enumerate(outputs):
                for k in range(output.shape[0]):
                    policy = int(owners[k_output][k])
                    if policy not in masks:
                        masks[policy] = in_force[policy][period]
                    if output[k].any():
                        np.multiply(output[k], masks[policy], out=output[k])
        self.fired, self.amounts, self.sanctions, self.dates = outputs
        return True

    def clear(self, rows: np.ndarray) -> None:
        """Zeroes at ``rows``."""
        for mine in (self.fired, self.amounts, self.sanctions, self.dates):
            mine[:, rows] = 0


def choose(program, old: _Outputs, new: _Outputs, differs: np.ndarray, choices: dict | None = None) -> np.ndarray:
    """Per policy id, over the rows ``differs`` (whose law and decision dates fall in two
    periods): the decision date's outcome where strictly lighter, written into ``old``.
    Returns per row whether any statute took the lighter later law; ``choices`` receives
    per policy id (which of ``differs`` took it, the old and new severities (2, 3, rows))."""
    lighter = np.zeros(old.fired.shape[1], bool)
    policy_id = {p.key: p.id for p in program.compiled.policies}
    rule_row = {(p, r): i for i, (p, r) in enumerate(program.rules)}
    ids = dict.fromkeys(policy_id[key] for key, _ in program.rules)
    if choices is not None:
        choices.update({statute: (np.zeros(0, bool), np.zeros((2, 3, 0), np.int64)) for statute in ids})
    if not differs.size:
        return lighter
    for statute in ids:
        rules = [i for i, (key, _) in enumerate(program.rules) if policy_id[key] == statute]
        findings = [k for k, slot in enumerate(program.findings) if policy_id[slot.policy_key] == statute]
        lists = [s for s, slot in enumerate(program.sanctions) if policy_id[slot[0]] == statute]

        of, ol, oo = _severity(program, rule_row, findings, lists, old, differs)
        nf, nl, no = _severity(program, rule_row, findings, lists, new, None)
        take = (nf < of) | ((nf == of) & ((nl < ol) | ((nl == ol) & (no < oo))))
        if choices is not None:
            choices[statute] = (take, np.array([[of, ol, oo], [nf, nl, no]], np.int64).reshape(2, 3, differs.size))
        if not take.any():
            continue
        rows, source = differs[take], np.flatnonzero(take)
        old.fired[np.ix_(rules, rows)] = new.fired[np.ix_(rules, source)]
        if findings:
            old.amounts[np.ix_(findings, rows)] = new.amounts[np.ix_(findings, source)]
        if lists:
            old.sanctions[np.ix_(lists, rows)] = new.sanctions[np.ix_(lists, source)]
        dates = _date_rows(program, statute, lists, policy_id)
        if dates:
            old.dates[np.ix_(dates, rows)] = new.dates[np.ix_(dates, source)]
        lighter[rows] = True
    return lighter


def _date_rows(program, statute: str, lists: list[int], policy_id: dict[str, str]) -> list[int]:
    """The rows of the dates output that belong to one statute: its list entries' from: and
    until:, its lifts' from:."""
    compiled = program.compiled
    rows = [row for s in lists for row in compiled.sanction_dates[s] if row >= 0]
    rows += [compiled.lift_dates[k] for k, (key, _rule, _list) in enumerate(getattr(program, "lifts", ()))
             if policy_id[key] == statute and compiled.lift_dates[k] >= 0]
    return rows


def _severity(program, rule_row, findings, lists, outputs: _Outputs, columns: np.ndarray | None):
    """Per column of ``outputs`` (``columns``; None: every one, with no copy), as
    ``engine/_group._severity``: the fines, the list entries, the other payable amounts of
    one statute's findings (amounts in fen)."""
    def at(row: np.ndarray) -> np.ndarray:
        return row if columns is None else row[columns]

    size = outputs.fired.shape[1] if columns is None else columns.size
    fines = np.zeros(size, np.int64)
    others = np.zeros(size, np.int64)
    units = finding_units(program)
    for k in findings:
        slot = program.findings[k]
        if not slot.kind.payable:
            continue
        fired = at(outputs.fired[rule_row[(slot.policy_key, slot.rule_id)]]).astype(bool)
        # in fen: one statute's versions, or its rules, may round to different units
        amount = np.where(fired, at(outputs.amounts[k]), 0) * (FEN_PER_YUAN // units[k])
        if slot.kind is FindingKind.FINE:
            fines += amount
        else:
            others += amount
    entries = np.zeros(size, np.int64)
    for s in lists:
        entries += at(outputs.sanctions[s])
    return fines, entries, others


__all__ = ["LawResult", "Timeline", "decision_days", "law_days", "reject_outside_law_dates", "score_by_law"]
