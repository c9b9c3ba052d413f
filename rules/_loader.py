"""Read policy YAML into the model of ``_schema.py``, checking everything on the way.

Each error names ``file:line:col`` and says what was expected. The order of work: the YAML
(``_yaml.py``), the shape of each section here, then every expression through the parser and
the checker with the policy's own scope. A folder may hold a fact catalogue (a file with only
``facts:``, e.g. ``registry.yaml``) whose facts the policies in that folder share.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from . import _ast as ast
from ._check import Symbol, check, result_key
from ._enum_values import read_enum_values
from ._errors import PolicyError, PolicySchemaError, PolicyTypeError, Span
from ._narrow import Contradiction, narrow
from ._parser import parse_expression
from ._schema import (
    ENTERPRISE,
    Citation,
    DatedValue,
    ExpectedFinding,
    ExpectedSanction,
    Fact,
    FindingKind,
    FindingSpec,
    Parameter,
    Policy,
    PolicyWarning,
    Rule,
    SanctionList,
    SanctionSpec,
    TestCase,
    scope_of,
)
from ._types import BOOLEAN, DATE, DECIMAL, DECIMAL_PLACES, INTEGER, STRING, Kind, Type, enum_type
from ._yaml import Located, LocatedList, load_yaml_file

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
POLICY_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
RESERVED_NAMES = {"as_of", "enterprise", "sid", "id", "and", "or", "not", "in", "true", "false"}
SIMPLE_TYPES = {"integer": INTEGER, "decimal": DECIMAL, "boolean": BOOLEAN, "string": STRING, "date": DATE}
TYPE_NAMES = [*SIMPLE_TYPES, "enum"]


class Section:
    """One YAML mapping being read: typed access to its keys, errors at the right place."""

    def __init__(self, value: Any, span: Span, what: str):
        if not isinstance(value, Located):
            raise PolicySchemaError(f"{what} must be a mapping of keys to values, got {_describe(value)}", span)
        self.map, self.span, self.what = value, value.span, what
        self.used: set = set()

    def has(self, key: str) -> bool:
        return key in self.map and self.map[key] is not None

    def value_span(self, key: str) -> Span:
        return self.map.value_spans.get(key, self.span)

    def get(self, key: str, expected: type | tuple = str, required: bool = True, default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.map or self.map[key] is None:
            if required:
                self._missing(key)
            return default
        value = self.map[key]
        if isinstance(value, bool) and not _written_as_boolean(self.value_span(key)):
            raise PolicySchemaError(
                f"{self.what}: {key!r} is written {self.value_span(key).text()!r}, which YAML reads as "
                f"{str(value).lower()}: write true or false", self.value_span(key),
            )
        numeric = expected is int or (isinstance(expected, tuple) and int in expected)
        if numeric and isinstance(value, str) and _CHINESE_NUMBER.match(value.strip()):
            raise PolicySchemaError(
                f"{self.what}: {key!r} is written {value!r}: write the number in digits, in yuan, "
                "without units or 万 (100万元 is 1000000)", self.value_span(key),
            )
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise PolicySchemaError(f"{self.what}: {key!r} must be a whole number, got {_describe(value)}", self.value_span(key))
        if expected is str and isinstance(value, int | Decimal) and not isinstance(value, bool):
            value = str(value)  # a version like 2011.1 written without quotes
        if not isinstance(value, expected):
            raise PolicySchemaError(
                f"{self.what}: {key!r} must be {_expected(expected)}, got {_describe(value)}", self.value_span(key)
            )
        if isinstance(value, str) and not value.strip():
            raise PolicySchemaError(f"{self.what}: {key!r} must not be empty", self.value_span(key))
        return value

    def _missing(self, key: str) -> None:
        """A required key that is absent or empty, reported where the writer put it: the
        empty key itself, or a misspelled key close to it."""
        if key in self.map:
            raise PolicySchemaError(f"{self.what}: {key!r} has no value", self.map.key_spans[key])
        unknown = [k for k in self.map if isinstance(k, str) and k not in self.used]
        close = difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)
        if close:
            raise PolicySchemaError(
                f"{self.what}: unknown key {close[0]!r} where {key!r} is needed", self.map.key_spans[close[0]], suggestion=key,
            )
        raise PolicySchemaError(f"{self.what} needs the key {key!r}", self.span)

    def section(self, key: str, what: str, required: bool = True) -> Section | None:
        self.used.add(key)
        if not self.has(key):
            if required:
                self._missing(key)
            return None
        return Section(self.map[key], self.value_span(key), what)

    def items(self, key: str, what: str, required: bool = True) -> list[tuple[Any, Span]]:
        """A YAML list under ``key`` as (item, span) pairs."""
        self.used.add(key)
        if not self.has(key):
            if required:
                self._missing(key)
            return []
        value = self.map[key]
        if not isinstance(value, LocatedList):
            raise PolicySchemaError(f"{what} must be a list (items start with '-'), got {_describe(value)}", self.value_span(key))
        return list(zip(value, value.item_spans, strict=True))

    def finish(self) -> None:
        """Refuse keys nobody read: usually a typo, so suggest the closest allowed key."""
        for key in self.map:
            if key not in self.used:
                allowed = sorted(self.used)
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                raise PolicySchemaError(
                    f"{self.what}: unknown key {key!r}; allowed: {', '.join(allowed)}",
                    self.map.key_spans[key],
                    suggestion=close[0] if close else None,
                )


def _written_as_boolean(span: Span) -> bool:
    """YAML 1.1 also reads yes/no/on/off as booleans; the policy language writes only
    true/false, so that 'when: yes' or 'value: off' is never a silent boolean."""
    return span.text().strip("'\"").lower() in ("true", "false")


_CHINESE_NUMBER = re.compile(r"^[0-9.,]*[零〇一二两三四五六七八九十百千万亿]+[零〇一二两三四五六七八九十百千万亿0-9.,]*元?$|^[0-9.,]+元$")


def _describe(value: Any) -> str:
    if isinstance(value, Located):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _show(value: Any) -> str:
    """A YAML scalar as legal staff wrote it: 0.12345 and 2012-01-01, not Decimal('0.12345')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | dt.date):
        return str(value)
    return repr(value)


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _expected(expected) -> str:
    names = {str: "text", int: "a whole number", bool: "true or false", dt.date: "a date (YYYY-MM-DD)"}
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, t.__name__) for t in expected)
    return names.get(expected, expected.__name__)


