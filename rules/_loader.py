"""Read policy YAML into the model of ``_schema.py``, checking everything on the way.

Each error names ``file:line:col`` and says what was expected. The order of work: the YAML
(``_yaml.py``), the shape of each section (``_sections.py``), then every expression through
the parser and the checker with the policy's own scope; rules in the order of the results
they read (``_rule_order.py``), then the test cases (``_test_cases.py``). A folder's fact
catalogues (``registry.yaml``, ``cases.yaml``; ``_catalogue.py``) give the shared facts.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs

from . import _ast as ast
from ._check import check, known_set
from ._checks import read_checks
from ._enum_values import read_enum_values
from ._errors import PolicySchemaError, PolicyTypeError, Span
from ._money import ROUNDING_MODES, UNITS, YUAN, Rounding
from ._rule_order import in_order_of_reads, results_of
from ._rule_warnings import constant_warnings, never_applies
from ._schema import (
    ENTERPRISE,
    Citation,
    DatedValue,
    Fact,
    FindingKind,
    FindingSpec,
    Parameter,
    Policy,
    Rule,
    SanctionList,
    SanctionSpec,
    scope_of,
)
from ._sections import (
    POLICY_ID,
    SIMPLE_TYPES,
    TYPE_NAMES,
    Section,
    _a,
    _identifier,
    _named_entries,
    _show,
    parse_at,
)
from ._test_cases import read_tests
from ._types import (
    BOOLEAN,
    DATE,
    DECIMAL,
    DECIMAL_PLACES,
    INT64_MAX,
    INTEGER,
    STRING,
    Kind,
    Type,
    enum_type,
)
from ._values import read_values
from ._workdays import CALENDAR_KEY, CalendarSymbol, calls, uses_calendar
from ._yaml import Located, load_yaml_file


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
        may_be_absent=section.get("may_be_absent", bool, required=False, default=False),
        span=section.span,
    )
    if fact.may_be_absent and not fact.optional:
        raise PolicySchemaError(f"fact {name!r}: 'may_be_absent' needs 'optional: true' (a source without the "
                                "column has it empty on every record)", section.value_span("may_be_absent"))
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
        # the slips found later (out of range, making an amount negative) are at the value
        values.append(DatedValue(start, value, reference, entry.value_span("value")))
    bounds = {}
    for key in ("min", "max"):
        if section.has(key):
            bound = section.get(key, (int, Decimal))
            if value_type.kind not in (Kind.INTEGER, Kind.DECIMAL) or not _fits(bound, value_type):
                raise PolicySchemaError(f"parameter {name!r}: '{key}' is a number of the parameter's type, "
                                        f"for an integer or decimal parameter", section.value_span(key))
            bounds[key] = bound
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise PolicySchemaError(f"parameter {name!r}: min {bounds['min']} is above max {bounds['max']}", section.value_span("min"))
    for dated in values:
        if ("min" in bounds and dated.value < bounds["min"]) or ("max" in bounds and dated.value > bounds["max"]):
            raise PolicySchemaError(f"parameter {name!r}: {_show(dated.value)} is outside its range "
                                    f"{bounds.get('min', '')}..{bounds.get('max', '')}", dated.span)
    parameter = Parameter(
        name=name,
        type=value_type,
        values=tuple(values),
        description=section.get("description", required=False),
        unit=section.get("unit", required=False),
        span=section.span,
        min=bounds.get("min"),
        max=bounds.get("max"),
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


def read_rounding(section: Section, inherited: Rounding = YUAN) -> Rounding:
    """``rounding: {unit: yuan|fen, mode: half_up|half_even|down|up}`` of a policy header or
    a rule: where its amounts are rounded, once; what it leaves out is ``inherited``."""
    if not section.has("rounding"):
        return inherited
    entry = section.section("rounding", f"the rounding of {section.what}")
    chosen = {}
    for key, allowed in (("unit", UNITS), ("mode", ROUNDING_MODES)):
        value = entry.get(key, required=False, default=getattr(inherited, key))
        if value not in allowed:
            close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.5)
            raise PolicySchemaError(
                f"unknown rounding {key} {value!r}; one of {', '.join(allowed)}",
                entry.value_span(key), suggestion=close[0] if close else None,
            )
        chosen[key] = value
    entry.finish()
    return Rounding(**chosen)


def read_rule(item: Any, span: Span, scope, facts, lists, default_start: tuple | None = None,
              parameters: Mapping[str, Parameter] | None = None, rounding: Rounding = YUAN) -> Rule:
    section = Section(item, span, "a rule")
    rule_id = _identifier(section.get("id"), section.value_span("id"), "rule id")
    what = f"rule {rule_id!r}"
    section.what = what
    rounding = read_rounding(section, rounding)
    citation = read_citation(section.section("citation", f"the citation of {what}"))
    condition_text = section.get("when", (str, bool))
    condition = check(
        parse_at(condition_text, section.value_span("when"), f"the condition of {what}"),
        scope, BOOLEAN, f"condition of {what} ('when')",
    )
    findings = tuple(
        read_finding(entry, entry_span, scope, facts, what, condition, parameters, rounding)
        for entry, entry_span in section.items("findings", f"the findings of {what}", required=False)
    )
    sanctions = tuple(
        read_sanction(entry, entry_span, lists, what, scope, condition, default_start)
        for entry, entry_span in section.items("sanctions", f"the sanctions of {what}", required=False)
    )
    lifts = tuple(
        read_sanction(entry, entry_span, lists, what, scope, condition, default_start, lift=True)
        for entry, entry_span in section.items("lifts", f"the lifts of {what}", required=False)
    )
    if not findings and not sanctions and not lifts:
        raise PolicySchemaError(f"{what} has neither findings nor sanctions nor lifts: it would change nothing", span)
    rule = Rule(
        id=rule_id,
        title=section.get("title"),
        citation=citation,
        condition=condition,
        condition_text=str(condition_text),
        findings=findings,
        sanctions=sanctions,
        lifts=lifts,
        span=span,
        never_applies=never_applies(condition, scope, what),
        warnings=constant_warnings(condition, findings, section, scope, what),
    )
    section.finish()
    return rule


def _negative_value(amount: ast.Node, parameters: Mapping[str, Parameter]) -> tuple[str, DatedValue] | None:
    """The first negative dated value of a parameter the amount reads, if any."""
    for name in ast.names(amount, "parameter"):
        for dated in getattr(parameters.get(name), "values", ()):
            if isinstance(dated.value, int | Decimal) and not isinstance(dated.value, bool) and dated.value < 0:
                return name, dated
    return None


def read_finding(item, span, scope, facts, what, condition=None, parameters=None,
                 rounding: Rounding = YUAN) -> FindingSpec:
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
    parsed = parse_at(amount_text, section.value_span("amount"), f"the amount of {what}")
    amount = check(parsed, scope, "numeric", f"amount of {what}", when=condition)  # used only when it holds
    _fits_in_units(check(parsed, scope, "numeric", f"amount of {what}", when=condition, narrowed_range=False), rounding,
                   section.value_span("amount"), what)
    if amount.interval is not None and amount.interval[0] < 0:
        culprit = _negative_value(amount, parameters or {})
        if culprit is not None:  # the slip is at the value, not at the amount that reads it
            name, dated = culprit
            raise PolicyTypeError(
                f"parameter {name!r} is {_show(dated.value)} from {dated.start}, which makes the amount of {what} "
                f"negative ({amount.interval[0]}); amounts are owed sums >= 0",
                dated.span,
            )
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
        if fact.optional and payer not in known_set(condition, True):
            raise PolicySchemaError(
                f"payer {payer!r} is an optional fact: a finding needs a payer on every record it fires on, "
                f"so the rule's condition must prove it set ('is_set({payer}) and ...'; another rule, under "
                f"'not is_set({payer})', may name the payer otherwise)",
                section.value_span("payer"),
            )
    finding = FindingSpec(FindingKind(kind_name), amount, str(amount_text), payer, span, rounding)
    section.finish()
    return finding


def _fits_in_units(declared: ast.Node, rounding: Rounding, span: Span, what: str) -> None:
    """The batch kernel rounds an amount held at scale s to the unit u as (value x s) x
    (u / g) / (s / g), g = gcd(u, s): the product must fit its int64 on every row, the rows
    where the rule does not fire included (so ``declared`` is ranged without the condition)."""
    if declared.interval is None:
        return
    widened = declared.scale * (rounding.per_yuan // math.gcd(rounding.per_yuan, declared.scale))
    low, high = (abs(Fraction(bound)) for bound in declared.interval)
    if max(low, high) * widened > INT64_MAX:
        raise PolicyTypeError(
            f"the amount of {what} may reach {math.ceil(max(low, high)):,} yuan, beyond what the batch kernel can "
            f"round exactly to the {rounding.unit} (declare a smaller 'max' for the facts it reads)",
            span,
        )


def read_sanction(item, span, lists, what, scope=None, condition=None, default_start=None, lift=False) -> SanctionSpec:
    """A list entry of a rule (``sanctions:``) or a lift (``lifts:``). ``from:`` and
    ``until:`` are date expressions, checked like an amount (under the rule's condition);
    a lift has no ``until:`` (its ``from:`` is the day the subject is off the list)."""
    section = Section(item, span, f"a {'lift' if lift else 'sanction'} of {what}")
    list_id = section.get("list")
    if list_id not in lists:
        close = difflib.get_close_matches(list_id, list(lists), n=1)
        raise PolicySchemaError(
            f"unknown list {list_id!r}; declare it under 'lists:' (declared: {', '.join(lists) or 'none'})",
            section.value_span("list"),
            suggestion=close[0] if close else None,
        )
    dates: dict[str, tuple] = {}
    for key, label in (("from", "start"), ("until", "planned end")):
        if not section.has(key):
            continue
        if lift and key == "until":
            raise PolicySchemaError(f"a lift of {what} ends entries: it has no 'until:' (give 'from:', the day it takes effect)",
                                    section.value_span(key))
        text = section.get(key, (str, dt.date))
        if isinstance(text, dt.date):
            text = f"date('{text.isoformat()}')"  # a plain YAML date is the date literal
        node = check(parse_at(text, section.value_span(key), f"the {label} of a list entry of {what}"),
                     scope, DATE, f"{label} of a list entry of {what} ('{key}')", when=condition)
        if ast.results_read(node):
            raise PolicySchemaError(f"the {label} of a list entry of {what} may not read other rules' results",
                                    section.value_span(key))
        dates[key] = (node, str(text))
    start, start_text = dates.get("from", default_start or (None, None))
    end, end_text = dates.get("until", (None, None))
    sanction = SanctionSpec(list_id, section.get("reason"), span, start=start, start_text=start_text, end=end,
                            end_text=end_text, lift=lift)
    section.finish()
    return sanction


def _default_start(kind, facts, scope, span) -> tuple | None:
    """A list entry's start when a sanction gives no ``from:``: for a kind that declares its
    decision date, that date when set (else the run's as_of); otherwise None, the run's as_of."""
    decided = getattr(kind, "decision_date", None)
    if not decided or decided not in facts:
        return None
    text = f"value_or({decided}, as_of)" if facts[decided].optional else decided
    return check(parse_at(text, span, "the default start of a list entry"), scope, DATE, "start of a list entry"), text


# -- files ---------------------------------------------------------------------------------------------
def _content_hash(path: Path, calendar) -> str | None:
    """The file's sha256, with the holiday table's when a rule counts working days: a new
    year in the table changes what the policy decides, so a run of it is not reused."""
    if not path.exists():
        return None
    digest = hashlib.sha256(path.read_bytes())
    if calendar is not None:
        digest.update(calendar.digest.encode())
    return digest.hexdigest()


def _checks_use_calendar(checks, kind) -> bool:
    """Whether the policy's checks, or its kind's, count working days: the run fingerprint
    then sees the holiday table."""
    return any(calls(c.holds) for c in (*checks, *(kind.checks if kind is not None else ())))


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
    calendar = getattr(shared, "calendar", None)
    if calendar is not None:  # the working-day functions read it (_workdays.py), checks too
        scope[CALENDAR_KEY] = CalendarSymbol(calendar)
    values = read_values(top.section("values", "values", required=False), scope)  # named steps, in scope
    # judged before the rules, with the policy's own scope (no results of rules in it yet)
    checks = read_checks(top, scope, facts, domain, read_citation)
    rules, seen = [], {}
    scope = dict(scope)
    default_start = _default_start(kinds.get(domain), facts, scope, head.span)
    rounding = read_rounding(head)
    for item, span in in_order_of_reads(top.items("rules", "rules")):
        rule = read_rule(item, span, scope, facts, lists, default_start, parameters, rounding)
        if rule.id in seen:
            raise PolicySchemaError(f"duplicate rule id {rule.id!r} (first at line {seen[rule.id].line})", span)
        seen[rule.id] = span
        rules.append(rule)
        scope.update(results_of(rule))
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
    policy_kinds = _kinds_of(shared, kinds, domain, facts, rules)
    # the facts of the kinds its roll-ups count, so that whoever judges the policy with those
    # records (evaluate_group, its test cases' 'cases:') reads what the roll-ups need; its
    # rules were checked against its own scope above and cannot name them
    for kind in policy_kinds:
        if kind != domain and hasattr(shared, "visible_to"):
            facts = {**shared.visible_to(kind), **facts}
    kind_checks = kinds[domain].checks if domain in kinds else ()
    tests = read_tests(top, facts, rules, lists, (*kind_checks, *checks), subject)
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
        kinds=policy_kinds,
        subject=subject,
        facts=facts,
        parameters=parameters,
        lists=lists,
        rules=tuple(rules),
        tests=tests,
        checks=checks,
        path=str(path),
        rounding=rounding,
        values=values,
        content_hash=_content_hash(path, calendar if uses_calendar(rules) or _checks_use_calendar(checks, kinds.get(domain)) else None),
        span=head.span,
    )
    head.finish()
    top.finish()
    return policy

def _kinds_of(shared, kinds, domain: str, facts, rules) -> dict:
    """The kinds a policy judges: its domain and ancestors, and the kinds whose records its
    rules' roll-ups count (an enterprise policy reading a count of cases judges its cases too)."""
    lineage = getattr(shared, "lineage", lambda _: ())
    names = list(lineage(domain))
    for rule in rules:
        for name in rule.reads():
            rollup = facts[name].rollup if name in facts else None
            if rollup is not None:
                names += [k for k in lineage(rollup.over) if k not in names]
    return {kind: kinds[kind] for kind in names}

