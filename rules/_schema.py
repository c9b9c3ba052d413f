"""The policy model: frozen attrs classes, built and validated by ``_loader.py``.

A :class:`Policy` is one regulation: its identity, the facts it reads, dated parameters, the
lists it can put an enterprise on, and rules that quote the clause they encode. Nothing here
knows about durable-rules or the kernel; both compile from these classes.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from . import _ast as ast
from ._check import Symbol
from ._errors import ParameterNotSetError, Span
from ._kinds import RecordKind, Rollup
from ._money import YUAN, Rounding
from ._types import BOOLEAN, DATE, DECIMAL, DECIMAL_SCALE, INTEGER, Kind, Type, date_to_days

ENTERPRISE = "enterprise"  # the payer word meaning the record's own subject


class FindingKind(enum.Enum):
    """What a monetary finding is, with the Chinese term legal staff use."""

    FINE = "fine"
    FISCAL_DEDUCTION = "fiscal_deduction"
    FEE = "fee"
    REWARD = "reward"
    COMPENSATION = "compensation"

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]

    @property
    def payable(self) -> bool:
        """A reward is paid to the subject; everything else is owed by the payer."""
        return self is not FindingKind.REWARD


_KIND_LABELS = {
    FindingKind.FINE: "罚款",
    FindingKind.FISCAL_DEDUCTION: "财政扣款",
    FindingKind.FEE: "收费",
    FindingKind.REWARD: "奖励",
    FindingKind.COMPENSATION: "生态补偿",
}


@attrs.frozen
class Citation:
    """Where the law says it: the document, the article or section, and its words."""

    document: str
    text: str  # the quoted Chinese text of the clause
    article: str | None = None
    span: Span | None = attrs.field(default=None, eq=False, repr=False)

    def __str__(self) -> str:
        where = f" {self.article}" if self.article else ""
        return f"{self.document}{where}"


@attrs.frozen
class Fact:
    """A field of the record (a registry column) that rules read."""

    name: str
    type: Type
    label: str | None = None  # the Chinese column header staff use
    description: str | None = None
    unit: str | None = None
    min: Any = None
    max: Any = None
    format: str | None = None  # "uscc": verified as a 统一社会信用代码
    # An enum's other spellings, (alias, canonical value) in declared order: 经开区 is read
    # as 郑州经济技术开发区. ``_choices.resolve`` matches them.
    value_aliases: tuple[tuple[str, str], ...] = ()
    aliases: tuple[str, ...] = ()
    # A record may leave it empty (a halt that did not happen): rules read it only under
    # is_set() or through value_or(), which the checker enforces; never a made-up value.
    optional: bool = False
    # An optional fact a registry may leave out altogether (a column added to the contract
    # later, such as responsible_unit): a source without the column is read as all empty,
    # where another missing column is refused.
    may_be_absent: bool = False
    # The kind of record the fact belongs to (None: any, for folders that declare no kinds),
    # and for a roll-up how it is computed from the records of a child kind.
    record_kind: str | None = None
    rollup: Rollup | None = None
    span: Span | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def interval(self) -> ast.Interval:
        """The values the checker assumes; unbounded integers get a generous default."""
        from fractions import Fraction

        if self.type == INTEGER:
            low = -(2**31) if self.min is None else self.min
            high = 2**31 - 1 if self.max is None else self.max
            return (low, high)
        if self.type == DECIMAL:
            low = Fraction(-(10**9)) if self.min is None else Fraction(self.min)
            high = Fraction(10**9) if self.max is None else Fraction(self.max)
            return (low, high)
        if self.type == DATE:
            low = date_to_days(self.min or dt.date(1900, 1, 1))
            high = date_to_days(self.max or dt.date(2999, 12, 31))
            return (low, high)
        return None


@attrs.frozen
class DatedValue:
    """A parameter value in force from ``start`` until the next value's start."""

    start: dt.date
    value: Any
    reference: str  # the legal source of this very value
    span: Span | None = attrs.field(default=None, eq=False, repr=False)  # of the value as written