def _identifier(name: Any, span: Span, what: str, pattern: re.Pattern = IDENTIFIER) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise PolicySchemaError(
            f"{what} {name!r} must be lower-case ASCII letters, digits and '_', starting with a letter",
            span,
        )
    if name in RESERVED_NAMES and pattern is IDENTIFIER:
        raise PolicySchemaError(f"{what} {name!r} is a reserved word", span)
    return name


def _named_entries(section: Section, what: str) -> Iterator[tuple[str, Section]]:
    """Each ``name: {...}`` entry of ``section`` (facts, parameters, lists), its name checked."""
    for name in section.map:
        _identifier(name, section.map.key_spans[name], f"{what} name" if what != "list" else "list id")
        section.used.add(name)
        yield name, Section(section.map[name], section.value_span(name), f"{what} {name!r}")


def expression_locator(text: str, span: Span):
    """Map an offset inside an expression scalar to a file span (exact for one-line scalars)."""

    def locate(offset: int, length: int) -> Span:
        line = span.source_line or ""
        start = span.column - 1
        if line[start:start + 1] in ("'", '"'):
            start += 1
        if line[start:start + len(text)] == text:
            return span.shifted(start - span.column + 1 + offset, length)
        return span  # folded or multi-line text: point at the scalar itself

    return locate


def parse_at(text: Any, span: Span, what: str) -> ast.Node:
    if isinstance(text, bool) or isinstance(text, int | Decimal):
        text = str(text).lower() if isinstance(text, bool) else str(text)
    if not isinstance(text, str):
        raise PolicySchemaError(f"{what} must be an expression written as text, got {_describe(text)}", span)
    return parse_expression(text, expression_locator(text, span))


# -- facts ----------------------------------------------------------------------------------
def read_facts(section: Section) -> dict[str, Fact]:
    return {name: read_fact(name, entry) for name, entry in _named_entries(section, "fact")}


