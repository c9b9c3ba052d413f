"""The plain-Python reference the kernel is compared with: _records per value, evaluate per rule.

Deliberately independent of ``ecorules.fastcalc``: validation is ``rules._records.coerce``
plus the two documented differences of the batch validator (see fastcalc/_validate.py):
whole finite floats count as integers and NaN as missing (pandas' integer columns with a
gap), and a fact without min/max is held to the range the checker assumed (Fact.interval).
Rules are judged with ``rules.evaluate`` on the typed AST, as in engine/_evaluator.py.

Records come from small pools of raw values (see fastcalc_strategies.py), so the reference
works per *distinct* record: each pool value is checked once, and each rule is evaluated once
per distinct combination of the values it reads. The functions are pure, so this is the
same as evaluating every record, and it lets the default run compare a million rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from ecorules.rules import (
    ENTERPRISE,
    ParameterNotSetError,
    Policy,
    RecordError,
    evaluate,
    finding_amount,
)
from ecorules.rules._check_calls import result_key
from ecorules.rules._checks import show_value
from ecorules.rules._money import in_units, to_yuan
from ecorules.rules._records import coerce
from ecorules.rules._schema import Fact
from ecorules.rules._types import Kind, date_to_days, days_to_date
from ecorules.rules._workdays import calendar_failures, outside_calls, rule_nodes


def implied_bounds(fact: Fact) -> tuple[Any, Any, str, str]:
    low, high = fact.interval
    if fact.type.kind is Kind.DATE:
        low, high = days_to_date(low), days_to_date(high)
    elif fact.type.kind is Kind.DECIMAL:
        low, high = (Decimal(v.numerator) / Decimal(v.denominator) if isinstance(v, Fraction) else Decimal(v)
                     for v in (low, high))
    shown_low = str(fact.min) if fact.min is not None else str(low)
    shown_high = str(fact.max) if fact.max is not None else str(high)
    return low, high, shown_low, shown_high


def reference_check(fact: Fact, raw: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, reason) for one raw value, as the batch must decide it."""
    if isinstance(raw, float) and raw != raw:
        raw = None  # NaN: missing (pandas)
    if fact.type.kind is Kind.INTEGER and isinstance(raw, float) and raw == raw and abs(raw) != float("inf") \
            and raw == int(raw):
        raw = int(raw)  # a whole float is a whole number
    try:
        value = coerce(fact, raw)
    except RecordError as error:
        return None, error.message
    except ArithmeticError:
        return None, f"must be a decimal number, got {raw!r}"
    if value is None:  # an empty optional fact: accepted, and None in the record (is_set false)
        return None, None
    if fact.type.kind in (Kind.INTEGER, Kind.DECIMAL, Kind.DATE):
        low, high, shown_low, shown_high = implied_bounds(fact)
        if value < low:
            return None, f"{value} is below the minimum {shown_low}"
        if value > high:
            return None, f"{value} is above the maximum {shown_high}"
    return value, None


def _parameters(policy: Policy, as_of: dt.date) -> tuple[dict, dict]:
    """The parameter values in force on ``as_of`` with the builtin, and those not set."""
    env_params, unset = {"as_of": as_of}, {}
    for name, parameter in policy.parameters.items():
        try:
            env_params[name] = parameter.value_at(as_of)
        except ParameterNotSetError as error:
            unset[name] = str(error)
    return env_params, unset


def shown(raw: Any) -> str:
    if raw is None or (isinstance(raw, float) and raw != raw):
        return ""
    return raw if isinstance(raw, str) else str(raw)