@attrs.frozen
class Parameter:
    """A number (or date, or flag) of the law that changes over time without a new rule."""

    name: str
    type: Type
    values: tuple[DatedValue, ...]  # sorted by start; empty = not set yet
    description: str | None = None
    unit: str | None = None
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    # the range a value legal staff set must lie in: what a rule reading a parameter that has
    # no value yet may assume (a term in years used in add_years must be bounded for the kernel)
    min: Any = None
    max: Any = None

    def value_at(self, when: dt.date) -> Any:
        current = None
        for dated in self.values:
            if dated.start <= when:
                current = dated
        if current is None:
            first = f" (first value from {self.values[0].start})" if self.values else " (no value set)"
            raise ParameterNotSetError(f"parameter {self.name!r} has no value in force on {when}{first}")
        return current.value

    @property
    def interval(self) -> ast.Interval:
        from fractions import Fraction

        if self.type.kind not in (Kind.INTEGER, Kind.DECIMAL, Kind.DATE):
            return None
        if not self.values:
            # Not set yet: amounts, rates and time limits of the law are never negative, and
            # assuming so lets a rule use the parameter in an amount before legal staff set it.
            low, high = Fact(self.name, self.type).interval
            if self.type.kind is Kind.DATE:
                return (low, high)
            low = Fraction(self.min) if self.min is not None else max(low, 0)
            return (low, Fraction(self.max) if self.max is not None else high)
        if self.type.kind is Kind.DATE:
            days = [date_to_days(v.value) for v in self.values]
        else:
            days = [Fraction(v.value) for v in self.values]
        return (min(days), max(days))

    @property
    def scale(self) -> int:
        """The least whole number that makes every dated value times it an integer (a rate
        of 0.03 gives 100): the batch kernel holds the parameter exactly at that scale. Not
        set yet: any value of four places fits."""
        if self.type != DECIMAL:
            return 1
        if not self.values:
            return DECIMAL_SCALE
        return math.lcm(*(Fraction(v.value).denominator for v in self.values))


@attrs.frozen
class SanctionList:
    """A list an enterprise can be put on, e.g. the green-credit blacklist."""

    id: str
    title: str
    description: str | None = None


@attrs.frozen
class FindingSpec:
    kind: FindingKind
    amount: ast.Node  # typed, a number of yuan, exact (rounded only as ``rounding`` says)
    amount_text: str
    payer: str  # ENTERPRISE or the name of a categorical fact
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    # where the exact amount is rounded, once, when the finding is produced: the rule's
    # declaration, else its policy's, else whole yuan half up
    rounding: Rounding = YUAN


@attrs.frozen
class SanctionSpec:
    """A list entry a rule makes (or, with ``lift``, ends).

    ``start`` (``from:``): the entry's first day on the list, a typed date expression; None
    means the default, the run's as_of (the loader fills in a case kind's decision date,
    ``value_or(decided, as_of)``, where the kind declares one). ``end`` (``until:``): the
    planned last day on the list, inclusive (off the list the day after); None: open-ended.
    A lift (a rule's ``lifts:``) ends the subject's open entries on ``list`` when its rule
    fires; its ``start`` is the day the lift takes effect (off the list from that day)."""

    list: str
    reason: str
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    start: ast.Node | None = attrs.field(default=None, eq=False)
    start_text: str | None = None
    end: ast.Node | None = attrs.field(default=None, eq=False)
    end_text: str | None = None
    lift: bool = False

    @property
    def dated(self) -> tuple[ast.Node, ...]:
        """The date expressions it has (start, end), those given."""
        return tuple(node for node in (self.start, self.end) if node is not None)


@attrs.frozen
class PolicyWarning:
    """Something legal staff should look at that does not stop the policy from loading.
    ``str()`` gives ``file:line:col: message``, like an error."""

    message: str
    span: Span | None = attrs.field(default=None, eq=False)

    def __str__(self) -> str:
        return f"{self.span}: {self.message}" if self.span else self.message