def read_fact(name: str, section: Section) -> Fact:
    type_name = section.get("type")
    if type_name not in TYPE_NAMES:
        close = difflib.get_close_matches(type_name, TYPE_NAMES, n=1)
        raise PolicySchemaError(
            f"fact {name!r}: unknown type {type_name!r}; one of {', '.join(TYPE_NAMES)}",
            section.value_span("type"),
            suggestion=close[0] if close else None,
        )
    value_aliases = ()
    if type_name == "enum":
        choices = section.items("values", f"the values of enum fact {name!r}")
        if not choices:
            raise PolicySchemaError(f"enum fact {name!r} needs at least one value", section.value_span("values"))
        values, value_aliases = read_enum_values(name, choices)
        value_type = enum_type(values)
    else:
        value_type = SIMPLE_TYPES[type_name]
    bounds = {}
    for key in ("min", "max"):
        if section.has(key):
            bound = section.get(key, (int, Decimal, dt.date))
            if not _fits(bound, value_type):
                raise PolicySchemaError(f"fact {name!r}: {key} {_show(bound)} is not {_a(type_name)}", section.value_span(key))
            bounds[key] = bound
    if bounds and value_type.kind not in (Kind.INTEGER, Kind.DECIMAL, Kind.DATE):
        raise PolicySchemaError(f"fact {name!r}: min/max apply to numbers and dates only", section.span)
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise PolicySchemaError(f"fact {name!r}: min {bounds['min']} is above max {bounds['max']}", section.value_span("min"))
    fmt = section.get("format", required=False)
    if fmt not in (None, "uscc"):
        raise PolicySchemaError(f"fact {name!r}: unknown format {fmt!r}; the only format is 'uscc'", section.value_span("format"))
    if fmt and value_type != STRING:
        raise PolicySchemaError(f"fact {name!r}: format 'uscc' needs type string", section.value_span("format"))
    aliases = tuple(alias for alias, _ in section.items("aliases", f"aliases of {name!r}", required=False))
    fact = Fact(
        name=name,
        type=value_type,
        label=section.get("label", required=False),
        description=section.get("description", required=False),
        unit=section.get("unit", required=False),
        min=bounds.get("min"),
        max=bounds.get("max"),
        format=fmt,
        value_aliases=value_aliases,
        aliases=aliases,
        optional=section.get("optional", bool, required=False, default=False),
        span=section.span,
    )
    section.finish()
    return fact


def _fits(value: Any, value_type: Type) -> bool:
    if isinstance(value, bool):
        return value_type == BOOLEAN
    if value_type == INTEGER:
        return isinstance(value, int)
    if value_type == DECIMAL:
        return isinstance(value, int | Decimal) and (
            isinstance(value, int) or -value.as_tuple().exponent <= DECIMAL_PLACES
        )
    if value_type == DATE:
        return isinstance(value, dt.date)
    if value_type.kind is Kind.ENUM:
        return value in value_type.choices
    return isinstance(value, str)


# -- parameters -------------------------------------------------------------------------------
def read_parameters(section: Section | None) -> dict[str, Parameter]:
    if section is None:
        return {}
    return {name: read_parameter(name, entry) for name, entry in _named_entries(section, "parameter")}


def read_parameter(name: str, section: Section) -> Parameter:
    type_name = section.get("type")
    if type_name not in SIMPLE_TYPES or type_name == "string":
        raise PolicySchemaError(
            f"parameter {name!r}: type must be integer, decimal, boolean or date, got {type_name!r}",
            section.value_span("type"),
        )
    value_type = SIMPLE_TYPES[type_name]
    values = []
    for item, span in section.items("values", f"the values of parameter {name!r}"):
        entry = Section(item, span, f"a value of parameter {name!r}")
        start = entry.get("from", dt.date)
        value = entry.get("value", (int, Decimal, bool, dt.date))
        if not _fits(value, value_type):
            raise PolicySchemaError(
                f"parameter {name!r}: {_show(value)} is not {_a(type_name)}"
                + (f" with at most {DECIMAL_PLACES} decimal places" if type_name == "decimal" else ""),
                entry.value_span("value"),
            )
        reference = entry.get("reference")
        entry.finish()
        if values and start <= values[-1].start:
            raise PolicySchemaError(
                f"parameter {name!r}: dated values must be in increasing order of 'from' ({start} after {values[-1].start})",
                entry.value_span("from"),
            )
        values.append(DatedValue(start, value, reference, span))
    parameter = Parameter(
        name=name,
        type=value_type,
        values=tuple(values),
        description=section.get("description", required=False),
        unit=section.get("unit", required=False),
        span=section.span,
    )
    section.finish()
    return parameter


