"""Working days (行政处罚法 art 85) from the holiday table, in the three evaluators.

The shipped table (policies/zhengzhou/holidays.yaml) against the State Council's notices as
quoted in it; the kernel's WORKDAYS against rules/_workdays.WorkCalendar on every day of the
table; a day outside the table as an error in the reference, durable-rules and the kernel
alike, computed eagerly (a guard of a required fact does not hide it) but never where an
optional fact the call reads is empty; the loader's and the table reader's errors."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from ecorules.engine import Evaluator
from ecorules.fastcalc import compile_program
from ecorules.rules import PolicyError, RecordCheckError, load_policies
from ecorules.rules._workdays import CalendarError, read_calendar
from fastcalc_support import USCC, rule, write_policy

SHIPPED = Path(__file__).parent.parent.parent / "policies" / "zhengzhou" / "holidays.yaml"
FACTS = "  d:\n    type: date\n  n:\n    type: integer\n    min: 0\n    max: 40\n  p:\n    type: date\n    optional: true\n"
AS_OF = dt.date(2025, 12, 1)


@pytest.fixture(scope="module")
def table():
    return read_calendar(SHIPPED)


def test_the_shipped_table_follows_the_notices(table):
    # 2024: "2月10日至17日放假调休 ... 2月4日(星期日)、2月18日(星期日)上班"
    assert not table.is_working(dt.date(2024, 2, 12)) and table.is_working(dt.date(2024, 2, 4))
    assert table.is_working(dt.date(2024, 2, 9))  # 除夕: only "鼓励 ... 休息", a working day
    # 2025: "1月1日(周三)放假1天,不调休"; "10月11日(周六)上班"
    assert not table.is_working(dt.date(2025, 1, 1)) and table.is_working(dt.date(2025, 1, 2))
    assert table.is_working(dt.date(2025, 10, 11)) and not table.is_working(dt.date(2025, 10, 8))
    # 2026: "1月1日(周四)至3日(周六)放假调休 ... 1月4日(周日)上班"
    assert not table.is_working(dt.date(2026, 1, 2)) and table.is_working(dt.date(2026, 1, 4))
    assert not table.is_working(dt.date(2026, 3, 1))  # an ordinary Sunday


def test_periods_in_working_days_across_a_holiday(table):
    # served Friday 2024-09-27: the 29th (Sunday, 上班), 30th, then 8, 9, 10 October
    assert table.add_working_days(dt.date(2024, 9, 27), 5) == dt.date(2024, 10, 10)
    assert table.add_working_days(dt.date(2024, 9, 27), 0) == dt.date(2024, 9, 27)
    # (2025-09-30, 2025-10-11]: the 9th, the 10th, and Saturday the 11th (上班)
    assert table.working_days_between(dt.date(2025, 9, 30), dt.date(2025, 10, 11), "exclusive") == 3
    assert table.working_days_between(dt.date(2025, 9, 30), dt.date(2025, 10, 11), "inclusive") == 4
    assert table.working_days_between(dt.date(2025, 10, 11), dt.date(2025, 9, 30), "exclusive") == -3
    # 民法典 art 203: a period ending in the Spring Festival ends on the first working day after
    assert table.working_day_on_or_after(dt.date(2026, 2, 15)) == dt.date(2026, 2, 24)
    assert table.working_day_on_or_after(dt.date(2026, 2, 14)) == dt.date(2026, 2, 14)  # Saturday, 上班


def test_a_day_outside_the_table_is_an_error_never_a_guess(table):
    with pytest.raises(CalendarError, match="outside the holiday table .2024-2026.*add the year 2023"):
        table.add_working_days(dt.date(2023, 12, 29), 1)
    with pytest.raises(CalendarError, match="run past the holiday table.*add the year 2027"):
        table.add_working_days(dt.date(2026, 12, 30), 5)
    with pytest.raises(CalendarError, match="add the year 2027"):
        table.working_days_between(dt.date(2026, 1, 5), dt.date(2027, 1, 4), "exclusive")


def _folder(tmp_path: Path, when: str, amounts=()) -> Path:
    folder = write_policy(tmp_path, FACTS, rule("r", when, list(amounts), kind="fee", sanction=not amounts))
    shutil.copy(SHIPPED, folder / "holidays.yaml")
    return folder


def test_the_kernel_computes_what_the_reference_does_on_every_day_of_the_table(tmp_path, table):
    folder = _folder(tmp_path, "true", [
        "max(days_between(d, add_working_days(d, n), 'exclusive'), 0)",
        "max(working_days_between(d, date('2026-12-31'), 'inclusive'), 0)",
        "max(working_days_between(d, date('2026-12-31'), 'exclusive'), 0)",
        "max(days_between(d, working_day_on_or_after(d), 'exclusive'), 0)",
    ])
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2026-12-01"))
    n = np.arange(days.size) % 23
    result = compile_program(load_policies(folder)).score(
        {"uscc": np.array([USCC] * days.size), "d": days, "n": n}, as_of=AS_OF)
    dates = days.astype(dt.date).tolist()
    end = dt.date(2026, 12, 31)
    expected = [
        [(table.add_working_days(d, int(k)) - d).days for d, k in zip(dates, n.tolist(), strict=True)],
        [table.working_days_between(d, end, "inclusive") for d in dates],
        [table.working_days_between(d, end, "exclusive") for d in dates],
        [(table.working_day_on_or_after(d) - d).days for d in dates],
    ]
    assert np.asarray(result.amounts).tolist() == expected
    # and a naive count, day by day, says the same
    assert expected[2][:40] == [sum(table.is_working(d + dt.timedelta(k)) for k in range(1, (end - d).days + 1))
                                for d in dates[:40]]


def _all_three(folder: Path, record: dict, rejects: list | None = None, as_of: dt.date = AS_OF):
    """What the reference, durable-rules and the kernel make of ``record``: the amounts, or
    CalendarError where a working day is outside the table: the record rejected (the
    single-case engines raise, the kernel rejects the row); each one's (column, value,
    reason) entries are appended to ``rejects``."""
    policies = load_policies(folder)
    rejects = [] if rejects is None else rejects
    out = []
    for backend in ("python", "durable"):
        with Evaluator(policies, backend=backend) as evaluator:
            try:
                out.append([f.amount_yuan for f in evaluator.evaluate(record, as_of=as_of).findings])
            except CalendarError as error:
                assert isinstance(error, RecordCheckError)
                rejects.append([(f.column, f.value, f.reason) for f in error.failures])
                out.append(CalendarError)
    columns = {name: np.array([value], "datetime64[D]") if name in ("d", "p") else np.array([value])
               for name, value in record.items() if value is not None}
    if record.get("p") is None:
        columns["p"] = np.ma.masked_array(np.array(["2025-01-01"], "datetime64[D]"), mask=[True])
    result = compile_program(policies).score(columns, as_of=as_of)
    assert result.n_rows == int(result.valid.sum()) + len(set(result.reject_rows.tolist()))
    if result.valid[0]:
        out.append([int(a) for a, r in zip(np.asarray(result.amounts)[:, 0], program_rules(policies), strict=True)
                    if result.fired[r, 0]])
    else:
        rejects.append(list(zip(result.reject_columns.tolist(), result.reject_values.tolist(),
                                result.reject_reasons.tolist(), strict=True)))
        out.append(CalendarError)
    return out


def test_every_evaluator_rejects_a_record_whose_working_day_is_outside_the_table(tmp_path):
    # the guard n > 30 is false, yet the call is computed: the kernel computes every row
    folder = _folder(tmp_path, "n > 30 and add_working_days(d, n) > d", ["1"])
    record = {"uscc": USCC, "d": "2023-06-01", "n": 3, "p": None}
    rejects = []
    assert _all_three(folder, record, rejects) == [CalendarError] * 3
    # one reject, the same in the three, naming the column, the date and the table's range
    assert rejects[0] == rejects[1] == rejects[2] and len(rejects[0]) == 1
    column, value, reason = rejects[0][0]
    assert (column, value) == ("d", "2023-06-01")
    assert reason.startswith("add_working_days(d, n) reaches a day outside the holiday table holidays.yaml, "
                             "which covers 2024-01-01 to 2026-12-31 (d = 2023-06-01, n = 3)")
    assert reason.endswith("rule r)")
    with Evaluator(load_policies(folder)) as evaluator, pytest.raises(CalendarError, match="d = 2023-06-01"):
        evaluator.evaluate(record, as_of=AS_OF)
    assert _all_three(folder, {**record, "d": "2025-06-03", "n": 31}) == [[1]] * 3
    assert _all_three(folder, {**record, "d": "2025-06-03", "n": 3}) == [[]] * 3


def program_rules(policies) -> list[int]:
    """The rule row of ``fired`` of each finding slot, in the kernel's order."""
    return [r for r, rule_ in enumerate(r for p in policies for r in p.rules) for _ in rule_.findings]


