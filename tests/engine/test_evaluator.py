"""The engine contract: what Evaluator.evaluate returns, how it fails, and how it holds up.

Both backends are held to the same contract; the long-running checks (100,000 evaluations
with flat memory, four threads on one evaluator) run on the durable backend, the one host
systems use, and compare against the python backend.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
from ecorules.engine import BACKENDS, Decision, Evaluator, RecordError, load_policies
from ecorules.rules import (
    ClosedError,
    EcorulesError,
    FindingKind,
    PolicySet,
    UsageError,
    read_policy,
)

DATA = Path(__file__).resolve().parents[1] / "data"
DAY = dt.date(2012, 4, 14)
USCC = "91410100123456788Y"
WATER = "zhengzhou.eco_water_interception@2011"
CREDIT = "zhengzhou.green_credit@2012"
# every district of the registry contract, so that a renamed district cannot go unnoticed
DISTRICTS = list(load_policies().facts["district"].type.choices)


def enterprise(**facts) -> dict:
    record = {
        "uscc": USCC, "name": "郑州示例化工有限公司", "district": "金水区", "industrial": True,
        "untreated_outfalls": 0, "direct_discharge_cases": 0, "illegal_discharge_cases": 0,
        "high_pollution": False, "high_energy": False,
    }
    record.update(facts)
    return record


def random_enterprise(rng: random.Random) -> dict:
    def count():
        return rng.choice([0, 0, 0, 0, 1, 2, rng.randint(0, 20), rng.randint(0, 10_000)])

    return enterprise(
        district=rng.choice(DISTRICTS), industrial=rng.random() < 0.7, untreated_outfalls=count(),
        direct_discharge_cases=count(), illegal_discharge_cases=count(),
        high_pollution=rng.random() < 0.2, high_energy=rng.random() < 0.2,
    )


@pytest.fixture(scope="module")
def shipped():
    return load_policies()


@pytest.fixture(scope="module", params=BACKENDS)
def evaluator(request, shipped):
    with Evaluator(shipped, backend=request.param) as evaluator:
        yield evaluator


# -- the Decision ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("written", "canonical"), [
    ("郑州经开区管委会", "郑州经济技术开发区"),  # a management committee's own staff
    ("经开区", "郑州经济技术开发区"),
    ("郑州高新区（管委会）", "郑州高新技术产业开发区"),  # full-width brackets
    ("\u3000金水区 ", "金水区"),  # a full-width space before, an ASCII one after
    ("郑 东 新 区", "郑东新区"),
])
def test_a_district_as_registries_write_it_pays_under_its_catalogue_name(evaluator, written, canonical):
    decision = evaluator.evaluate(enterprise(district=written, untreated_outfalls=1), as_of=DAY)
    assert [(f.payer, f.amount_yuan) for f in decision.findings] == [(canonical, 1_000_000)]
    assert decision.trace[0].reads["district"] == canonical


def test_decision_fields(evaluator):
    decision = evaluator.evaluate(
        enterprise(untreated_outfalls=2, direct_discharge_cases=1, high_energy=True, district="二七区"), as_of=DAY
    )
    assert isinstance(decision, Decision)
    assert decision.as_of == DAY and decision.domain == "enterprise" and decision.subject == USCC
    assert decision.policies == (WATER, CREDIT)  # id@version of every policy in force
    assert [(f.policy, f.rule, f.amount_yuan, f.payer, f.kind) for f in decision.findings] == [
        (WATER, "untreated_outfall_deduction", 2_000_000, "二七区", FindingKind.FISCAL_DEDUCTION),
        (WATER, "direct_discharge_deduction", 10_000_000, "二七区", FindingKind.FISCAL_DEDUCTION),
    ]
    first = decision.findings[0]
    assert first.citation.document == "《创新管理机制 强化管理手段努力推动环保工作科学发展》(郑州日报 2012-04-14)"
    assert first.citation.article == "七、(二)"
    assert first.title == "生态水系河道排污口未治理到位,每个扣款100万元"
    assert type(first.amount_yuan) is int
    assert [(s.policy, s.list, s.rule, s.uscc) for s in decision.sanctions] == [
        (CREDIT, "green_credit_blacklist", "illegal_discharge_blacklist", USCC),
        (CREDIT, "restricted_loans", "high_pollution_energy_restricted_loans", USCC),
    ]
    assert decision.sanctions[0].list_title == "违法企业信息共享(严格限制违法排污企业贷款)"
    assert decision.total_yuan == 12_000_000
    assert decision.rewards_yuan == 0
    assert decision.warnings == ()


def test_trace_names_every_rule_with_fired_and_the_values_read(evaluator):
    decision = evaluator.evaluate(enterprise(untreated_outfalls=3, industrial=False, direct_discharge_cases=1), as_of=DAY)
    trace = {(t.policy, t.rule): t for t in decision.trace}
    assert list(trace) == [
        (WATER, "untreated_outfall_deduction"), (WATER, "direct_discharge_deduction"),
        (WATER, "untreated_outfall_deduction_by_unit"),
        (CREDIT, "illegal_discharge_blacklist"), (CREDIT, "high_pollution_energy_restricted_loans"),
    ]
    outfalls = trace[(WATER, "untreated_outfall_deduction")]
    assert outfalls.fired is True  # no responsible unit in the record: its district pays
    assert outfalls.condition == "untreated_outfalls > 0 and not is_set(responsible_unit)"
    assert outfalls.reads == {"untreated_outfalls": 3, "responsible_unit": None,
                              "deduction_per_untreated_outfall": 1_000_000, "district": "金水区"}
    assert trace[(WATER, "untreated_outfall_deduction_by_unit")].fired is False
    direct = trace[(WATER, "direct_discharge_deduction")]
    assert direct.fired is False  # not industrial
    assert direct.reads == {"industrial": False, "direct_discharge_cases": 1, "deduction_per_direct_discharge_case": 10_000_000,
                            "district": "金水区", "direct_discharge_cases_in_table": None}  # unset: no case table
    assert trace[(CREDIT, "illegal_discharge_blacklist")].fired is True
    assert decision.fired_rules == ((WATER, "untreated_outfall_deduction"), (CREDIT, "illegal_discharge_blacklist"))


def test_to_dict_is_json_with_integer_amounts(evaluator):
    document = evaluator.evaluate(enterprise(untreated_outfalls=1, high_pollution=True), as_of=DAY).to_dict()
    text = json.dumps(document, ensure_ascii=False)
    again = json.loads(text)
    assert again["findings"][0]["amount_yuan"] == 1_000_000
    assert again["findings"][0]["kind"] == "fiscal_deduction" and again["findings"][0]["kind_label"] == "财政扣款"
    assert again["sanctions"][0]["uscc"] == USCC
    assert again["total_yuan"] == 1_000_000
    assert again["policies"] == [WATER, CREDIT]
    assert again["trace"][0]["reads"]["untreated_outfalls"] == 1


def test_a_record_matching_nothing_is_a_normal_empty_decision(evaluator):
    decision = evaluator.evaluate(enterprise(), as_of=DAY)
    assert decision.findings == () and decision.sanctions == ()
    assert decision.total_yuan == 0
    assert decision.policies == (WATER, CREDIT)
    assert len(decision.trace) == 5 and not any(t.fired for t in decision.trace)
    assert decision.warnings == ()


def test_extra_fields_of_a_record_are_ignored_even_names_durable_reserves(evaluator):
    decision = evaluator.evaluate({**enterprise(untreated_outfalls=1), "sid": "x", "id": 7, "$s": 1, "备注": "无"}, as_of=DAY)
    assert decision.total_yuan == 1_000_000


def test_values_in_text_form_are_accepted_as_in_a_csv_export(evaluator):
    decision = evaluator.evaluate(
        enterprise(untreated_outfalls="2", industrial="是", direct_discharge_cases="1", high_energy="否"), as_of=DAY
    )
    assert decision.total_yuan == 12_000_000


def test_closing_after_a_record_that_matched_nothing_does_not_crash():
    # durable-rules segfaulted in delete_state on a session where no rule had fired
    script = (
        "import datetime as dt\n"
        "from ecorules.engine import Evaluator, load_policies\n"
        f"record = {enterprise()!r}\n"
        "for _ in range(3):\n"
        "    with Evaluator(load_policies()) as evaluator:\n"
        "        evaluator.evaluate(record, as_of=dt.date(2012, 4, 14))\n"
        "print('closed')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout.strip()) == (0, "closed"), run.stderr[-2000:]


# -- invalid records ------------------------------------------------------------------------------------
INVALID = [
    ({"untreated_outfalls": -1}, "untreated_outfalls", "-1 is below the minimum 0"),
    ({"untreated_outfalls": 10_001}, "untreated_outfalls", "10001 is above the maximum 10000"),
    ({"untreated_outfalls": 1.5}, "untreated_outfalls", "must be a whole number, got 1.5"),
    ({"untreated_outfalls": "三"}, "untreated_outfalls", "must be a whole number, got '三'"),
    ({"untreated_outfalls": True}, "untreated_outfalls", "must be a whole number, got True"),
    ({"untreated_outfalls": None}, "untreated_outfalls", "is missing"),
    ({"district": "北京市"}, "district", f"'北京市' is not an allowed 所属区县 (none of its {len(DISTRICTS)} values is close)"),
    ({"district": "金水"}, "district", "'金水' is not an allowed 所属区县: did you mean 金水区?"),
    ({"district": "金水区管委会"}, "district", "did you mean 金水区?"),  # no 管委会 form is declared for it
    ({"industrial": "maybe"}, "industrial", "must be true or false, got 'maybe'"),
    ({"uscc": "91410100123456788X"}, "uscc", "is not a valid 统一社会信用代码"),
    ({"uscc": 914101001234567880}, "uscc", "must be text"),
]


@pytest.mark.parametrize(("change", "field", "message"), INVALID, ids=[i[1] + "-" + str(n) for n, i in enumerate(INVALID)])
def test_an_invalid_record_raises_record_error_naming_the_field_then_the_next_works(evaluator, change, field, message):
    with pytest.raises(RecordError) as caught:
        evaluator.evaluate(enterprise(**change), as_of=DAY)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert message in str(caught.value)
    assert evaluator.evaluate(enterprise(untreated_outfalls=1), as_of=DAY).total_yuan == 1_000_000


def test_a_missing_field_is_named(evaluator):
    record = enterprise()
    del record["high_energy"]
    with pytest.raises(RecordError, match="^high_energy: is missing$"):
        evaluator.evaluate(record, as_of=DAY)


def test_a_record_must_be_a_mapping(evaluator):
    with pytest.raises(RecordError, match="a record must be a mapping"):
        evaluator.evaluate([("uscc", USCC)], as_of=DAY)


def test_as_of_must_be_a_date_and_the_domain_must_exist(evaluator):
    """Our errors, which a host catches as EcorulesError, and as the built-in kinds too."""
    with pytest.raises(TypeError, match="as_of must be a datetime.date"):
        evaluator.evaluate(enterprise(), as_of=dt.datetime(2012, 4, 14, 8, 0))
    for wrong in ("2012-04-14", 20120414):
        with pytest.raises(UsageError, match="as_of must be a datetime.date"):
            evaluator.evaluate(enterprise(), as_of=wrong)
    with pytest.raises(EcorulesError, match="no policy of domain 'water'"):
        evaluator.evaluate(enterprise(), as_of=DAY, domain="water")
    with pytest.raises(ValueError, match="no policy of domain 'water'"):
        evaluator.evaluate(enterprise(), as_of=DAY, domain="water")
    with pytest.raises(ValueError, match="backend must be one of"):
        Evaluator(load_policies(), backend="drools")


def test_a_closed_evaluator_says_so_in_our_error():
    closed = Evaluator(load_policies())
    closed.close()
    with pytest.raises(ClosedError, match="the evaluator is closed"):
        closed.evaluate(enterprise(), as_of=DAY)


# -- memory and threads ---------------------------------------------------------------------------------
def memory_probe() -> dict:
    """100,000 durable evaluations after a warm-up: RSS per window of 50,000, threads, errors.

    Runs in a process of its own (see the test below): inside the big pytest process the
    allocator's arenas, grown by earlier tests' large arrays, made RSS move by several MiB in
    either direction while durable itself stays flat.
    """
    shipped = load_policies()
    rng = random.Random(20120414)
    records = [random_enterprise(rng) for _ in range(500)]
    with Evaluator(shipped, backend="durable") as durable, Evaluator(shipped, backend="python") as python:
        expected = [python.evaluate(record, as_of=DAY) for record in records]
        for record in records * 20:  # warm-up: 10,000
            durable.evaluate(record, as_of=DAY)
        gc.collect()
        threads = threading.active_count()
        process = psutil.Process()
        rss = [process.memory_info().rss]
        wrong = 0
        for i in range(100_000):
            decision = durable.evaluate(records[i % 500], as_of=DAY)
            if i % 97 == 0 and decision != expected[i % 500]:
                wrong += 1
            if i % 50_000 == 49_999:
                gc.collect()
                rss.append(process.memory_info().rss)
        return {
            "wrong": wrong,
            "growth_mib": [(b - a) / 2**20 for a, b in zip(rss, rss[1:], strict=False)],
            "new_threads": threading.active_count() - threads,
        }


@pytest.mark.slow
def test_100k_sequential_durable_evaluations_with_flat_memory_and_no_new_threads():
    probe = subprocess.run(
        [sys.executable, __file__, "--memory-probe"], capture_output=True, text=True, timeout=600, check=True
    )
    result = json.loads(probe.stdout.splitlines()[-1])
    first, second = result["growth_mib"]
    print(f"RSS growth over two windows of 50,000 durable evaluations: {first:.2f}, {second:.2f} MiB")
    assert result["wrong"] == 0
    assert result["new_threads"] == 0
    # A leak grows in every window: 20 bytes per evaluation would be 1 MiB per window.
    assert second < 1.0, f"RSS grew by {second:.2f} MiB over the second 50,000 evaluations"
    assert first + second < 3.0, f"RSS grew by {first + second:.1f} MiB over 100,000 evaluations"


def test_four_threads_on_one_evaluator_agree_with_the_python_backend(shipped):
    rng = random.Random(4)
    records = [random_enterprise(rng) for _ in range(400)]
    dates = [DAY, dt.date(2011, 6, 1), dt.date(2010, 1, 1)]
    with Evaluator(shipped, backend="python") as python:
        expected = {(i, d): python.evaluate(r, as_of=d) for i, r in enumerate(records) for d in dates}
    mismatches: list = []
    errors: list = []
    start = threading.Barrier(4)
    with Evaluator(shipped, backend="durable") as durable:

        def work(offset: int) -> None:
            try:
                start.wait()
                for n in range(1500):
                    i = (n * 7 + offset * 101) % len(records)
                    d = dates[(n + offset) % 3]
                    if durable.evaluate(records[i], as_of=d) != expected[(i, d)]:
                        mismatches.append((offset, i, d))
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert mismatches == []


# -- versions, dates, parameters --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def versions():
    return PolicySet((read_policy(DATA / "versions" / "outfalls_2011.yaml"), read_policy(DATA / "versions" / "outfalls_2014.yaml")))


def outfalls(count: int, district: str = "中原区") -> dict:
    return {"uscc": USCC, "district": district, "untreated_outfalls": count}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_as_of_date_picks_the_version_in_force(versions, backend):
    with Evaluator(versions, backend=backend) as evaluator:
        cases = [
            (dt.date(2010, 12, 31), 3, (), 0),
            (dt.date(2011, 1, 1), 3, ("test.outfalls@2011",), 3_000_000),
            (dt.date(2013, 12, 31), 1, ("test.outfalls@2011",), 1_000_000),
            (dt.date(2014, 1, 1), 1, ("test.outfalls@2014",), 0),  # expires is exclusive
            (dt.date(2014, 1, 1), 3, ("test.outfalls@2014",), 3_000_000),  # 2 x 1,500,000
            (dt.date(2030, 1, 1), 5, ("test.outfalls@2014",), 6_000_000),
        ]
        for as_of, count, policies, total in cases:
            decision = evaluator.evaluate(outfalls(count), as_of=as_of)
            assert (decision.policies, decision.total_yuan) == (policies, total), as_of
            for finding in decision.findings:
                assert finding.policy == policies[0]
                assert finding.citation.document.endswith(f"({policies[0][-4:]})")


def test_two_evaluators_with_different_versions_of_the_same_ids_answer_independently(versions):
    old = Evaluator([versions["test.outfalls@2011"]])
    new = Evaluator([versions["test.outfalls@2014"]])
    try:
        for count in [0, 1, 2, 3, 1, 0, 7, 2]:
            # each version judged on a date in its own period, interleaved call by call
            a = old.evaluate(outfalls(count), as_of=dt.date(2012, 1, 1))
            b = new.evaluate(outfalls(count), as_of=dt.date(2015, 1, 1))
            c = old.evaluate(outfalls(count), as_of=dt.date(2013, 1, 1))
            assert a.total_yuan == c.total_yuan == 1_000_000 * count
            assert b.total_yuan == 1_500_000 * max(count - 1, 0)
            assert [f.rule for f in a.findings] == (["outfall_deduction"] if count else [])
            assert [f.rule for f in b.findings] == (["outfall_deduction"] if count >= 2 else [])
            # and each is silent outside its own period
            assert old.evaluate(outfalls(count), as_of=dt.date(2015, 1, 1)).policies == ()
            assert new.evaluate(outfalls(count), as_of=dt.date(2012, 1, 1)).policies == ()
    finally:
        old.close()
        new.close()


@pytest.fixture(scope="module")
def dated():
    return read_policy(DATA / "dated" / "dated_parameters.yaml")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_dated_value_changes_the_amount_without_a_new_rule(dated, backend):
    with Evaluator([dated], backend=backend) as evaluator:
        record = {"uscc": USCC, "district": "二七区", "untreated_outfalls": 2, "illegal_discharge_cases": 0}
        assert evaluator.evaluate(record, as_of=dt.date(2013, 6, 30)).total_yuan == 2_000_000
        assert evaluator.evaluate(record, as_of=dt.date(2013, 7, 1)).total_yuan == 2_400_000
        decision = evaluator.evaluate(record, as_of=dt.date(2020, 1, 1))
        assert decision.findings[0].amount_yuan == 2_400_000
        trace = {t.rule: t for t in decision.trace}
        assert trace["outfall_deduction"].reads["per_outfall"] == 1_200_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rule_reading_an_unset_parameter_warns_and_does_not_fire(dated, backend):
    with Evaluator([dated], backend=backend) as evaluator:
        record = {"uscc": USCC, "district": "二七区", "untreated_outfalls": 1, "illegal_discharge_cases": 3}
        decision = evaluator.evaluate(record, as_of=dt.date(2013, 1, 1))
        # the outfall rule is judged as usual; the two rules whose parameter is unset are not
        assert [f.rule for f in decision.findings] == ["outfall_deduction"]
        assert decision.sanctions == ()
        assert len(decision.warnings) == 2
        fine_warning, blacklist_warning = decision.warnings
        assert fine_warning.startswith("test.dated@1 rule case_fine: not judged: parameter 'per_case' has no value in force on 2013-01-01 (first value from 2030-01-01)")
        assert blacklist_warning.startswith("test.dated@1 rule blacklist: not judged: parameter 'blacklist_threshold' has no value in force on 2013-01-01 (no value set)")
        trace = {t.rule: t for t in decision.trace}
        assert trace["case_fine"].fired is False and "legal staff must set it" in trace["case_fine"].note
        assert trace["blacklist"].fired is False and trace["blacklist"].note
        assert trace["outfall_deduction"].note is None
        # once the fine per case is in force, the rule is judged and fires
        decision = evaluator.evaluate(record, as_of=dt.date(2030, 1, 1))
        assert sorted((f.rule, f.amount_yuan, f.payer) for f in decision.findings) == [
            ("case_fine", 150_000, USCC), ("outfall_deduction", 1_200_000, "二七区"),
        ]
        assert len(decision.warnings) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_policy_is_not_in_force_before_its_effective_date(dated, backend):
    with Evaluator([dated], backend=backend) as evaluator:
        record = {"uscc": USCC, "district": "二七区", "untreated_outfalls": 4, "illegal_discharge_cases": 0}
        before = evaluator.evaluate(record, as_of=dt.date(2011, 12, 31))
        assert before.policies == () and before.findings == () and before.trace == () and before.warnings == ()
        on = evaluator.evaluate(record, as_of=dt.date(2012, 1, 1))
        assert on.policies == ("test.dated@1",) and on.total_yuan == 4_000_000


def test_a_record_need_not_carry_the_facts_of_policies_not_in_force(versions):
    # the 2011 version is the only one in force in 2012; a record with its facts suffices
    with Evaluator(versions) as evaluator:
        assert evaluator.evaluate(outfalls(2), as_of=dt.date(2012, 5, 1)).total_yuan == 2_000_000
    with Evaluator([read_policy(DATA / "dated" / "dated_parameters.yaml")]) as evaluator:
        with pytest.raises(RecordError, match="^illegal_discharge_cases: is missing$"):
            evaluator.evaluate(outfalls(2, "二七区"), as_of=dt.date(2012, 5, 1))
        assert evaluator.evaluate(outfalls(2, "二七区"), as_of=dt.date(2011, 5, 1)).policies == ()


if __name__ == "__main__" and sys.argv[1:] == ["--memory-probe"]:
    print(json.dumps(memory_probe()))


DECIMAL_PARAMETER_POLICY = """\
policy:
  id: test.decimal_parameter
  title: a decimal parameter written as a whole number
  authority: tests
  document: unit
  version: "1"
  effective: 2000-01-01