# -- rules ----------------------------------------------------------------------------------------
def read_lists(section: Section | None) -> dict[str, SanctionList]:
    if section is None:
        return {}
    lists = {}
    for name, entry in _named_entries(section, "list"):
        lists[name] = SanctionList(name, entry.get("title"), entry.get("description", required=False))
        entry.finish()
    return lists


def read_citation(section: Section) -> Citation:
    citation = Citation(
        document=section.get("document"),
        text=section.get("text").strip(),
        article=section.get("article", required=False),
        span=section.span,
    )
    section.finish()
    return citation


def read_rule(item: Any, span: Span, scope, facts, lists) -> Rule:
    section = Section(item, span, "a rule")
    rule_id = _identifier(section.get("id"), section.value_span("id"), "rule id")
    what = f"rule {rule_id!r}"
    section.what = what
    citation = read_citation(section.section("citation", f"the citation of {what}"))
    condition_text = section.get("when", (str, bool))
    condition = check(
        parse_at(condition_text, section.value_span("when"), f"the condition of {what}"),
        scope, BOOLEAN, f"condition of {what} ('when')",
    )
    findings = tuple(
        read_finding(entry, entry_span, scope, facts, what, condition)
        for entry, entry_span in section.items("findings", f"the findings of {what}", required=False)
    )
    sanctions = tuple(
        read_sanction(entry, entry_span, lists, what)
        for entry, entry_span in section.items("sanctions", f"the sanctions of {what}", required=False)
    )
    if not findings and not sanctions:
        raise PolicySchemaError(f"{what} has neither findings nor sanctions: it would change nothing", span)
    rule = Rule(
        id=rule_id,
        title=section.get("title"),
        citation=citation,
        condition=condition,
        condition_text=str(condition_text),
        findings=findings,
        sanctions=sanctions,
        span=span,
        never_applies=_never_applies(condition, scope, what),
        warnings=_constant_warnings(condition, findings, section, what),
    )
    section.finish()
    return rule


def _in_order_of_reads(items: list[tuple[Any, Span]]) -> list[tuple[Any, Span]]:
    """The rules in an order in which every rule comes after those whose results it reads
    (amount_of, fired), otherwise as written. A cycle is an error at one of its reads."""
    reads: dict[str, list[ast.Call]] = {}
    ids = []
    for item, span in items:
        rule_id = item.get("id") if isinstance(item, Located) else None
        ids.append(rule_id)
        if not isinstance(rule_id, str) or rule_id in reads:
            continue  # reported when the rule is read
        calls = []
        try:
            section = Section(item, span, "a rule")
            texts = [("when", item, section)] + [
                ("amount", finding, Section(finding, finding_span, "a finding"))
                for finding, finding_span in section.items("findings", "findings", required=False)
                if isinstance(finding, Located)
            ]
            for key, mapping, place in texts:
                if isinstance(mapping.get(key), str):
                    calls.extend(ast.results_read(parse_at(mapping[key], place.value_span(key), key)))
        except PolicyError:
            pass  # reported, at its place, when the rule is read
        reads[rule_id] = calls
    order, done, visiting = [], set(), []

    def visit(rule_id: str) -> None:
        if rule_id in done or rule_id not in reads:
            return
        if rule_id in visiting:
            cycle = visiting[visiting.index(rule_id):] + [rule_id]
            call = next(c for c in reads[cycle[-2]] if c.args[0].name == rule_id)
            raise PolicySchemaError(
                "rules " + " -> ".join(repr(r) for r in cycle) + " read each other's results "
                "(amount_of, fired): there is no order in which to judge them", call.span,
            )
        visiting.append(rule_id)
        for call in reads[rule_id]:
            visit(call.args[0].name)
        visiting.pop()
        done.add(rule_id)
        order.append(rule_id)

    for rule_id in reads:
        visit(rule_id)
    position = {rule_id: index for index, rule_id in enumerate(order)}
    ranked = sorted(range(len(items)), key=lambda i: (position.get(ids[i], -1) if isinstance(ids[i], str) else -1, i))
    return [items[i] for i in ranked]


