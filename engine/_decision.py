"""What an evaluation returns: findings, sanctions, totals and the trace of why.

Plain frozen values, safe to share across threads and to serialise (``to_dict``) for the
``--format json`` output and for host systems.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
from ecorules.rules import Citation, FindingKind
from ecorules.rules._money import UNITS
from ecorules.rules._steps import Step

IMPOSED, SUPERSEDED = "imposed", "superseded"


def _citation_dict(citation: Citation) -> dict[str, Any]:
    return {"document": citation.document, "article": citation.article, "text": citation.text}


@attrs.frozen
class Finding:
    """A sum owed (or, for a reward, paid) because a rule fired."""

    policy: str  # id@version
    rule: str
    title: str
    kind: FindingKind
    # exact: whole yuan (int), or yuan and fen (a two-place Decimal) where the policy rounds
    # its amounts to the fen (``unit``)
    amount_yuan: int | Decimal
    payer: str  # the payer's name: a district, or the enterprise's USCC
    citation: Citation
    # One act, one fine (行政处罚法 art 29): a fine that another clause's higher fine for the
    # same act supersedes stays in the decision, marked, with what superseded it and why.
    status: str = IMPOSED
    superseded_by: str | None = None  # "policy rule (case)" of the fine imposed instead
    record: str | None = None  # the judged record's key when it is not the enterprise (case_id)
    unit: str = "yuan"  # what the ledger counts the amount in: yuan or fen (rules/_money.py)
    # 行政处罚法 art 37 for a record judged by the law of its own date: the version applied
    # and why ("从旧: ..." or "从轻: ..."; engine/_law_notes.py); None when the run's as_of chose it
    law_note: str | None = None

    @property
    def imposed(self) -> bool:
        return self.status == IMPOSED

    @property
    def amount(self) -> int:
        """The amount as the ledger keeps it: a whole number of ``unit``."""
        return int(self.amount_yuan * UNITS[self.unit])

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.rule,
            "title": self.title,
            "kind": self.kind.value,
            "kind_label": self.kind.label,
            "amount_yuan": money_json(self.amount_yuan),
            "amount": self.amount,
            "unit": self.unit,
            "payer": self.payer,
            "citation": _citation_dict(self.citation),
            "record": self.record,
            "status": self.status,
            "superseded_by": self.superseded_by,
            "law_note": self.law_note,
        }


@attrs.frozen
class Sanction:
    """An entry on a list (green-credit blacklist, restricted loans, ...), or with
    ``lifted`` a lift: the rule ends the subject's entries on the list.

    ``start``: the first day on the list (for a lift: the first day off it); ``end``: the
    planned last day on the list, inclusive, or None (open-ended). Both are what the rules
    justify on the evaluation date; the results store keeps the state across runs."""

    policy: str
    rule: str
    list: str
    list_title: str
    reason: str
    uscc: str  # the subject put on the list
    citation: Citation
    start: dt.date | None = None
    end: dt.date | None = None
    lifted: bool = False
    record: str | None = None  # the judged record's key when it is not the enterprise (case_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.rule,
            "list": self.list,
            "list_title": self.list_title,
            "reason": self.reason,
            "uscc": self.uscc,
            "citation": _citation_dict(self.citation),
            "from": self.start.isoformat() if self.start else None,
            "until": self.end.isoformat() if self.end else None,
            "lifted": self.lifted,
            "record": self.record,
        }


@attrs.frozen
class TraceEntry:
    """One rule as judged: did it fire, and the values its condition and amounts read."""

    policy: str
    rule: str
    fired: bool
    reads: dict[str, Any]
    condition: str
    note: str | None = None  # why a rule was not judged: not in force, parameter not set
    # what the rule computed on the way (rules/_steps.py): each period counted, with its first
    # and last day, count and how it was counted; each cap (min/max) and the bound it took;
    # each named value of the policy. The condition's first, then its amounts' and dates'.
    steps: tuple[Step, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.rule,
            "fired": self.fired,
            "condition": self.condition,
            "reads": {name: _jsonable(value) for name, value in self.reads.items()},
            "note": self.note,
            "steps": [step.to_dict() for step in self.steps],
        }


@attrs.frozen
class Decision:
    as_of: dt.date
    domain: str
    subject: str | None
    policies: tuple[str, ...]  # id@version of every policy in force and judged
    findings: tuple[Finding, ...]
    sanctions: tuple[Sanction, ...]
    trace: tuple[TraceEntry, ...]
    warnings: tuple[str, ...] = ()
    # lifts of the rules that fired (Sanction with lifted=True): entries they end
    lifts: tuple[Sanction, ...] = ()
    # The day whose law was applied when it is not as_of (a case: its act, 行政处罚法 art 37),
    # and why that law: "从旧" (the law at the act) or "从轻: ..." (a lighter later law).
    law_date: dt.date | None = None
    law_note: str | None = None

    @property
    def total_yuan(self) -> int | Decimal:
        """Everything owed: all findings but rewards."""
        return sum(f.amount_yuan for f in self.findings if f.kind.payable and f.imposed)

    @property
    def rewards_yuan(self) -> int | Decimal:
        return sum(f.amount_yuan for f in self.findings if not f.kind.payable and f.imposed)

    @property
    def fired_rules(self) -> tuple[tuple[str, str], ...]:
        return tuple((entry.policy, entry.rule) for entry in self.trace if entry.fired)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "domain": self.domain,
            "subject": self.subject,
            "policies": list(self.policies),
            "findings": [f.to_dict() for f in self.findings],
            "sanctions": [s.to_dict() for s in self.sanctions],
            "lifts": [s.to_dict() for s in self.lifts],
            "total_yuan": money_json(self.total_yuan),
            "rewards_yuan": money_json(self.rewards_yuan),
            "trace": [t.to_dict() for t in self.trace],
            "warnings": list(self.warnings),
            "law_date": self.law_date.isoformat() if self.law_date else None,
            "law_note": self.law_note,
        }


def money_json(yuan: int | Decimal) -> int | str:
    """A sum of yuan for JSON: an integer when whole, else its exact text ("0.48"), never a
    float a reader would round."""
    if isinstance(yuan, Decimal):
        return int(yuan) if yuan == yuan.to_integral_value() else str(yuan)
    return yuan


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)  # Decimal: exact text, never a float