def test_a_call_reading_no_fact_rejects_every_record_it_judges_not_the_run(tmp_path):
    # as_of is the same for every record: outside the table, each record the rule judges is
    # a reject blaming its key, where a run used to fail whole
    folder = _folder(tmp_path, "add_working_days(as_of, 1) > d", ["2"])
    record = {"uscc": USCC, "d": "2025-06-03", "n": 3, "p": None}
    assert _all_three(folder, record) == [[2]] * 3
    rejects = []
    assert _all_three(folder, record, rejects, as_of=dt.date(2027, 3, 1)) == [CalendarError] * 3
    assert rejects[0] == rejects[1] == rejects[2] and len(rejects[0]) == 1
    column, value, reason = rejects[0][0]
    assert (column, value) == ("uscc", USCC)
    assert reason.startswith("add_working_days(as_of, 1) reaches a day outside the holiday table holidays.yaml, "
                             "which covers 2024-01-01 to 2026-12-31 (it reads no fact of the record")


def test_a_call_reading_a_rules_result_rejects_its_record_not_the_run(tmp_path):
    # the count of working days is what rule r0 found: known only once r0 is judged, so the
    # call is probed then, and a record it takes past the table is a reject naming d
    rules = (rule("r0", "n > 0", ["n"], kind="fee", sanction=False)
             + rule("r", "add_working_days(d, amount_of(r0)) > d", ["1"], kind="fee", sanction=False))
    folder = write_policy(tmp_path, FACTS, rules)
    shutil.copy(SHIPPED, folder / "holidays.yaml")
    record = {"uscc": USCC, "d": "2026-12-01", "n": 3, "p": None}
    assert _all_three(folder, record) == [[3, 1]] * 3
    rejects = []
    assert _all_three(folder, {**record, "n": 30}, rejects) == [CalendarError] * 3
    assert rejects[0] == rejects[1] == rejects[2] and len(rejects[0]) == 1
    column, value, reason = rejects[0][0]
    assert (column, value) == ("d", "2026-12-01")
    assert reason.startswith("add_working_days(d, amount_of(r0)) reaches a day outside the holiday table "
                             "holidays.yaml, which covers 2024-01-01 to 2026-12-31 (d = 2026-12-01)")
    assert reason.endswith("rule r)")
    # in a batch, the row is rejected with its findings of r0, and the other rows scored
    program = compile_program(load_policies(folder))
    result = program.score({"uscc": np.array([USCC] * 2), "d": np.array(["2026-12-01"] * 2, "datetime64[D]"),
                            "n": np.array([3, 30])}, as_of=AS_OF)
    assert result.valid.tolist() == [True, False]
    assert result.fired[:, 1].tolist() == [0, 0] and result.amounts[:, 1].tolist() == [0, 0]
    assert result.total_yuan.tolist() == [4, 0] and result.totals_by_payer() == {"enterprise": 4}