class Reference:
    """Scores records (given as pool indices per column) like the kernel should."""

    def __init__(self, policies: Sequence[Policy], domain: str = "enterprise"):
        self.policies = tuple(p for p in policies if p.domain == domain)
        self.facts: dict[str, Fact] = {}
        for policy in self.policies:
            for name, fact in policy.facts.items():
                self.facts.setdefault(name, fact)
        needed: dict[str, None] = {}
        for policy in self.policies:
            for name in policy.required_facts:
                needed.setdefault(name)
        self.columns = tuple(needed)
        self.rules = [(p, r) for p in self.policies for r in p.rules]
        self.findings = [(p, r, i, f) for p, r in self.rules for i, f in enumerate(r.findings)]
        self.finding_rules = [k for k, (_, r) in enumerate(self.rules) for _ in r.findings]
        self.sanctions = [(p, r, s) for p, r in self.rules for s in r.sanctions]
        # the date expressions of list entries and lifts, in the kernel's order of "dates"
        # rows: per rule, each sanction's from: then until:, then each lift's from:
        self.dates = [(k, node) for k, (_, r) in enumerate(self.rules)
                      for node in [*(n for s in r.sanctions for n in s.dated), *(n for s in r.lifts for n in s.dated)]]

    def _calendar(self, verdicts, index, valid, rejects, as_of) -> None:
        """A working-day call of a check or of a rule judged (its policy in force, what it
        reads set) that reaches a day outside the holiday table, on a row validation accepted,
        is a reject of that row naming the call's column (rules/_workdays.calendar_failures),
        before any check: the checks' calls, then the rules', in policy order (the kernel's)."""
        failing = np.zeros(valid.size, bool)
        rows = np.flatnonzero(valid)
        owners = []
        judged = [(p, *_parameters(p, as_of)) for p in self.policies if p.in_force(as_of)]
        for policy, env_params, unset in judged:
            owners += [(f"{policy.key} check {c.id}", env_params, c.holds, policy.subject) for c in policy.checks
                       if not any(name in unset for name in c.reads())]
        for policy, env_params, unset in judged:
            owners += [(f"{policy.key} rule {r.id}", env_params, node, policy.subject) for r in policy.rules
                       if not any(name in unset for name in r.reads()) for node in rule_nodes(r)]
        for origin, env_params, node, subject in owners:
            for item in outside_calls(origin, node, subject):
                if not rows.size:
                    continue
                column, _, read = item[2]
                read = tuple(dict.fromkeys((*read, column)))  # a call reading no fact blames the key
                keys = np.stack([index[name][rows] for name in read], axis=1)
                distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
                outcome = []
                for key in distinct.tolist():
                    values = {name: verdicts[name][k][0] for name, k in zip(read, key, strict=True)}
                    outcome.append(calendar_failures([item], {**env_params, **values}, values))
                position = self.columns.index(column)
                for row, k in zip(rows.tolist(), inverse.reshape(-1).tolist(), strict=True):
                    for failure in outcome[k]:
                        rejects.append((row, position, column, failure.value, failure.reason))
                        failing[row] = True
        valid &= ~failing

    def _checks(self, verdicts, index, valid, rejects, as_of) -> list[str]:
        """Every check of the policies in force on the rows validation accepted, before any
        rule (as engine/_evaluator.py): each failure is a reject, and its row is no longer
        valid. Returns the warnings of checks not judged (a parameter without a value)."""
        warnings, failing = [], np.zeros(valid.size, bool)
        rows = np.flatnonzero(valid)
        for policy in self.policies:
            if not policy.in_force(as_of):
                continue
            env_params, unset = _parameters(policy, as_of)
            for check in policy.checks:
                blocked = [name for name in check.reads() if name in unset]
                if blocked:
                    warnings.append(f"{policy.key} check {check.id}: not judged: {unset[blocked[0]]}; legal staff must set it")
                    continue
                reads = [name for name in check.reads() if name in self.facts]
                if not rows.size:
                    continue
                keys = np.stack([index[name][rows] for name in reads], axis=1)
                distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
                holds = np.array([evaluate(check.holds, {**env_params, **{name: verdicts[name][k][0] for name, k in
                                                                           zip(reads, key, strict=True)}})
                                  for key in distinct.tolist()], dtype=bool)
                position = self.columns.index(check.column)
                for row in rows[~holds[inverse.reshape(-1)]].tolist():
                    value = verdicts[check.column][int(index[check.column][row])][0]
                    rejects.append((row, position, check.column, show_value(value), check.reason(policy.key)))
                    failing[row] = True
        valid &= ~failing
        return warnings

    def score(self, pools: dict[str, list], index: dict[str, np.ndarray], n: int, as_of: dt.date) -> dict:
        in_force = [p for p in self.policies if p.in_force(as_of)]
        checked = [name for name in self.columns if any(name in p.required_facts for p in in_force)]
        # validation: once per pool value, then per row through the indices
        verdicts = {name: [reference_check(self.facts[name], raw) for raw in pools[name]] for name in checked}
        valid = np.ones(n, dtype=bool)
        rejects = []
        for position, name in enumerate(self.columns):
            if name not in checked:
                continue
            bad = np.array([problem is not None for _, problem in verdicts[name]], dtype=bool)
            rows = np.flatnonzero(bad[index[name]])
            valid[rows] = False
            for row in rows.tolist():
                k = int(index[name][row])
                rejects.append((row, position, name, shown(pools[name][k]), verdicts[name][k][1]))
        self._calendar(verdicts, index, valid, rejects, as_of)
        warnings = self._checks(verdicts, index, valid, rejects, as_of)
        rejects.sort(key=lambda item: (item[0], item[1]))  # stable: checks in their order
        fired = np.zeros((len(self.rules), n), np.uint8)
        amounts = np.zeros((len(self.findings), n), np.int64)
        sanctions = np.zeros((len(self.sanctions), n), np.uint8)
        dates = np.zeros((len(self.dates), n), np.int64)
        finding_at = 0
        sanction_at = 0
        payer_labels: dict[int, np.ndarray] = {}
        for r, (policy, rule) in enumerate(self.rules):
            n_findings, n_sanctions = len(rule.findings), len(rule.sanctions)
            slots = range(finding_at, finding_at + n_findings)
            lists = range(sanction_at, sanction_at + n_sanctions)
            finding_at += n_findings
            sanction_at += n_sanctions
            if not policy.in_force(as_of):
                continue
            env_params, unset = _parameters(policy, as_of)
            blocked = [name for name in rule.reads() if name in unset]  # as engine/_evaluator.py
            if blocked:
                unset = unset[blocked[0]]
                warnings.append(f"{policy.key} rule {rule.id}: not judged: {unset}; legal staff must set it")
                continue
            # working-day calls reading a result: probed before the rule, a row outside the
            # table rejected then (fastcalc/_compiler._emit_late_calendar_checks)
            late = [item for node in rule_nodes(rule) for item in outside_calls(f"{policy.key} rule {rule.id}", node,
                                                                                 policy.subject, late=True)]
            reads = [name for name in rule.reads() if name in self.facts]
            reads += [column for _, _, (column, _, _) in late if column not in reads]
            rows = np.flatnonzero(valid)
            if not rows.size:
                continue
            # the results of earlier rules it reads (amount_of, fired) are part of each row's key
            results = []
            for read in rule.results_read():
                earlier = self.rules.index((policy, policy.rule(read)))
                results.append((result_key("fired", read), fired[earlier]))
                if len(policy.rule(read).findings) == 1:
                    results.append((result_key("amount_of", read), amounts[self.finding_rules.index(earlier)],
                                    policy.rule(read).findings[0].rounding))
            columns = [index[name][rows] for name in reads] + [item[1][rows].astype(np.int64) for item in results]
            keys = np.stack(columns, axis=1) if columns else np.zeros((rows.size, 1), np.int64)
            distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            outcome_fired = np.zeros(len(distinct), np.uint8)
            outcome_amounts = np.zeros((n_findings, len(distinct)), np.int64)
            date_rows = [row for row, (k, _) in enumerate(self.dates) if k == r]
            outcome_dates = np.zeros((len(date_rows), len(distinct)), np.int64)
            for d, key in enumerate(distinct.tolist()):
                env = dict(env_params)
                for name, k in zip(reads, key if reads else [], strict=False):
                    env[name] = verdicts[name][k][0]
                for item, value in zip(results, key[len(reads):len(reads) + len(results)], strict=True):
                    # amount_of reads the amount as produced: whole units of its rounding, in yuan
                    env[item[0]] = bool(value) if item[0].startswith("fired:") else to_yuan(int(value), item[2])
                failures = calendar_failures(late, env, env) if late else []
                if failures:
                    for row in rows[inverse == d].tolist():
                        rejects += [(row, self.columns.index(f.column), f.column, f.value, f.reason) for f in failures]
                        valid[row] = False
                    continue
                if evaluate(rule.condition, env):
                    outcome_fired[d] = 1
                    for j, finding in enumerate(rule.findings):
                        outcome_amounts[j, d] = in_units(finding_amount(finding, env), finding.rounding)
                    for j, row in enumerate(date_rows):
                        outcome_dates[j, d] = date_to_days(evaluate(self.dates[row][1], env))
            fired[r, rows] = outcome_fired[inverse]
            for j, f in enumerate(slots):
                amounts[f, rows] = outcome_amounts[j][inverse]
            for s in lists:
                sanctions[s, rows] = outcome_fired[inverse]
            for j, row in enumerate(date_rows):
                dates[row, rows] = outcome_dates[j][inverse]
        # a row rejected by a late working-day probe keeps no finding of the rules before it,
        # and its reject takes its place among the row's (the kernel sorts them by row)
        rejects.sort(key=lambda item: (item[0], item[1]))
        fired[:, ~valid] = 0
        amounts[:, ~valid] = 0
        sanctions[:, ~valid] = 0
        for f, (_policy, _rule, _i, finding) in enumerate(self.findings):
            if finding.payer != ENTERPRISE:
                labels = np.array([shown(v) if p is None else v for v, p in verdicts.get(finding.payer, [])] or [""],
                                  dtype=object)
                payer_labels[f] = labels[index[finding.payer]] if finding.payer in verdicts else None
        # row totals in the finest unit of any finding (fen if one rounds to the fen)
        total_unit = max((finding.rounding.per_yuan for *_, finding in self.findings), default=1)
        total = np.zeros(n, np.int64)
        rewards = np.zeros(n, np.int64)
        by_payer: dict[str, Any] = {}
        cases: dict[str, set] = {}
        for f, (_policy, _rule, _i, finding) in enumerate(self.findings):
            in_total_unit = amounts[f] * (total_unit // finding.rounding.per_yuan)
            if finding.kind.payable:
                total += in_total_unit
            else:
                rewards += in_total_unit
            # a finding exists where its rule fired, 0 yuan included (as engine/_evaluator.py)
            for row in np.flatnonzero(fired[self.finding_rules[f]]).tolist():
                label = ENTERPRISE if finding.payer == ENTERPRISE else payer_labels[f][row]
                if finding.kind.payable:
                    if amounts[f, row]:
                        by_payer[label] = by_payer.get(label, 0) + to_yuan(int(amounts[f, row]), finding.rounding)
                    cases.setdefault(label, set()).add(row)
        return {
            "valid": valid, "rejects": rejects, "fired": fired, "amounts": amounts,
            "sanctions": sanctions, "dates": dates, "total": total, "rewards": rewards,
            "totals_by_payer": by_payer, "case_counts": {k: len(v) for k, v in cases.items()},
            "warnings": tuple(dict.fromkeys(warnings)),
        }


__all__ = ["Reference", "implied_bounds", "reference_check", "shown"]