@attrs.frozen
class Rule:
    id: str
    title: str
    citation: Citation
    condition: ast.Node  # typed, boolean
    condition_text: str
    findings: tuple[FindingSpec, ...] = ()
    sanctions: tuple[SanctionSpec, ...] = ()
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    # lists whose entries of the subject this rule ends when it fires (rectification)
    lifts: tuple[SanctionSpec, ...] = ()
    # Set by the loader when the condition contradicts the declared ranges of the facts (for
    # every dated value of its parameters): the rule can never fire, almost always a typo or a
    # wrong bound. At the part of the condition that cannot hold.
    never_applies: PolicyWarning | None = attrs.field(default=None, eq=False, repr=False)
    # Other things check warns about: a condition that always holds, an amount always 0.
    warnings: tuple[PolicyWarning, ...] = attrs.field(default=(), eq=False, repr=False)

    # reads() and results_read() walk the rule's trees: once per rule, not once per record
    # judged (the evaluator asks for every rule of every record; a policy set's own test
    # cases, which every `ecorules run` judges first, spent ~90% of their time walking)
    def results_read(self) -> tuple[str, ...]:
        """The ids of the rules whose results (amount_of, fired) this rule reads."""
        return self._results_read

    @functools.cached_property
    def _results_read(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for node in (self.condition, *(f.amount for f in self.findings)):
            for call in ast.results_read(node):
                seen.setdefault(call.args[0].name)
        return tuple(seen)

    def reads(self) -> tuple[str, ...]:
        """Every fact and parameter the rule reads, condition first."""
        return self._reads

    @functools.cached_property
    def _reads(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        dates = [node for spec in (*self.sanctions, *self.lifts) for node in spec.dated]
        for node in (self.condition, *(f.amount for f in self.findings), *dates):
            for name in ast.names(node):
                seen.setdefault(name)
        for finding in self.findings:
            if finding.payer != ENTERPRISE:
                seen.setdefault(finding.payer)
        return tuple(seen)


@attrs.frozen
class ExpectedFinding:
    rule: str
    amount_yuan: int | Decimal  # a Decimal of two places for a rule that rounds to the fen
    payer: str | None = None
    kind: str | None = None
    record: str | None = None  # the case it is found on, in a test of several cases
    status: str | None = None  # imposed or superseded (one act, one fine)
    span: Span | None = attrs.field(default=None, eq=False, repr=False)  # of the expected amount


@attrs.frozen
class ExpectedRejection:
    """A test case whose record a check must reject: on ``column``, by ``check`` if given."""

    column: str
    check: str | None = None


@attrs.frozen
class ExpectedSanction:
    list: str
    rule: str | None = None
    start: dt.date | None = None  # from: the entry's first day, when the test says
    end: dt.date | None = None  # until: its planned last day
    open_ended: bool = False  # the test says until: null (no planned end)
    lifted: bool = False  # a lift (the rule ends the subject's entries on the list)


@attrs.frozen
class TestCase:
    """A case legal staff write in YAML: given facts, the outcome the law requires."""

    name: str
    given: dict
    as_of: dt.date | None
    findings: tuple[ExpectedFinding, ...] | None
    sanctions: tuple[ExpectedSanction, ...] | None
    total_yuan: int | Decimal | None
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    # A test of several records judged together: ``given`` is then the parent (the
    # enterprise) and ``children`` its records of the policy's kind (the cases).
    children: tuple[dict, ...] | None = None
    rejected: ExpectedRejection | None = None  # the record must fail a check

    __test__ = False  # not a pytest class


@attrs.frozen
class Policy:
    id: str
    title: str
    version: str
    effective: dt.date
    authority: str
    document: str
    facts: dict[str, Fact]
    parameters: dict[str, Parameter]
    lists: dict[str, SanctionList]
    rules: tuple[Rule, ...]
    tests: tuple[TestCase, ...] = ()
    # conditions a record must meet before the rules judge it (``_checks.py``); a record
    # failing one is rejected
    checks: tuple = ()
    number: str | None = None  # 文号, when the source gives one
    expires: dt.date | None = None
    source: str | None = None
    domain: str = "enterprise"  # the kind of record it judges
    subject: str = "uscc"
    # the declared kinds of the domain's lineage (case, enterprise): keys, parents, acts
    kinds: dict[str, RecordKind] = attrs.field(factory=dict, eq=False, repr=False)
    path: str | None = None
    rounding: Rounding = YUAN  # the policy's declaration; a rule may declare its own
    content_hash: str | None = None  # sha256 of the file, for run fingerprints
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    # the named steps of its computations (``values:``, _values.py), inlined where read
    values: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def key(self) -> str:
        """``id@version``: how outputs and traces name the policy."""
        return f"{self.id}@{self.version}"

    def in_force(self, when: dt.date) -> bool:
        return self.effective <= when and (self.expires is None or when < self.expires)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"{self.key} has no rule {rule_id!r}")

    @property
    def payer_key(self) -> str:
        """The fact naming the legal person a record belongs to, whom 'enterprise' as payer
        or listed subject means: the key at the root of the kind's lineage (a case -> its
        enterprise's uscc), else the policy's own subject."""
        kind = self.domain
        while kind in self.kinds and self.kinds[kind].parent in self.kinds:
            kind = self.kinds[kind].parent
        return self.kinds[kind].key if kind in self.kinds else self.subject

    @property
    def kind_checks(self) -> tuple:
        """The checks its kind's catalogue declares (``RecordKind.checks``): every record the
        policy judges meets them too, judged once per record, before the policy's own."""
        kind = self.kinds.get(self.domain)
        return kind.checks if kind is not None else ()

    @functools.cached_property
    def required_facts(self) -> tuple[str, ...]:
        """The record fields the policy needs: the subject (and the enterprise it belongs
        to), then what its checks (its kind's too) and rules read."""
        needed: dict[str, None] = {self.subject: None, self.payer_key: None}
        for rule in (*self.kind_checks, *self.checks, *self.rules):
            for name in rule.reads():
                if name in self.facts:
                    needed.setdefault(name)
        return tuple(needed)

    def unset_parameters(self, when: dt.date) -> dict[str, str]:
        """Parameters without a value in force on ``when``, with the reason."""
        missing = {}
        for name, parameter in self.parameters.items():
            try:
                parameter.value_at(when)
            except ParameterNotSetError as error:
                missing[name] = str(error)
        return missing

    def warnings(self, when: dt.date) -> tuple[PolicyWarning, ...]:
        """What ``ecorules check`` warns about: rules that can never apply, then parameters
        without a value in force on ``when``."""
        found = [rule.never_applies for rule in self.rules if rule.never_applies is not None]
        found += [warning for rule in self.rules for warning in rule.warnings]
        for name, reason in self.unset_parameters(when).items():
            found.append(PolicyWarning(
                f"{reason}: the rules reading {name!r} are not judged until it is set", self.parameters[name].span,
            ))
        return tuple(found)


def scope_of(facts: dict[str, Fact], parameters: dict[str, Parameter]) -> dict[str, Symbol]:
    """The names an expression of a policy may use."""
    scope = {
        name: Symbol("fact", fact.type, fact.interval, fact.optional, DECIMAL_SCALE if fact.type == DECIMAL else 1)
        for name, fact in facts.items()
    }
    scope.update(
        {name: Symbol("parameter", p.type, p.interval, scale=p.scale, values=tuple(v.value for v in p.values))
         for name, p in parameters.items()}
    )
    scope["as_of"] = Symbol("builtin", DATE, Fact("as_of", DATE).interval)
    return scope


def kind_checks_policy(kind: RecordKind, facts: dict[str, Fact]) -> Policy:
    """The checks of ``kind``'s catalogue as a policy of no rule: how every evaluator judges
    a kind's checks when no policy of the kind carries them. Its id is the catalogue's name,
    which the rejects cite. The batch kernel emits a kind's checks with any program of the
    kind (``fastcalc/_compiler._emit_checks``), so it compiles this policy without them
    (``checks=()``), never twice."""
    return Policy(
        id=kind.source or kind.id, title=f"checks of kind {kind.id}", version="catalogue", effective=dt.date(1, 1, 1),
        authority="", document=kind.source or "", facts=facts, parameters={}, lists={}, rules=(), checks=kind.checks,
        domain=kind.id, subject=kind.key, kinds={kind.id: kind},
    )


__all__ = [
    "BOOLEAN", "ENTERPRISE", "Citation", "DatedValue", "ExpectedFinding", "ExpectedRejection", "ExpectedSanction",
    "Fact", "FindingKind", "FindingSpec", "Parameter", "Policy", "PolicyWarning", "Rule", "SanctionList",
    "SanctionSpec", "TestCase", "kind_checks_policy", "scope_of",
]