NESTED = "add_working_days(value_or(p, working_day_on_or_after(d)), 1)"


def _reject_calls(rejects: list) -> list:
    """The calls named by each reject (column, value, the call's text)."""
    return [(column, value, reason.partition(" reaches a day outside")[0]) for column, value, reason in rejects]


def test_a_working_day_in_an_unused_default_rejects_its_record_not_the_run(tmp_path):
    # the audit's reproducer (value_or's default, not taken where p is set): the kernel's
    # probe of the outer call computed the inner one and failed the batch with ERR_CALENDAR
    folder = _folder(tmp_path, "true", [f"max(days_between(d, {NESTED}, 'exclusive'), 0)"])
    record = {"uscc": USCC, "d": "2023-06-01", "n": 0, "p": "2025-06-03"}
    rejects = []
    assert _all_three(folder, record, rejects) == [CalendarError] * 3
    # every call whose arguments can be evaluated is computed, reached or not: the inner one
    # is the reject, and the outer one (inside the table) is not
    assert rejects[0] == rejects[1] == rejects[2]
    assert _reject_calls(rejects[0]) == [("d", "2023-06-01", "working_day_on_or_after(d)")]
    # the outer outside and the inner, unreached, outside too: both, outer first
    rejects = []
    assert _all_three(folder, {**record, "p": "2023-06-01"}, rejects) == [CalendarError] * 3
    assert rejects[0] == rejects[1] == rejects[2]
    assert _reject_calls(rejects[0]) == [("p", "2023-06-01", NESTED), ("d", "2023-06-01", "working_day_on_or_after(d)")]
    # reached (p empty) and outside: the outer cannot be computed, the inner is the reject
    # (the reference used to raise a bare CalendarError, which failed the whole run)
    rejects = []
    assert _all_three(folder, {**record, "p": None}, rejects) == [CalendarError] * 3
    assert rejects[0] == rejects[1] == rejects[2]
    assert _reject_calls(rejects[0]) == [("d", "2023-06-01", "working_day_on_or_after(d)")]
    # inside the table, both ways: 2025-06-03 is a Tuesday, its next working day the 4th
    assert _all_three(folder, {**record, "d": "2025-06-03", "p": None}) == [[1]] * 3
    assert _all_three(folder, {**record, "d": "2025-06-02", "p": "2025-06-03"}) == [[2]] * 3


