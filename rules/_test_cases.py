"""YAML test cases written inside a policy: the facts given, the outcome the law requires.

A case gives one record (``given:``), or an enterprise (``given:``) with its cases
(``cases:``); the expectations name rules, amounts, payers, cases and one-act-one-fine
statuses. Every key is checked against the policy's facts and rules, at its line.
"""

from __future__ import annotations

import datetime as dt
import difflib
from decimal import Decimal

from ._choices import normalize, resolve, spellings
from ._errors import PolicySchemaError, RecordError
from ._records import coerce
from ._schema import (
    ENTERPRISE,
    ExpectedFinding,
    ExpectedRejection,
    ExpectedSanction,
    FindingKind,
    TestCase,
)
from ._sections import Section


def read_tests(section: Section, facts, rules, lists, checks=(), subject: str | None = None) -> tuple[TestCase, ...]:
    """The policy's test cases; ``subject``, the fact identifying a record of its kind (its
    key), is what an expected finding's ``case:`` names: one of the records given."""
    defaults_section = section.section("test_defaults", "test_defaults", required=False)
    defaults = dict(defaults_section.map) if defaults_section else {}
    if defaults_section:
        _given_facts(defaults_section, facts, "test_defaults")
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
            # the records a finding's case: may name: the cases given, or the one record
            records = [child.get(subject) for child in (children if children is not None else (given,))]
            case_ids = [str(r) for r in records if r is not None] if subject else None
            findings = tuple(
                _expected_finding(entry, entry_span, rules, facts, case.what, case_ids)
                for entry, entry_span in expect.items("findings", "expected findings", required=False)
            )
        if expect.has("sanctions") or "sanctions" in expect.map:
            sanctions = tuple(
                _expected_sanction(entry, entry_span, rule_ids, lists, case.what)
                for entry, entry_span in expect.items("sanctions", "expected sanctions", required=False)
            )
        total = _yuan(expect, "total_yuan", required=False)
        rejected = None
        if expect.has("rejected"):
            rejected = _expected_rejection(expect, facts, checks, case.what, findings, sanctions, total)
        expect.finish()
        cases.append(TestCase(name, given, case.get("as_of", dt.date, required=False), findings, sanctions, total, span, children,
                              rejected))
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
        try:  # a value the records could not hold is a slip in the test, shown at the value
            coerce(facts[key], section.map[key])
        except RecordError as error:
            raise PolicySchemaError(f"{what}: {error}", section.value_span(key)) from None
    return dict(section.map)


def _yuan(section: Section, key: str, required: bool = True):
    """An expected sum of yuan: whole yuan, or yuan and fen (0.48) for a rule rounding to the fen."""
    value = section.get(key, (int, Decimal), required=required)
    if isinstance(value, Decimal):
        if -value.as_tuple().exponent > 2:
            raise PolicySchemaError(f"{key} {value} has more than two decimal places (fen)", section.value_span(key))
        value = value.quantize(Decimal("0.01"))
    return value


def _expected_finding(item, span, rules, facts, what, case_ids=None) -> ExpectedFinding:
    section = Section(item, span, f"an expected finding of {what}")
    by_id = {rule.id: rule for rule in rules}
    rule = section.get("rule")
    if rule not in by_id:
        close = difflib.get_close_matches(rule, list(by_id), n=1)
        raise PolicySchemaError(f"{what}: no rule {rule!r} in this policy", section.value_span("rule"), suggestion=close[0] if close else None)
    status = section.get("status", required=False)
    if status not in (None, "imposed", "superseded"):
        raise PolicySchemaError(f"{what}: status is 'imposed' or 'superseded', got {status!r}", section.value_span("status"))
    # A kind or payer the rule cannot produce would only fail at 'ecorules test' as "expected
    # finding not produced", far from the slip: refused here, at the value.
    specs = by_id[rule].findings
    kind = section.get("kind", required=False)
    if kind is not None:
        specs = _expected_kind(kind, specs, rule, section.value_span("kind"), what)
    payer = section.get("payer", required=False)
    if payer is not None:
        payer = _expected_payer(payer, specs, facts, rule, section.value_span("payer"), what)
    record = section.get("case", required=False)
    if record is not None and case_ids is not None and str(record) not in case_ids:
        # a misspelt id would only fail at 'ecorules test' as "expected finding not produced"
        close = difflib.get_close_matches(str(record), case_ids, n=1, cutoff=0.5)
        given = ", ".join(case_ids) or "none"
        raise PolicySchemaError(f"{what}: no case {record!r} among the records given ({given})",
                                section.value_span("case"), suggestion=close[0] if close else None)
    finding = ExpectedFinding(
        rule, _yuan(section, "amount_yuan"), payer, kind, record, status,
        section.value_span("amount_yuan"),
    )
    section.finish()
    return finding