def _results_of(rule: Rule) -> dict[str, Symbol]:
    """What later rules may read of ``rule``: whether it fired and, with one finding, its
    amount (0 when it did not fire)."""
    found = {result_key("fired", rule.id): Symbol("result", BOOLEAN)}
    if len(rule.findings) == 1:
        low, high = rule.findings[0].amount.interval or (0, 0)
        found[result_key("amount_of", rule.id)] = Symbol("result", INTEGER, (min(low, 0), max(high, 0)))
    return found


def _constant_warnings(condition: ast.Node, findings, section: Section, what: str) -> tuple[PolicyWarning, ...]:
    """A condition that folds to a constant and an amount that is always 0: almost always a
    slip (a comparison lost in editing), never wrong enough to refuse the policy."""
    found = []
    if isinstance(condition, ast.Literal):
        holds = "always applies: its condition is always true" if condition.value else "can never apply: its condition is always false"
        found.append(PolicyWarning(f"{what} {holds}", section.value_span("when")))
    for finding in findings:
        if isinstance(finding.amount, ast.Literal) and finding.amount.value == 0:
            found.append(PolicyWarning(f"{what}: the amount is always 0", finding.span))
    return tuple(found)


def _never_applies(condition: ast.Node, scope, what: str) -> PolicyWarning | None:
    """The warning for a condition that no value in the declared ranges can make true (at
    the part that cannot hold), or None. Only a warning: a shared catalogue may narrow a
    range under a policy written before, and such a rule simply never fires."""
    facts = {name: symbol.interval for name, symbol in scope.items() if symbol.kind == "fact" and symbol.interval is not None}
    try:
        narrow(condition, facts)
    except Contradiction as contradiction:
        return PolicyWarning(f"{what} can never apply: {contradiction.reason()}", contradiction.node.span or condition.span)
    return None


def read_finding(item, span, scope, facts, what, condition=None) -> FindingSpec:
    section = Section(item, span, f"a finding of {what}")
    kind_name = section.get("kind")
    kinds = [kind.value for kind in FindingKind]
    if kind_name not in kinds:
        close = difflib.get_close_matches(kind_name, kinds, n=1)
        raise PolicySchemaError(
            f"unknown finding kind {kind_name!r}; one of {', '.join(kinds)}",
            section.value_span("kind"),
            suggestion=close[0] if close else None,
        )
    amount_text = section.get("amount", (str, int))
    amount = check(
        parse_at(amount_text, section.value_span("amount"), f"the amount of {what}"),
        scope, INTEGER, f"amount of {what}", when=condition,  # computed only when it holds
    )
    if amount.interval is not None and amount.interval[0] < 0:
        raise PolicyTypeError(
            f"the amount of {what} can be negative ({amount.interval[0]}); amounts are owed sums >= 0, use kind 'reward' for payments to the subject",
            section.value_span("amount"),
        )
    payer = section.get("payer")
    if payer != ENTERPRISE:
        fact = facts.get(payer)
        if fact is None or not fact.type.categorical:
            payers = [ENTERPRISE, *(n for n, f in facts.items() if f.type.categorical and n != payer)]
            close = difflib.get_close_matches(payer, payers, n=1)
            raise PolicySchemaError(
                f"payer {payer!r} must be 'enterprise' or a text/enum fact naming the payer (such as 'district')",
                section.value_span("payer"),
                suggestion=close[0] if close else None,
            )
        if fact.optional:
            raise PolicySchemaError(
                f"payer {payer!r} is an optional fact: a finding needs a payer on every record it fires on",
                section.value_span("payer"),
            )
    finding = FindingSpec(FindingKind(kind_name), amount, str(amount_text), payer, span)
    section.finish()
    return finding