def test_a_working_day_in_an_untaken_branch_rejects_its_record_as_the_reference_does(tmp_path):
    # computed on every row where its arguments can be evaluated, taken or not (eager, as
    # the module says), but it no longer fails the batch through the outer call's probe
    folder = _folder(tmp_path, "add_working_days(if(n > 30, working_day_on_or_after(d), date('2025-06-03')), n) > d",
                     ["1"])
    record = {"uscc": USCC, "d": "2027-02-01", "n": 3, "p": None}
    rejects = []
    assert _all_three(folder, record, rejects) == [CalendarError] * 3
    assert rejects[0] == rejects[1] == rejects[2]
    assert _reject_calls(rejects[0]) == [("d", "2027-02-01", "working_day_on_or_after(d)")]
    assert _all_three(folder, {**record, "d": "2025-06-02"}) == [[1]] * 3
    assert _all_three(folder, {**record, "d": "2025-06-02", "n": 31}) == [[1]] * 3


def test_a_batch_with_nested_working_days_outside_the_table_rejects_those_rows_only(tmp_path):
    folder = _folder(tmp_path, "true", [f"max(days_between(d, {NESTED}, 'exclusive'), 0)"])
    days = ["2023-06-01", "2025-06-02", "2023-06-01", "2025-06-03", "2027-01-04"]
    p = np.ma.masked_array(np.array(["2025-06-03", "2025-06-03", "2000-01-01", "2000-01-01", "2026-12-31"],
                                    "datetime64[D]"), mask=[False, False, True, True, False])
    result = compile_program(load_policies(folder)).score(
        {"uscc": np.array([USCC] * 5), "d": np.array(days, "datetime64[D]"), "n": np.zeros(5, np.int64), "p": p},
        as_of=AS_OF)
    assert result.valid.tolist() == [False, True, False, True, False]
    assert np.asarray(result.amounts)[0].tolist() == [0, 2, 0, 1, 0]
    # the last row: the outer call runs past the table's end, the inner one starts after it
    assert [(row, reason.partition(" reaches")[0]) for row, reason in
            zip(result.reject_rows.tolist(), result.reject_reasons.tolist(), strict=True)] == [
        (0, "working_day_on_or_after(d)"), (2, "working_day_on_or_after(d)"), (4, NESTED), (4, "working_day_on_or_after(d)")]


