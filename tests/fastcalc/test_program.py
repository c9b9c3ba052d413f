"""The public API of fastcalc, on the shipped Zhengzhou policies.

Every test case that legal staff wrote inside the shipped policies is also run through the
kernel (one row each), and a generated registry is compared with the single-case engine.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from ecorules.engine import Evaluator
from ecorules.engine._generate import generate_registry
from ecorules.fastcalc import FindingSlot, PayerTotal, ScoreResult, compile_program
from ecorules.rules import ENTERPRISE, FindingKind, PolicySet, evaluate, load_policies
from ecorules.rules import _ast as ast
from ecorules.rules._records import coerce, coerce_record

AS_OF = dt.date(2012, 4, 14)
WATER = "zhengzhou.eco_water_interception@2011"
CREDIT = "zhengzhou.green_credit@2012"
RATING = "prc.enterprise_environmental_credit@2013"  # reads only roll-ups of cases (optional)
RED = "prc.green_credit_red_restriction@2013"  # the red grade's loan restriction: the same roll-up


@pytest.fixture(scope="module")
def shipped():
    return load_policies()


@pytest.fixture(scope="module")
def program(shipped):
    return compile_program(shipped, domain="enterprise")


def test_the_program_describes_its_columns_and_slots(program):
    assert program.columns == ("uscc", "untreated_outfalls", "responsible_unit", "district", "industrial",
                               "direct_discharge_cases",
                               "direct_discharge_cases_in_table", "credit_fined_50000_prior_year",
                               "credit_halted_prior_year", "credit_red_accidents_prior_year", "illegal_discharge_cases",
                               "high_pollution", "high_energy")
    assert program.rules == ((WATER, "untreated_outfall_deduction"), (WATER, "direct_discharge_deduction"),
                             (WATER, "untreated_outfall_deduction_by_unit"),
                             (RATING, "rating_required"), (RATING, "automatic_red"),
                             (CREDIT, "illegal_discharge_blacklist"), (CREDIT, "high_pollution_energy_restricted_loans"),
                             (RED, "red_no_new_loans"))
    assert program.findings == (
        (WATER, "untreated_outfall_deduction", 0, FindingKind.FISCAL_DEDUCTION, "district"),
        (WATER, "direct_discharge_deduction", 0, FindingKind.FISCAL_DEDUCTION, "district"),
        (WATER, "untreated_outfall_deduction_by_unit", 0, FindingKind.FISCAL_DEDUCTION, "responsible_unit"))
    assert isinstance(program.findings[0], FindingSlot) and program.findings[0].payer == "district"
    assert program.sanctions == ((RATING, "rating_required", "environmental_credit_rating_required"),
                                 (RATING, "automatic_red", "environmental_credit_red"),
                                 (CREDIT, "illegal_discharge_blacklist", "green_credit_blacklist"),
                                 (CREDIT, "high_pollution_energy_restricted_loans", "restricted_loans"),
                                 (RED, "red_no_new_loans", "green_credit_red_restricted"))
    assert "8 rules" in repr(program)


def test_only_the_policies_of_the_domain_are_compiled(shipped):
    approval = compile_program(list(shipped), domain="approval")
    assert approval.columns == ("request_id", "days_open", "document_kind")
    assert {key for key, _ in approval.rules} == {"zhengzhou.approval_time_limits@2012"}
    with pytest.raises(ValueError, match="no policy of domain 'nothing'"):
        compile_program(shipped, domain="nothing")


def _cases(shipped):
    for policy in shipped:
        for case in policy.tests:
            if case.children is not None:
                continue  # an enterprise with its cases: the batch run's tests (test_case_batch)
            yield pytest.param(policy, case, id=f"{policy.id}:{case.name}")


@pytest.mark.parametrize("policy, case", list(_cases(load_policies())))
def test_the_policies_own_cases_hold_in_the_kernel(shipped, policy, case):
    # judged by its own policy (every version of it), as `ecorules test` judges it: another
    # policy's checks (a fine outside art 83's range) are not this case's concern
    program = compile_program(PolicySet(tuple(p for p in shipped if p.id == policy.id)), domain=policy.domain)
    as_of = case.as_of or AS_OF
    row = {name: [case.given.get(name)] for name in program.columns}
    result = program.score(row, as_of=as_of)
    kind = shipped.kinds.get(policy.domain)
    if kind is not None and kind.law_date is not None:
        result = _by_law_in_force(shipped, program, policy, kind, case, row, as_of)
    if case.rejected is not None:  # a check must reject the row, on that column, by that check
        assert not result.valid[0]
        rejects = list(zip(result.reject_columns.tolist(), result.reject_reasons.tolist(), strict=True))
        assert any(column == case.rejected.column and (case.rejected.check is None or f"check {case.rejected.check}" in reason)
                   for column, reason in rejects), rejects
        return
    assert result.valid.all(), list(zip(result.reject_columns, result.reject_reasons, strict=True))
    found = []
    for f, slot in enumerate(program.findings):
        if slot.policy_key == policy.key and result.fired[program.rules.index((slot.policy_key, slot.rule_id)), 0]:
            # the ledger names the canonical value of an enum payer, as the kernel's codes do
            payer = case.given[policy.payer_key] if slot.payer == ENTERPRISE else coerce(shipped.facts[slot.payer], case.given[slot.payer])
            found.append((slot.rule_id, int(result.amounts[f, 0]), payer, slot.kind.value))
    if case.findings is not None:
        assert len(found) == len(case.findings)
        for (rule, amount, payer, kind), expected in zip(found, case.findings, strict=True):
            assert (rule, amount) == (expected.rule, expected.amount_yuan)
            assert expected.payer in (None, payer) and expected.kind in (None, kind)
    if case.sanctions is not None:
        listed = [(slot.list_id, slot.rule_id) for k, slot in enumerate(program.sanctions)
                  if slot.policy_key == policy.key and result.sanctions[k, 0]]
        assert [lst for lst, _ in listed] == [s.list for s in case.sanctions]
        assert all(s.rule in (None, rule) for s, (_, rule) in zip(case.sanctions, listed, strict=True))
    if case.total_yuan is not None:
        mine = sum(int(result.amounts[f, 0]) for f, slot in enumerate(program.findings)
                   if slot.policy_key == policy.key and slot.kind.payable)
        assert mine == case.total_yuan


def _by_law_in_force(shipped, program, policy, kind, case, row, as_of):
    """行政处罚法 art 37 for one row (engine/_group.judge_by_law_in_force): the law of the law
    date, unless that of the decision date is lighter for this statute."""
    law_day = evaluate(kind.law_date, coerce_record(shipped.facts, case.given, ast.names(kind.law_date, "fact")))
    decided = case.given.get(kind.decision_date) if kind.decision_date else None
    decided = coerce(shipped.facts[kind.decision_date], decided) if decided is not None else None
    decision_day = decided if decided is not None and decided <= as_of else as_of
    old, new = (program.score(row, as_of=as_of, law_date=day) for day in (law_day, decision_day))
    for result in (old, new):  # a check failing under either law rejects the case
        if not result.valid.all():
            return result

    def severity(result):
        fines = others = 0
        for f, slot in enumerate(program.findings):
            fired = result.fired[program.rules.index((slot.policy_key, slot.rule_id)), 0]
            if slot.policy_key.split("@")[0] == policy.id and fired and slot.kind.payable:
                if slot.kind is FindingKind.FINE:
                    fines += int(result.amounts[f, 0])
                else:
                    others += int(result.amounts[f, 0])
        entries = sum(int(result.sanctions[k, 0]) for k, slot in enumerate(program.sanctions)
                      if slot.policy_key.split("@")[0] == policy.id)
        return fines, entries, others

    return new if severity(new) < severity(old) else old


def test_a_generated_registry_agrees_with_the_single_case_engine(program, shipped):
    table = generate_registry(20_000, 11)
    result = program.score(table, as_of=AS_OF, threads=2)
    assert isinstance(result, ScoreResult) and result.n_rows == 20_000
    rng = np.random.default_rng(0)
    interesting = np.flatnonzero(result.fired.any(axis=0))
    sample = np.unique(np.concatenate([interesting[:300], rng.choice(20_000, 300, replace=False)]))
    rows = table.take(sample).to_pylist()
    by_payer: dict[str, int] = {}
    with Evaluator(shipped) as evaluator:
        for position, (row, record) in enumerate(zip(sample.tolist(), rows, strict=True)):
            decision = evaluator.evaluate(record, as_of=AS_OF)
            assert result.total_yuan[row] == decision.total_yuan
            amounts = [f.amount_yuan for f in decision.findings]
            mine = [int(result.amounts[f, row]) for f in range(len(program.findings))
                    if result.fired[program.rules.index(program.findings[f][:2]), row]]
            assert mine == amounts, (position, record)
            lists = sorted(s.list for s in decision.sanctions)
            assert sorted(program.sanctions[k].list_id for k in np.flatnonzero(result.sanctions[:, row])) == lists
            for finding in decision.findings:
                by_payer[finding.payer] = by_payer.get(finding.payer, 0) + finding.amount_yuan
    sub = program.score(table.take(sample), as_of=AS_OF)
    assert sub.totals_by_payer() == {k: v for k, v in by_payer.items() if v}


def test_outputs_can_be_reused_and_are_then_overwritten(program):
    table = generate_registry(5_000, 2)
    first = program.score(table, as_of=AS_OF)
    keep = {name: getattr(first, name).copy() for name in ("fired", "amounts", "sanctions", "total_yuan", "valid")}
    first.amounts[:] = -1
    first.fired[:] = 9
    second = program.score(table, as_of=AS_OF, out=first)
    assert second.amounts is first.amounts and second.fired is first.fired
    for name, values in keep.items():
        assert np.array_equal(getattr(second, name), values)


def test_per_payer_roll_ups_are_exact_integers(program):
    table = generate_registry(50_000, 4)
    result = program.score(table, as_of=AS_OF)
    districts = np.array(table.column("district").to_pylist(), dtype=object)
    expected: dict[str, int] = {}
    cases: dict[str, int] = {}
    for row in np.flatnonzero(result.total_yuan):
        label = districts[row]
        expected[label] = expected.get(label, 0) + int(result.total_yuan[row])
        cases[label] = cases.get(label, 0) + 1
    assert result.totals_by_payer() == expected
    assert result.case_counts_by_payer() == cases
    parts = {part.slot: part for part in result.payer_totals}
    # slot 2, the outfalls of a responsible unit: the generated registry has no such column
    assert set(parts) == {0, 1, 2} and all(isinstance(p, PayerTotal) for p in parts.values())
    assert not parts[2].yuan.any()
    assert parts[0].yuan.dtype == np.int64 and parts[0].labels[0] == "中原区"
    assert int(parts[0].yuan.sum() + parts[1].yuan.sum()) == int(result.total_yuan.sum())


def test_an_empty_batch(program):
    empty = {name: [] for name in program.columns}
    result = program.score(empty, as_of=AS_OF)
    assert result.n_rows == 0 and result.fired.shape == (8, 0) and result.totals_by_payer() == {}


def test_slots_pickle_as_the_call_that_made_them():
    """A judged part of a case table travels from a Spark executor with its program's slots:
    each slot class unpickles as ``cls(*fields)`` (pickle's default for a tuple subclass
    calls ``cls.__new__(cls, fields)``, which these signatures refuse), in every protocol."""
    import pickle

    from ecorules.fastcalc._compiled import CheckSlot, RuleSlot, SanctionSlot

    slots = [RuleSlot("p", "r"), FindingSlot("p", "r", 2, FindingKind.FINE, ENTERPRISE),
             SanctionSlot("p", "r", "watch"), CheckSlot("p", "c", "uscc", "bad {uscc}", ("uscc",))]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(slots, protocol=protocol))
        assert back == slots and [type(s) for s in back] == [type(s) for s in slots]
        assert back[1].kind is FindingKind.FINE and back[3].shown == ("uscc",)
