"""A stand-in for ``ecorules.fastcalc.compile_program``, for the nightly run's tests only.

It has the kernel's API (columns, rules, findings, sanctions, score() -> result with the same
attributes) but judges each row with the plain-Python evaluator, so it is slow and obviously
right. ``scorer()`` returns the real kernel when it is importable, this one otherwise; set
ECORULES_NIGHTLY_STANDIN=1 to force the stand-in.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
from ecorules.engine import Evaluator
from ecorules.rules import ENTERPRISE, PolicySet, RecordError
from ecorules.rules._records import coerce


class StandInProgram:
    def __init__(self, policies, domain: str = "enterprise"):
        self.policies = PolicySet(tuple(p for p in policies if p.domain == domain))
        self.domain = domain
        self.evaluator = Evaluator(self.policies, backend="python")
        self.columns = tuple(self.policies.required_facts())
        self.rules = tuple((p.key, r.id) for p in self.policies for r in p.rules)
        self.findings = tuple(
            (p.key, r.id, i, f.kind, f.payer) for p in self.policies for r in p.rules for i, f in enumerate(r.findings)
        )
        self.sanctions = tuple((p.key, r.id, s.list) for p in self.policies for r in p.rules for s in r.sanctions)

    def score(self, table, as_of, threads: int = 1, out=None):  # out: nothing to reuse here
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        for column in self.columns:
            if column not in table.column_names:
                needed = ", ".join(self.policies.required_facts()[column])
                raise ValueError(f"missing column {column!r}, needed by {needed}")
        rows = table.select(list(self.columns)).to_pylist()
        n = len(rows)
        facts = self.policies.facts
        valid = np.ones(n, bool)
        fired = np.zeros((len(self.rules), n), np.uint8)
        amounts = np.zeros((len(self.findings), n), np.int64)
        sanctions = np.zeros((len(self.sanctions), n), np.uint8)
        total = np.zeros(n, np.int64)
        rej_rows, rej_cols, rej_vals, rej_reasons = [], [], [], []
        rule_index = {key: i for i, key in enumerate(self.rules)}
        finding_index = {(p, r, i): k for k, (p, r, i, _, _) in enumerate(self.findings)}
        sanction_index = {(p, r, s): k for k, (p, r, s) in enumerate(self.sanctions)}
        for i, row in enumerate(rows):
            problems = []
            for name in self.columns:
                raw = row[name]
                try:
                    coerce(facts[name], raw)
                except RecordError as error:
                    problems.append((name, raw, error.message))
            if problems:
                valid[i] = False
                for name, raw, reason in problems:
                    rej_rows.append(i)
                    rej_cols.append(name)
                    rej_vals.append(None if raw is None else str(raw))
                    rej_reasons.append(reason)
                continue
            decision = self.evaluator.evaluate(row, as_of=as_of, domain=self.domain)
            for policy, rule in decision.fired_rules:
                fired[rule_index[(policy, rule)], i] = 1
            counters: dict[tuple[str, str], int] = {}
            for finding in decision.findings:
                j = counters.get((finding.policy, finding.rule), 0)
                counters[(finding.policy, finding.rule)] = j + 1
                amounts[finding_index[(finding.policy, finding.rule, j)], i] = finding.amount_yuan
            for sanction in decision.sanctions:
                sanctions[sanction_index[(sanction.policy, sanction.rule, sanction.list)], i] = 1
            total[i] = decision.total_yuan
        payer_values = {}
        for name in {payer for *_, payer in self.findings if payer != ENTERPRISE}:
            payer_values[name] = [row[name] for row in rows]

        def by_payer(cases: bool):
            """Yuan per payer label (labels owed something); or cases per label: rows where
            a payable finding's rule fired, 0 yuan included (a row once per label)."""
            out: dict[str, int] = {}
            counted: set[tuple[int, str]] = set()
            for k, (policy, rule, _, kind, payer) in enumerate(self.findings):
                if not kind.payable:
                    continue
                for i in np.flatnonzero(fired[rule_index[(policy, rule)]]):
                    label = ENTERPRISE if payer == ENTERPRISE else payer_values[payer][i]
                    if cases:
                        if (i, label) not in counted:
                            counted.add((i, label))
                            out[label] = out.get(label, 0) + 1
                    elif amounts[k, i]:
                        out[label] = out.get(label, 0) + int(amounts[k, i])
            return out

        return SimpleNamespace(
            n_rows=n, valid=valid, reject_rows=np.array(rej_rows, np.int64), reject_columns=rej_cols,
            reject_values=rej_vals, reject_reasons=rej_reasons, fired=fired, amounts=amounts,
            sanctions=sanctions, total_yuan=total, totals_by_payer=lambda: by_payer(False),
            case_counts_by_payer=lambda: by_payer(True), warnings=(),
        )


def compile_standin(policies, domain: str = "enterprise") -> StandInProgram:
    return StandInProgram(policies, domain)


def scorer():
    """The kernel's compile_program when it exists (and is not overridden), else the stand-in."""
    if not os.environ.get("ECORULES_NIGHTLY_STANDIN"):
        try:
            from ecorules.fastcalc import compile_program

            return compile_program
        except ImportError:
            pass
    return compile_standin