def test_a_call_on_an_empty_optional_fact_is_not_computed(tmp_path):
    folder = _folder(tmp_path, "is_set(p) and add_working_days(p, n) < d", ["max(working_days_between(p, d, 'inclusive'), 0)"])
    record = {"uscc": USCC, "d": "2025-06-30", "n": 3, "p": None}
    assert _all_three(folder, record) == [[]] * 3
    assert _all_three(folder, {**record, "p": "2025-06-20"}) == [[7]] * 3  # 20, 23-27, 30 June
    assert _all_three(folder, {**record, "p": "2020-06-20"}) == [CalendarError] * 3


def test_the_loader_refuses_working_days_without_a_table_or_with_a_negative_count(tmp_path):
    folder = write_policy(tmp_path / "a", FACTS, rule("r", "add_working_days(d, 2) > d"))
    with pytest.raises(PolicyError, match="has none: add a 'calendar:' file") as error:
        load_policies(folder)
    assert error.value.span.line > 1
    folder = write_policy(tmp_path / "b", FACTS + "  m:\n    type: integer\n", rule("r", "add_working_days(d, m) > d"))
    shutil.copy(SHIPPED, folder / "holidays.yaml")
    with pytest.raises(PolicyError, match="counts forward"):
        load_policies(folder)

    # constant dates are counted when the policy loads: one the table lacks is refused there,
    # at its line (found by the case differential: the checker raised a bare CalendarError)
    folder = write_policy(tmp_path / "c", FACTS, rule("r", "working_days_between(date('2011-01-03'), d, 'inclusive') > 0"))
    shutil.copy(SHIPPED, folder / "holidays.yaml")
    load_policies(folder)  # d is a fact: counted per record, where an outside day is a reject
    folder = write_policy(tmp_path / "d", FACTS,
                          rule("r", "working_days_between(date('2011-01-03'), date('2024-03-01'), 'inclusive') > 0"))
    shutil.copy(SHIPPED, folder / "holidays.yaml")
    with pytest.raises(PolicyError, match="2011-01-03 is outside the holiday table") as error:
        load_policies(folder)
    assert error.value.span.line > 1


@pytest.mark.parametrize(("change", "message"), [
    (("working_weekends: [2025-01-26,", "working_weekends: [2025-01-27,"), "2025-01-27 is a Monday"),
    (("  2025:\n", "  2027:\n"), "year 2027 does not follow 2024"),
    (("from: 2026-10-01, to: 2026-10-07", "from: 2026-10-01, to: 2027-01-07"), "is not in 2026"),
    (("from: 2024-04-04, to: 2024-04-06", "from: 2024-04-06, to: 2024-04-04"), "is before 'from'"),
    (("    days_off:\n", "    day_off:\n"), "unknown key 'day_off'"),
])
def test_the_table_reader_refuses_a_wrong_table_at_its_line(tmp_path, change, message):
    text = SHIPPED.read_text(encoding="utf-8")
    assert change[0] in text
    path = tmp_path / "holidays.yaml"
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(PolicyError, match=message) as error:
        read_calendar(path)
    assert error.value.span.file == str(path) and error.value.span.line > 1