facts:
  uscc: {type: string, format: uscc}
  d: {type: decimal, min: 0, max: 100}
parameters:
  rate:
    type: decimal
    values:
      - {from: 2000-01-01, value: 7, reference: t}
      - {from: 2011-01-01, value: 2.25, reference: t}
lists:
  watch: {title: watch}
rules:
  - id: r
    title: r
    citation: {document: unit, text: unit}
    when: "rate >= 2 and d < rate"
    sanctions:
      - {list: watch, reason: unit}
"""


@pytest.mark.parametrize("as_of, fired", [(dt.date(2005, 1, 1), True), (dt.date(2012, 1, 1), False)])
def test_a_decimal_parameter_written_as_a_whole_number_compares_as_a_decimal(tmp_path, as_of, fired):
    """'value: 7' loads as the int 7; durable compares decimals x 10**4, so it must travel as
    70000 (it travelled as 7: 'rate >= 2' was false in durable, true in Python)."""
    (tmp_path / "p.yaml").write_text(DECIMAL_PARAMETER_POLICY, encoding="utf-8")
    policies = load_policies(tmp_path)
    record = {"uscc": "91410100123456788Y", "d": "3"}
    for backend in BACKENDS:
        with Evaluator(policies, backend=backend) as evaluator:
            decision = evaluator.evaluate(record, as_of=as_of)
            assert bool(decision.sanctions) is fired, backend
