"""A per-row reference scorer with the kernel's interface, for the diff's equality test.

``StandInProgram(policies, domain=...)`` has what the diff uses of a fastcalc program
(``rules``, ``findings``, ``sanctions``, ``score(table, as_of=, threads=, out=)``, a result
with ``valid``, ``fired``, ``amounts``, ``sanctions``, ``total_yuan``) and answers with the
Python reference evaluator one row at a time: slow, but the very semantics the kernel is
proved equal to. It stood in for the kernel while the kernel was being written; now it is
the independent reading the kernel path of the diff is compared with. Test code only.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from ecorules.engine import Evaluator
from ecorules.rules import PolicySet, RecordError


class StandInProgram:
    def __init__(self, policies, domain: str = "enterprise"):
        self.domain = domain
        self.policies = PolicySet(tuple(p for p in policies if p.domain == domain))
        self.rules = [(p.key, r.id) for p in self.policies for r in p.rules]
        self.findings = [
            (p.key, r.id, i, f.kind, f.payer) for p in self.policies for r in p.rules for i, f in enumerate(r.findings)
        ]
        self.sanctions = [(p.key, r.id, s.list) for p in self.policies for r in p.rules for s in r.sanctions]
        self._evaluator = Evaluator(self.policies, backend="python")

    def score(self, table, as_of, threads: int = 1, out=None):
        rows = table.to_pylist()
        n = len(rows)
        valid = np.zeros(n, bool)
        fired = np.zeros((len(self.rules), n), np.uint8)
        amounts = np.zeros((len(self.findings), n), np.int64)
        sanctions = np.zeros((len(self.sanctions), n), np.uint8)
        total = np.zeros(n, np.int64)
        rule_slot = {key: i for i, key in enumerate(self.rules)}
        finding_slot = {key[:3]: i for i, key in enumerate(self.findings)}
        sanction_slot = {key: i for i, key in enumerate(self.sanctions)}
        for j, row in enumerate(rows):
            try:
                decision = self._evaluator.evaluate(row, as_of=as_of, domain=self.domain)
            except RecordError:
                continue
            valid[j] = True
            for key in decision.fired_rules:
                fired[rule_slot[key], j] = 1
            seen: dict[tuple[str, str], int] = {}
            for finding in decision.findings:
                index = seen.setdefault((finding.policy, finding.rule), 0)
                seen[(finding.policy, finding.rule)] += 1
                amounts[finding_slot[(finding.policy, finding.rule, index)], j] = finding.amount_yuan
            for sanction in decision.sanctions:
                sanctions[sanction_slot[(sanction.policy, sanction.rule, sanction.list)], j] = 1
            total[j] = decision.total_yuan
        return SimpleNamespace(valid=valid, fired=fired, amounts=amounts, sanctions=sanctions, total_yuan=total)