def test_a_new_year_in_the_table_changes_the_fingerprint_of_the_policies_that_count_working_days(tmp_path):
    counting = _folder(tmp_path / "a", "add_working_days(d, 2) > d")
    plain = _folder(tmp_path / "b", "d > date('2025-01-01')")
    before = [load_policies(f).fingerprint for f in (counting, plain)]
    for folder in (counting, plain):
        (folder / "holidays.yaml").write_text(
            (folder / "holidays.yaml").read_text(encoding="utf-8") + "  2027:\n    notice: x\n    source: x\n",
            encoding="utf-8")
    after = [load_policies(f).fingerprint for f in (counting, plain)]
    assert before[0] != after[0] and before[1] == after[1]


def test_an_argument_that_reads_an_optional_fact_only_when_set_is_computed_on_every_record(tmp_path):
    # if(is_set(p), p, d): evaluated whether p is set or not, so it counts either way
    folder = _folder(tmp_path, "true", ["max(days_between(d, add_working_days(if(is_set(p), p, d), 1), 'exclusive'), 0)"])
    record = {"uscc": USCC, "d": "2025-09-30", "n": 0, "p": None}
    assert _all_three(folder, record) == [[9]] * 3  # 1 to 8 October off: the 9th
    assert _all_three(folder, {**record, "p": "2025-10-09"}) == [[10]] * 3
    assert _all_three(folder, {**record, "d": "2027-01-04"}) == [CalendarError] * 3


def test_a_batch_run_rejects_each_row_whose_working_day_is_outside_the_table_and_scores_the_others(tmp_path):
    import sqlite3

    from ecorules.engine._nightly import run_nightly

    folder = _folder(tmp_path / "p", "add_working_days(d, n) > d", ["n"])
    registry = tmp_path / "registry.csv"
    uscc = ["91410100123456788Y", "9144030071526726XG", "91350200MA31E12PXF"]
    registry.write_text("uscc,d,n,p\n"
                        f"{uscc[0]},2025-06-03,3,\n"    # inside: scored, 3 yuan
                        f"{uscc[1]},2023-12-29,1,\n"    # before the table
                        f"{uscc[2]},2026-12-30,5,\n",   # its 5th working day after is past the table
                        encoding="utf-8")
    summary = run_nightly(registry, tmp_path / "out.sqlite", policies=folder, as_of=AS_OF)
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (3, 1, 2)
    assert summary.total_yuan == 3
    rejects = sqlite3.connect(tmp_path / "out.sqlite").execute(
        'SELECT row, "column", value, reason FROM rejects ORDER BY row').fetchall()
    assert [(row, column, value) for row, column, value, _ in rejects] == [(3, "d", "2023-12-29"), (4, "d", "2026-12-30")]
    assert "covers 2024-01-01 to 2026-12-31 (d = 2023-12-29, n = 1)" in rejects[0][3]
    assert "(d = 2026-12-30, n = 5)" in rejects[1][3]