def read_sanction(item, span, lists, what) -> SanctionSpec:
    section = Section(item, span, f"a sanction of {what}")
    list_id = section.get("list")
    if list_id not in lists:
        close = difflib.get_close_matches(list_id, list(lists), n=1)
        raise PolicySchemaError(
            f"unknown list {list_id!r}; declare it under 'lists:' (declared: {', '.join(lists) or 'none'})",
            section.value_span("list"),
            suggestion=close[0] if close else None,
        )
    sanction = SanctionSpec(list_id, section.get("reason"), span)
    section.finish()
    return sanction


# -- tests ------------------------------------------------------------------------------------------
def read_tests(section: Section, facts, rules, lists) -> tuple[TestCase, ...]:
    defaults_section = section.section("test_defaults", "test_defaults", required=False)
    defaults = dict(defaults_section.map) if defaults_section else {}
    if defaults_section:
        for key in defaults:
            if key not in facts:
                raise PolicySchemaError(f"test_defaults: {key!r} is not a fact of this policy", defaults_section.map.key_spans[key])
    cases, names = [], set()
    rule_ids = {rule.id for rule in rules}
    for item, span in section.items("tests", "tests", required=False):
        case = Section(item, span, "a test case")
        name = case.get("name")
        if name in names:
            raise PolicySchemaError(f"duplicate test case name {name!r}", case.value_span("name"))
        names.add(name)
        case.what = f"test case {name!r}"
        children = None
        if case.has("cases"):  # an enterprise ('given') judged with its cases
            children = tuple(
                {**defaults, **_given_facts(Section(item, item_span, f"a case of {case.what}"), facts, case.what)}
                for item, item_span in case.items("cases", f"the cases of {case.what}")
            )
        given_section = case.section("given", f"the facts given in {case.what}")
        given = {**defaults, **_given_facts(given_section, facts, case.what)}
        expect = case.section("expect", f"the expected outcome of {case.what}")
        findings = sanctions = None
        if expect.has("findings") or "findings" in expect.map:
            findings = tuple(
                _expected_finding(entry, entry_span, rule_ids, case.what)
                for entry, entry_span in expect.items("findings", "expected findings", required=False)
            )
        if expect.has("sanctions") or "sanctions" in expect.map:
            sanctions = tuple(
                _expected_sanction(entry, entry_span, rule_ids, lists, case.what)
                for entry, entry_span in expect.items("sanctions", "expected sanctions", required=False)
            )
        total = expect.get("total_yuan", int, required=False)
        expect.finish()
        cases.append(TestCase(name, given, case.get("as_of", dt.date, required=False), findings, sanctions, total, span, children))
        case.finish()
    return tuple(cases)


def _given_facts(section: Section, facts, what: str) -> dict:
    for key in section.map:
        if key not in facts:
            close = difflib.get_close_matches(str(key), list(facts), n=1)
            raise PolicySchemaError(
                f"{what}: {key!r} is not a fact of this policy",
                section.map.key_spans[key],
                suggestion=close[0] if close else None,
            )
    return dict(section.map)


def _expected_finding(item, span, rule_ids, what) -> ExpectedFinding:
    section = Section(item, span, f"an expected finding of {what}")
    rule = section.get("rule")
    if rule not in rule_ids:
        close = difflib.get_close_matches(rule, list(rule_ids), n=1)
        raise PolicySchemaError(f"{what}: no rule {rule!r} in this policy", section.value_span("rule"), suggestion=close[0] if close else None)
    status = section.get("status", required=False)
    if status not in (None, "imposed", "superseded"):
        raise PolicySchemaError(f"{what}: status is 'imposed' or 'superseded', got {status!r}", section.value_span("status"))
    finding = ExpectedFinding(
        rule, section.get("amount_yuan", int), section.get("payer", required=False), section.get("kind", required=False),
        section.get("case", required=False), status,
    )
    section.finish()
    return finding


def _expected_sanction(item, span, rule_ids, lists, what) -> ExpectedSanction:
    section = Section(item, span, f"an expected sanction of {what}")
    list_id = section.get("list")
    if list_id not in lists:
        raise PolicySchemaError(f"{what}: no list {list_id!r} in this policy", section.value_span("list"))
    rule = section.get("rule", required=False)
    if rule is not None and rule not in rule_ids:
        raise PolicySchemaError(f"{what}: no rule {rule!r} in this policy", section.value_span("rule"))
    section.finish()
    return ExpectedSanction(list_id, rule)