def _expected_kind(kind, specs, rule: str, span, what):
    """The findings of the rule that are of ``kind``; an unknown kind, or one the rule does
    not find, is refused with the kind meant."""
    kinds = [k.value for k in FindingKind]
    if kind not in kinds:
        close = difflib.get_close_matches(str(kind), kinds, n=1)
        raise PolicySchemaError(f"{what}: unknown finding kind {kind!r}; one of {', '.join(kinds)}", span,
                                suggestion=close[0] if close else None)
    found = [spec for spec in specs if spec.kind.value == kind]
    if not found:
        own = sorted({spec.kind.value for spec in specs})
        raise PolicySchemaError(f"{what}: rule {rule!r} finds {', '.join(own) or 'nothing'}, never {kind!r}", span,
                                suggestion=own[0] if len(own) == 1 else None)
    return found


def _expected_payer(payer, specs, facts, rule: str, span, what) -> str:
    """The payer as the findings name it: an enum value (an alias stands for its value), or
    anything where the payer is the enterprise or a free-text fact."""
    enums = []
    for spec in specs:
        fact = facts.get(spec.payer)
        if spec.payer == ENTERPRISE or fact is None or not fact.type.choices:
            return payer  # the subject's own key, or a text column: nothing to check it against
        enums.append(fact)
    text = str(payer)
    for fact in enums:
        canonical = resolve(fact, text)
        if canonical is not None:
            return canonical
    if not enums:
        raise PolicySchemaError(f"{what}: rule {rule!r} has no finding to pay", span)
    fact = enums[0]
    table = spellings(fact.type.choices, fact.value_aliases)
    close = difflib.get_close_matches(normalize(text), list(table), n=1, cutoff=0.6)
    raise PolicySchemaError(f"{what}: payer {payer!r} is not an allowed {fact.label or fact.name}", span,
                            suggestion=table[close[0]] if close else None)


def _expected_rejection(expect: Section, facts, checks, what, findings, sanctions, total) -> ExpectedRejection:
    """``rejected: {column: fine_yuan, check: art83_fine_in_range}``: the record fails a
    check (of this policy, or one it shares with its folder), blaming that column."""
    section = expect.section("rejected", f"the rejection expected in {what}")
    if findings is not None or sanctions is not None or total is not None:
        raise PolicySchemaError(f"{what}: a rejected record has no findings, sanctions or total to expect",
                                expect.value_span("rejected"))
    column = section.get("column")
    if column not in facts:
        close = difflib.get_close_matches(str(column), list(facts), n=1)
        raise PolicySchemaError(f"{what}: {column!r} is not a fact of this policy", section.value_span("column"),
                                suggestion=close[0] if close else None)
    check_id = section.get("check", required=False)
    ids = [c.id for c in checks]
    if check_id is not None and check_id not in ids:
        close = difflib.get_close_matches(check_id, ids, n=1)
        raise PolicySchemaError(f"{what}: no check {check_id!r} in this policy", section.value_span("check"),
                                suggestion=close[0] if close else None)
    section.finish()
    return ExpectedRejection(column, check_id)


def _expected_sanction(item, span, rule_ids, lists, what) -> ExpectedSanction:
    section = Section(item, span, f"an expected sanction of {what}")
    list_id = section.get("list")
    if list_id not in lists:
        close = difflib.get_close_matches(str(list_id), list(lists), n=1)
        raise PolicySchemaError(f"{what}: no list {list_id!r} in this policy", section.value_span("list"),
                                suggestion=close[0] if close else None)
    rule = section.get("rule", required=False)
    if rule is not None and rule not in rule_ids:
        close = difflib.get_close_matches(str(rule), list(rule_ids), n=1)
        raise PolicySchemaError(f"{what}: no rule {rule!r} in this policy", section.value_span("rule"),
                                suggestion=close[0] if close else None)
    start = section.get("from", dt.date, required=False)
    open_ended = "until" in section.map and section.map["until"] is None
    section.used.add("until")
    end = None if open_ended else section.get("until", dt.date, required=False)
    lifted = section.get("lifted", bool, required=False, default=False)
    section.finish()
    return ExpectedSanction(list_id, rule, start, end, open_ended, lifted)


__all__ = ["read_tests"]