def test_a_law_date_counting_working_days_outside_the_table_rejects_the_case_in_the_batch_as_in_the_reference(tmp_path):
    import sqlite3

    from ecorules.engine._nightly import run_nightly
    from ecorules.rules import RecordCheckError

    folder = tmp_path / "policies"
    shutil.copytree(Path(__file__).parent.parent / "data" / "lighter_law", folder)
    shutil.copy(SHIPPED, folder / "holidays.yaml")  # 2024-2026
    catalogue = (folder / "cases.yaml").read_text(encoding="utf-8")
    law = "law: value_or(act_end, act_date)"
    assert law in catalogue
    (folder / "cases.yaml").write_text(catalogue.replace(law, "law: working_day_on_or_after(act_date)", 1), encoding="utf-8")
    (folder / "watch.yaml").write_text(  # an enterprise policy, which a run needs beside the case ones
        'policy: {id: test.watch, title: t, authority: t, document: t, version: "1", effective: 2000-01-01}\n'
        "lists:\n  named: {title: t}\nrules:\n  - id: named\n    title: t\n    citation: {document: t, text: t}\n"
        "    when: uscc == ''\n    sanctions:\n      - {list: named, reason: t}\n", encoding="utf-8")
    uscc = "91410100123456788Y"
    (tmp_path / "enterprises.csv").write_text(f"uscc\n{uscc}\n", encoding="utf-8")
    (tmp_path / "cases.csv").write_text(
        "case_id,uscc,act,act_date,act_end,decided,pollutant_fee_yuan\n"
        f"c1,{uscc},over_standard,2024-06-01,,2024-09-01,50000\n"   # inside: judged
        f"c2,{uscc},over_standard,2023-06-01,,2024-09-01,50000\n",  # its law date is outside the table
        encoding="utf-8")
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "out.sqlite", policies=folder,
                          as_of=dt.date(2025, 1, 1), cases=tmp_path / "cases.csv")
    assert summary.tables["cases"]["rows_rejected"] == 1
    db = sqlite3.connect(tmp_path / "out.sqlite")
    (reject,) = db.execute('SELECT row, "column", value, reason FROM rejects WHERE source LIKE ?', ("%cases.csv",)).fetchall()
    assert reject[:3] == (3, "act_date", "2023-06-01")
    assert "which covers 2024-01-01 to 2026-12-31 (act_date = 2023-06-01)" in reject[3]
    assert {row[0] for row in db.execute("SELECT case_id FROM findings WHERE case_id IS NOT NULL")} == {"c1"}
    # the reference rejects the same case with the same reason
    with Evaluator(load_policies(folder)) as evaluator, pytest.raises(RecordCheckError) as error:
        evaluator.evaluate_group({"uscc": uscc}, [{"case_id": "c2", "uscc": uscc, "act": "over_standard",
                                                   "act_date": "2023-06-01", "decided": "2024-09-01",
                                                   "pollutant_fee_yuan": 50000}], as_of=dt.date(2025, 1, 1))
    assert isinstance(error.value, CalendarError)
    assert [(f.column, f.value, f.reason) for f in error.value.failures] == [reject[1:]]


def test_a_case_outside_the_table_is_rejected_for_that_alone_by_both_paths(tmp_path):
    """Found by the case differential in CI: case C000 fails its kind's check kc0 and its act
    date (2011) is outside the holiday table (2012-2030) that rule r0 counts working days
    in. The kernel rejects it for the working day before any check; evaluate_group reported
    kc0 as well. Both now give the working day alone, as Evaluator.judge does."""
    import csv
    import sqlite3

    from ecorules.engine._nightly import run_nightly

    folder = Path(__file__).resolve().parents[1] / "data" / "cases_outside_table"
    policies = load_policies(folder / "policies")
    as_of = dt.date(2013, 6, 30)
    run_nightly(folder / "enterprises.csv", tmp_path / "r.sqlite", policies=policies, as_of=as_of,
                cases=folder / "cases.csv", threads=1, allow_unset_parameters=True)
    batch = sqlite3.connect(tmp_path / "r.sqlite").execute(
        """SELECT row, "column" FROM rejects WHERE source LIKE '%cases.csv'""").fetchall()
    assert batch == [(2, "act_date")]
    with (folder / "enterprises.csv").open(encoding="utf-8") as handle:
        enterprise = next(r for r in csv.DictReader(handle) if r["uscc"] == "914101002435550001")
    with (folder / "cases.csv").open(encoding="utf-8") as handle:
        cases = [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(handle)]
    with Evaluator(policies, backend="python") as evaluator:
        with pytest.raises(RecordCheckError) as refused:
            evaluator.evaluate_group({k: v for k, v in enterprise.items() if v != ""}, cases, as_of=as_of)
    assert type(refused.value).__name__ == "OutsideCalendarError"
    assert [(f.column, f.value) for f in refused.value.failures] == [("act_date", "2011-08-03")]