# -- files ---------------------------------------------------------------------------------------------
def read_policy(path: str | Path, shared: Any = None, document: Any = None) -> Policy:
    """Load and check one policy file. ``shared``: the folder's catalogue (``_catalogue.py``),
    or a plain dict of shared facts."""
    path = Path(path)
    if document is None:
        document = load_yaml_file(path)
    if not isinstance(document, Located):
        raise PolicySchemaError("a policy file must be a mapping with 'policy:', 'facts:' and 'rules:'", Span(str(path), 1, 1))
    top = Section(document, document.span, "the policy file")
    head = top.section("policy", "the 'policy' header")
    policy_id = _identifier(head.get("id"), head.value_span("id"), "policy id", POLICY_ID)
    domain = _identifier(head.get("domain", required=False, default="enterprise"), head.value_span("domain"), "domain", POLICY_ID)
    kinds = dict(getattr(shared, "kinds", {}))
    if kinds and domain not in kinds and not head.has("subject"):
        close = difflib.get_close_matches(domain, list(kinds), n=1)
        raise PolicySchemaError(
            f"domain {domain!r} is not a kind this folder declares ({', '.join(kinds)}); declare it, "
            "or give the policy's own 'subject:' fact", head.value_span("domain"), suggestion=close[0] if close else None,
        )
    shared_facts = shared.visible_to(domain) if hasattr(shared, "visible_to") else dict(shared or {})
    own = read_facts(top.section("facts", "facts", required=False)) if top.has("facts") else {}
    if domain in kinds:
        own = {name: attrs.evolve(fact, record_kind=domain) for name, fact in own.items()}
    top.used.add("facts")
    for name, fact in own.items():
        if name in shared_facts:
            raise PolicySchemaError(f"fact {name!r} is already declared in the folder's fact catalogue", fact.span)
    facts = {**shared_facts, **own}
    parameters = read_parameters(top.section("parameters", "parameters", required=False))
    for name, parameter in parameters.items():
        if name in facts:
            raise PolicySchemaError(f"parameter {name!r} has the name of a fact", parameter.span)
    lists = read_lists(top.section("lists", "lists", required=False))
    scope = scope_of(facts, parameters)
    rules, seen = [], {}
    scope = dict(scope)
    for item, span in _in_order_of_reads(top.items("rules", "rules")):
        rule = read_rule(item, span, scope, facts, lists)
        if rule.id in seen:
            raise PolicySchemaError(f"duplicate rule id {rule.id!r} (first at line {seen[rule.id].line})", span)
        seen[rule.id] = span
        rules.append(rule)
        scope.update(_results_of(rule))
    if not rules:
        raise PolicySchemaError("a policy needs at least one rule", top.value_span("rules"))
    subject = head.get("subject", required=False, default=kinds[domain].key if domain in kinds else "uscc")
    if subject not in facts:
        raise PolicySchemaError(f"subject {subject!r} is not a declared fact", head.value_span("subject") if head.has("subject") else head.span)
    effective = head.get("effective", dt.date)
    expires = head.get("expires", dt.date, required=False)
    if expires is not None and expires <= effective:
        raise PolicySchemaError(f"expires {expires} is not after effective {effective}", head.value_span("expires"))
    for parameter in parameters.values():
        if parameter.values and parameter.values[0].start > effective:
            pass  # allowed: a rule reading it is inactive (with a warning) until then
    tests = read_tests(top, facts, rules, lists)
    policy = Policy(
        id=policy_id,
        title=head.get("title"),
        version=head.get("version"),
        effective=effective,
        authority=head.get("authority"),
        document=head.get("document"),
        number=head.get("number", required=False),
        expires=expires,
        source=head.get("source", required=False),
        domain=domain,
        kinds={kind: kinds[kind] for kind in getattr(shared, "lineage", lambda _: ())(domain)},
        subject=subject,
        facts=facts,
        parameters=parameters,
        lists=lists,
        rules=tuple(rules),
        tests=tests,
        path=str(path),
        content_hash=hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None,
        span=head.span,
    )
    head.finish()
    top.finish()
    return policy
