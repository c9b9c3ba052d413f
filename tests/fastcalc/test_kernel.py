"""The kernel construct by construct: exact values written by hand, and the reference.

Each test writes a tiny policy whose findings *probe* an expression (two non-negative amounts
max(0, v) and max(0, -v) give back a signed v; decimals are read x 10**4), scores a batch,
checks the values against figures worked out by hand, and (through score_both) against the
plain-Python reference on the same rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from ecorules.fastcalc import _opcodes as opc
from ecorules.fastcalc import compile_program
from ecorules.rules import PolicyTypeError, load_policies
from fastcalc_strategies import holiday_table
from fastcalc_support import AS_OF, USCC, probe, read_probe, rule, score_both, write_policy

DEC = "  a:\n    type: decimal\n    min: -1000\n    max: 1000\n  b:\n    type: decimal\n    min: -1000\n    max: 1000\n"
INTS = "  i:\n    type: integer\n    min: -1000\n    max: 1000\n"


def _probe_policy(tmp_path, facts: str, expressions: list[tuple[str, str]], parameters: str = ""):
    rules = "".join(rule(f"r{k}", "true", probe(text, kind), sanction=False) for k, (text, kind) in enumerate(expressions))
    return write_policy(tmp_path, facts, rules, parameters)


def test_decimal_multiplication_rounds_half_away_from_zero(tmp_path):
    folder = _probe_policy(tmp_path, DEC, [("a * b", "decimal")])
    a = ["1.0001", "-1.0001", "0.0001", "-0.0001", "0.0003", "2.5", "999.9999", "-999.9999", "0.0001"]
    b = ["0.5", "0.5", "0.5", "0.5", "0.5", "0.3333", "999.9999", "999.9999", "-0.4999"]
    want = [5001, -5001, 1, -1, 2, 8333, 9999998000, -9999998000, 0]  # x 10**4
    _, result = score_both(folder, {"uscc": [USCC] * len(a), "a": a, "b": b})
    assert read_probe(result, 0).tolist() == want


def test_division_by_literals_and_parameters(tmp_path):
    parameters = ("  neg:\n    type: integer\n    values:\n      - {from: 2000-01-01, value: -4, reference: t}\n"
                  "  third:\n    type: decimal\n    values:\n      - {from: 2000-01-01, value: 0.0003, reference: t}\n")
    folder = _probe_policy(tmp_path, DEC + INTS, [
        ("a / 2", "decimal"), ("i / 3", "decimal"), ("a / neg", "decimal"), ("a / third", "decimal"),
        ("a / 1.5", "decimal")], parameters)
    a = ["0.0001", "-0.0001", "2.5", "0.0002", "-999.9999", "1"]
    i = ["1", "2", "-2", "1000", "-1000", "0"]
    _, result = score_both(folder, {"uscc": [USCC] * 6, "a": a, "i": i})
    assert read_probe(result, 0).tolist() == [1, -1, 12500, 1, -5000000, 5000]  # 0.00005 -> 0.0001, -499.99995 -> -500
    assert read_probe(result, 2).tolist() == [3333, 6667, -6667, 3333333, -3333333, 0]
    assert read_probe(result, 4).tolist() == [0, 0, -6250, -1, 2500000, -2500]  # a / -4
    assert read_probe(result, 6).tolist() == [3333, -3333, 83333333, 6667, -33333330000, 33333333]
    assert read_probe(result, 8).tolist() == [1, -1, 16667, 1, -6666666, 6667]  # 0.0001 / 1.5 = 0.0000667


def test_round_floor_ceil_of_negative_and_half_values(tmp_path):
    folder = _probe_policy(tmp_path, DEC + INTS, [("round(a)", "integer"), ("floor(a)", "integer"),
                                                  ("ceil(a)", "integer"), ("round(i)", "integer")])
    a = ["2.5", "-2.5", "2.4999", "-2.4999", "-0.0001", "0.0001", "-0.9999", "0"]
    _, result = score_both(folder, {"uscc": [USCC] * 8, "a": a, "i": ["-7"] * 8})
    assert read_probe(result, 0).tolist() == [3, -3, 2, -2, 0, 0, -1, 0]
    assert read_probe(result, 2).tolist() == [2, -3, 2, -3, -1, 0, -1, 0]
    assert read_probe(result, 4).tolist() == [3, -2, 3, -2, 0, 1, 0, 0]
    assert read_probe(result, 6).tolist() == [-7] * 8


def test_mixed_integer_and_decimal_arithmetic(tmp_path):
    folder = _probe_policy(tmp_path, DEC + INTS, [
        ("i * a", "decimal"), ("i + a", "decimal"), ("a - i", "decimal"), ("min(i, a, 3)", "decimal"),
        ("max(a, i)", "decimal"), ("abs(a)", "decimal"), ("-a", "decimal"), ("if(a > i, i, a)", "decimal"),
        ("i * i - 7", "integer")])
    i = ["3", "-3", "0", "1000"]
    a = ["0.3333", "0.3333", "-0.5", "-1000"]
    _, result = score_both(folder, {"uscc": [USCC] * 4, "a": a, "i": i})
    assert read_probe(result, 0).tolist() == [9999, -9999, 0, -10000000000]
    assert read_probe(result, 2).tolist() == [33333, -26667, -5000, 0]
    assert read_probe(result, 6).tolist() == [3333, -30000, -5000, -10000000]
    assert read_probe(result, 16).tolist() == [2, 2, -7, 999993]


def test_comparisons_of_integers_with_decimals(tmp_path):
    rules = "".join(rule(f"r{k}", text) for k, text in enumerate(
        ["i > a", "i >= a", "i == a", "i != a", "i < 0.5", "0.5 < i", "i in [1, 2.5]", "a not in [1, 2.5]"]))
    folder = write_policy(tmp_path, DEC + INTS, rules)
    i = ["1", "1", "2", "0", "-1"]
    a = ["0.9999", "1", "2.5", "0.0001", "-1.0000"]
    _, result = score_both(folder, {"uscc": [USCC] * 5, "i": i, "a": a})
    assert result.fired.tolist() == [
        [1, 0, 0, 0, 0], [1, 1, 0, 0, 1], [0, 1, 0, 0, 1], [1, 0, 1, 1, 0],
        [0, 0, 0, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 1, 1]]


def test_int64_extremes_the_checker_allows(tmp_path):
    big = 2**63 - 1
    facts = f"  x:\n    type: integer\n    min: {-big}\n    max: {big}\n"
    # x > 1, x < -1: so that no payer's sum over the rows leaves int64 (that raises, see below)
    folder = write_policy(tmp_path, facts, rule("pos", "x > 1", ["abs(x)"]) + rule("neg", "x < -1", ["abs(x)"])
                          + rule("edge", "x - 1 < x", ["max(0, x - 1)"], kind="reward"))
    x = np.array([big, -big, 0, 1, -1], dtype=np.int64)
    _, result = score_both(folder, {"uscc": [USCC] * 5, "x": x})
    assert result.amounts[0].tolist() == [big, 0, 0, 0, 0]
    assert result.amounts[1].tolist() == [0, big, 0, 0, 0]
    assert result.amounts[2].tolist() == [big - 1, 0, 0, 0, 0]
    assert result.rewards_yuan.tolist() == [big - 1, 0, 0, 0, 0]


def test_decimal_extremes(tmp_path):
    top = "922337203685477.5806"  # (2**63 - 2) / 10**4: the largest decimal the checker allows
    facts = f"  d:\n    type: decimal\n    min: -{top}\n    max: {top}\n"
    folder = write_policy(tmp_path, facts, rule("r", "d * 1.0 > 0", ["max(0, ceil(d * 0.0001))"])
                          + rule("s", "d < 0", ["max(0, floor(-d))"]))
    d = [top, f"-{top}", "0.0001", "-0.0001"]
    _, result = score_both(folder, {"uscc": [USCC] * 4, "d": d})
    # 92233720368.5478 up; 0.0001 * 0.0001 is exactly 0.00000001, so up to 1 (rounding to
    # four places at each step made it 0)
    assert result.amounts[0].tolist() == [92233720369, 0, 1, 0]
    assert result.amounts[1].tolist() == [0, 922337203685477, 0, 0]


def test_dates_and_as_of(tmp_path):
    facts = "  d:\n    type: date\n  n:\n    type: integer\n    min: -1000\n    max: 1000\n"
    folder = _probe_policy(tmp_path, facts, [
        ("as_of - d", "integer"), ("d + n", "date"), ("n + d", "date"), ("min(d, as_of) - date('2012-01-01')", "integer"),
        ("if(d < as_of, d, as_of - 1)", "date"), ("d - 30", "date")])
    d = [dt.date(2012, 2, 29), dt.date(2012, 4, 14), dt.date(2013, 1, 1), dt.date(1900, 1, 1)]
    n = [1, -1, 365, 0]
    _, result = score_both(folder, {"uscc": [USCC] * 4, "d": pa.array(d, pa.date32()), "n": n})
    assert read_probe(result, 0).tolist() == [(AS_OF - x).days for x in d]
    epoch = dt.date(1970, 1, 1)
    assert read_probe(result, 2).tolist() == [(x + dt.timedelta(days=k) - epoch).days for x, k in zip(d, n, strict=True)]
    assert read_probe(result, 6).tolist() == [59, 104, 104, -40907]
    assert read_probe(result, 8).tolist() == [15399, 15443, 15443, -25567]


def test_a_parameter_changes_with_as_of_without_recompiling(tmp_path):
    parameters = ("  rate:\n    type: decimal\n    values:\n"
                  "      - {from: 2011-01-01, value: 1.5, reference: t}\n"
                  "      - {from: 2012-01-01, value: 2.25, reference: t}\n"
                  "  flag:\n    type: boolean\n    values:\n      - {from: 2012-01-01, value: true, reference: t}\n"
                  "  later:\n    type: integer\n    values:\n      - {from: 2013-01-01, value: 5, reference: t}\n")
    folder = write_policy(tmp_path, INTS, rule("r", "i > 0 and flag", ["max(0, round(i * rate))"])
                          + rule("s", "i > later", ["1"]) + rule("t", "i > 0", ["max(0, i)"]), parameters)
    program = compile_program(load_policies(folder))
    code_before = program.compiled.code.copy()
    batch = {"uscc": [USCC] * 3, "i": [1, 2, 10]}
    early = program.score(batch, as_of=dt.date(2011, 6, 1))
    late = program.score(batch, as_of=dt.date(2012, 6, 1))
    assert np.array_equal(program.compiled.code, code_before)  # patched copies, never the program
    assert early.amounts[0].tolist() == [0, 0, 0]  # flag has no value yet: rule r is not judged
    assert late.amounts[0].tolist() == [2, 5, 23]  # 2.25, 4.5 -> 5, 22.5 -> 23
    assert any("rule r: not judged: parameter 'flag'" in w for w in early.warnings)
    assert any("rule s: not judged: parameter 'later'" in w for w in late.warnings)
    assert late.amounts[2].tolist() == [1, 2, 10]
    before = program.score(batch, as_of=dt.date(2010, 1, 1))  # the policy is not in force
    assert not before.fired.any() and not before.warnings
    for as_of in (dt.date(2011, 6, 1), dt.date(2012, 6, 1), dt.date(2013, 6, 1)):
        score_both(folder, batch, as_of=as_of)


def test_enums_and_an_enum_payer(tmp_path):
    facts = "  district:\n    type: enum\n    values: [金水区, 二七区, 中原区]\n" + INTS
    rules = (rule("a", "district == '金水区'", ["max(0, i)"], payer="district")
             + rule("b", "district in ['二七区', '中原区'] and i > 1", ["max(0, i * 2)"], payer="district")
             + rule("c", "if(i > 5, district, '中原区') == '中原区'", ["1"], payer="district", kind="reward"))
    folder = write_policy(tmp_path, facts, rules)
    district = ["金水区", "二七区", "中原区", "金水区", " 金水区 ", "中原区"]
    i = [1, 2, 3, 4, 5, 6]
    _, result = score_both(folder, {"uscc": [USCC] * 6, "district": district, "i": i})
    assert result.totals_by_payer() == {"金水区": 10, "二七区": 4, "中原区": 18}
    assert result.case_counts_by_payer() == {"金水区": 3, "二七区": 1, "中原区": 2}
    assert result.rewards_yuan.tolist() == [1, 1, 1, 1, 1, 1][:5] + [1]


def test_strings_absent_from_the_batch_dictionary(tmp_path):
    facts = "  name:\n    type: string\n  flag:\n    type: boolean\n"
    rules = (rule("eq", "name == 'zzz'") + rule("ne", "name != 'zzz'") + rule("member", "name in ['alpha', 'zzz']")
             + rule("two", "if(flag, name, 'zzz') == 'yyy'") + rule("same", "if(flag, name, 'zzz') == 'zzz'")
             + rule("lit", "if(flag, 'p', 'q') == 'q'"))
    folder = write_policy(tmp_path, facts, rules)
    name = ["alpha", " alpha", "beta", "alpha"]
    flag = [True, False, False, True]
    _, result = score_both(folder, {"uscc": [USCC] * 4, "name": name, "flag": flag})
    assert result.fired.tolist() == [[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0],
                                     [0, 1, 1, 0]]


def test_a_string_payer_rolls_up_by_the_batch_dictionary(tmp_path):
    facts = "  owner:\n    type: string\n" + INTS
    folder = write_policy(tmp_path, facts, rule("r", "i > 0", ["max(0, i)"], payer="owner")
                          + rule("s", "i > 1", ["10"], payer="enterprise", kind="fee"))
    owner = ["甲公司", "乙公司", " 甲公司 ", "乙公司"]
    _, result = score_both(folder, {"uscc": [USCC] * 4, "owner": owner, "i": [1, 2, 3, 0]})
    assert result.totals_by_payer() == {"甲公司": 4, "乙公司": 2, "enterprise": 20}
    assert result.case_counts_by_payer() == {"甲公司": 2, "乙公司": 1, "enterprise": 2}
    (part,) = result.payer_totals
    assert dict(zip(part.labels, part.yuan.tolist(), strict=True)) == {"甲公司": 4, "乙公司": 2}


def test_a_rule_that_fires_for_zero_yuan_is_a_case_of_its_payer(tmp_path):
    """Cases count fired payable findings, 0 yuan included, in the kernel's roll-up (enum and
    enterprise payers) and in the exact merge of text payers whose labels overlap."""
    facts = ("  owner:\n    type: string\n  operator:\n    type: string\n"
             "  district:\n    type: enum\n    values: [金水区, 二七区, 中原区]\n" + INTS)
    rules = (rule("a", "i > 0", ["max(0, i - 2)"], payer="owner", sanction=False)
             + rule("b", "i > 1", ["0"], payer="operator", sanction=False)
             + rule("c", "i > 0", ["0"], payer="district", sanction=False)
             + rule("d", "i > 0", ["0"], payer="enterprise", kind="fee", sanction=False)
             + rule("e", "i > 0", ["0"], payer="district", kind="reward", sanction=False))
    folder = write_policy(tmp_path, facts, rules)
    columns = {"uscc": [USCC] * 4, "owner": ["甲", "乙", "甲", "甲"], "operator": ["乙", "乙", "丙", "甲"],
               "district": ["金水区", "二七区", "金水区", "中原区"], "i": [1, 2, 3, 0]}
    _, result = score_both(folder, columns)
    assert result.amounts.tolist() == [[0, 0, 1, 0]] + [[0, 0, 0, 0]] * 4
    assert result.totals_by_payer() == {"甲": 1}
    # row 1 names 乙 twice (owner and operator): one case; the reward of rule e is no case
    assert result.case_counts_by_payer() == {"甲": 2, "乙": 1, "丙": 1, "金水区": 2, "二七区": 1, "enterprise": 3}


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 127, 128, 129, 1000])
def test_batch_sizes_around_block_boundaries(tmp_path, n):
    folder = write_policy(tmp_path, DEC + INTS, rule("r", "a * b > i", ["max(0, round(a * b))"], payer="enterprise")
                          + rule("s", "i > 0", ["max(0, i)"], kind="reward"))
    rng = np.random.default_rng(n)
    columns = {"uscc": np.array([USCC] * n, dtype=object),
               "a": [f"{x:.4f}" for x in rng.uniform(-30, 30, n)],
               "b": [f"{x:.2f}" for x in rng.uniform(-30, 30, n)],
               "i": rng.integers(-1000, 1001, n)}
    _, one = score_both(folder, columns, block_rows=64)
    _, two = score_both(folder, columns, block_rows=64, threads=2)
    _, many = score_both(folder, columns, block_rows=64, threads=7)
    for name in ("fired", "amounts", "sanctions", "total_yuan", "rewards_yuan", "valid"):
        assert np.array_equal(getattr(one, name), getattr(two, name))
        assert np.array_equal(getattr(one, name), getattr(many, name))
    assert one.n_rows == n and one.fired.shape == (2, n)


def test_threads_give_identical_bytes_on_the_shipped_policies():
    from ecorules.engine._generate import generate_registry

    program = compile_program(load_policies())
    table = generate_registry(300_000, 5)
    one = program.score(table, as_of=AS_OF, threads=1)
    two = program.score(table, as_of=AS_OF, threads=2, block_rows=1024)
    for name in ("valid", "fired", "amounts", "sanctions", "total_yuan"):
        assert getattr(one, name).tobytes() == getattr(two, name).tobytes()
    assert one.totals_by_payer() == two.totals_by_payer()
    assert one.case_counts_by_payer() == two.case_counts_by_payer()


def test_zero_copy_inputs_are_not_modified(tmp_path):
    facts = INTS + "  f:\n    type: boolean\n  e:\n    type: enum\n    values: [x, y]\n  d:\n    type: date\n"
    folder = write_policy(tmp_path, facts, rule("r", "f and i > 0 and e == 'y' and d < as_of", ["max(0, i)"]))
    i = np.array([5, -1, 2000, 7], dtype=np.int64)  # 2000: out of range, rejected
    f = np.array([True, True, False, True])
    d = np.array(["2012-01-01", "2012-01-01", "2013-01-01", "2012-04-13"], dtype="M8[D]")
    e = pa.array(["y", "x", "y", "y"]).dictionary_encode()
    copies = [x.copy() for x in (i, f, d)]
    for array in (i, f, d):
        array.flags.writeable = False  # the validator must never write into an input
    program, result = score_both(folder, {"uscc": [USCC] * 4, "i": i, "f": f, "d": d, "e": e})
    for array, copy in zip((i, f, d), copies, strict=True):
        assert array.tobytes() == copy.tobytes()
    assert result.amounts[0].tolist() == [5, 0, 0, 7]


def test_narrow_integer_columns_are_loaded_by_the_kernel(tmp_path):
    folder = write_policy(tmp_path, "  i:\n    type: integer\n    min: 0\n    max: 60000\n", rule("r", "i > 2", ["i"]))
    program = compile_program(load_policies(folder))
    for dtype in ("int8", "int16", "int32", "uint8", "uint16", "uint32", "int64", "uint64"):
        values = np.array([0, 1, 3, 100], dtype=dtype)
        result = program.score({"uscc": [USCC] * 4, "i": values}, as_of=AS_OF)
        assert result.amounts[0].tolist() == [0, 0, 3, 100], dtype


def test_totals_that_leave_int64_raise_overflow_error(tmp_path):
    facts = f"  x:\n    type: integer\n    min: 0\n    max: {2**62}\n  district:\n    type: enum\n    values: [a, b]\n"
    folder = write_policy(tmp_path, facts, rule("r", "x > 0", ["x", "x"]))
    program = compile_program(load_policies(folder))
    assert program.compiled.checked_totals
    with pytest.raises(OverflowError):
        program.score({"uscc": [USCC], "x": [2**62]}, as_of=AS_OF)
    program.score({"uscc": [USCC], "x": [2**61]}, as_of=AS_OF)  # 2**62 in total: fine
    folder = write_policy(tmp_path / "b", facts, rule("r", "x > 0", ["x"], payer="district"))
    program = compile_program(load_policies(folder))
    with pytest.raises(OverflowError):  # one row each fits, the district's sum does not
        program.score({"uscc": [USCC] * 3, "x": [2**62] * 3, "district": ["a"] * 3}, as_of=AS_OF)


def test_what_the_kernel_cannot_hold_is_refused_when_compiling(tmp_path):
    huge = "  x:\n    type: integer\n    min: 0\n    max: 100000000000000000\n" + DEC
    folder = write_policy(tmp_path, huge, rule("r", "x > a", ["1"]))
    with pytest.raises(PolicyTypeError, match=r"31:12: this integer may reach .* beyond the range the batch kernel can "
                                               r"hold exactly \(in units of 1/10,000\); declare a smaller 'max'/'min' for 'x'"):
        load_policies(folder)  # x compared with a decimal is held at a's scale: refused where it is read
    beyond = f"  y:\n    type: integer\n    min: 0\n    max: {2**64}\n"
    folder = write_policy(tmp_path / "b", beyond, rule("r", "y > 0", ["1"]))
    with pytest.raises(PolicyTypeError, match="beyond the range the batch kernel can hold; declare a smaller 'max'/'min' for 'y'"):
        load_policies(folder)


def test_every_opcode_is_used_by_some_program(tmp_path):
    """A policy using every construct, scored with narrow columns, runs every opcode."""
    facts = (DEC + INTS + "  f:\n    type: boolean\n  g:\n    type: boolean\n  d:\n    type: date\n"
             "  e:\n    type: enum\n    values: [x, y]\n  s:\n    type: string\n")
    parameters = "  p:\n    type: integer\n    values:\n      - {from: 2000-01-01, value: 3, reference: t}\n"
    conditions = [
        "-i < 0", "i + a > 1 and i - a < 1 and 3 - i > 0 and i + 1 > 0 and i - 1 > 0", "i * i > 1 and i * 2 > 1",
        "a * b > 1 and a * 2.5 > 1", "a / 2 > 0", "min(i, a) < max(i, a) and min(i, 1) < max(i, 1)",
        "abs(i) > 0", "round(a) > 0 or floor(a) > 0 or ceil(a) > 0", "if(f, i, a) > 0",
        "i == a or i != a or i < a or i <= a or i > a or i >= a",
        "i == 1 or i != 1 or i < 1 or i <= 1 or i > 1 or i >= 1",
        "i in [1, 2] or i not in [3, p]", "(f and g) or (f or g) or (f and p > 2) or (f or p > 2)",
        "(f == g) or (f != g) or (f == true) or (f != true)", "not f", "if(f, g, not g)",
        "if(p > 2, i, 0) > 0 and if(p > 2, f, g)", "e == 'x' and s == 'q' and d < as_of",
        "add_months(d, i, 'next_day') < as_of and add_years(d, p) > as_of",
        "add_working_days(d, 2) > d",  # WORKDAYS, on the holiday table written below
    ]
    rules = "".join(rule(f"r{k}", c, ["1"] if k % 2 else [], kind="reward" if k == 3 else "fine")
                    for k, c in enumerate(conditions))
    rules += rule("payer_e", "true", ["max(0, i * 0 + 1)"], payer="e") + rule("const", "true", ["p"])
    # a check fails nowhere in these rows, but runs FAILED and REJECT
    checks = '  - {id: known, require: "i < 1000 or p > 5", column: i, message: unit}\n'
    folder = write_policy(tmp_path, facts, rules, parameters, checks=checks)
    (folder / "holidays.yaml").write_text(holiday_table(1), encoding="utf-8")
    program = compile_program(load_policies(folder))
    used = {opc.OPCODES[int(op)].name for op in program.compiled.code["op"]}
    from ecorules.fastcalc import _kernel
    seen = set(used)
    real_run = _kernel.run

    def spy(code, *args):
        seen.update(opc.OPCODES[int(op)].name for op in code.view(opc.INSTR_DTYPE)["op"])
        return real_run(code, *args)

    import ecorules.fastcalc._program as program_module
    program_module._kernel.run = spy
    try:
        for dtype in ("int8", "int16", "int32", "uint8", "uint16", "uint32"):
            program.score({"uscc": [USCC] * 2, "a": ["1.5", "-2"], "b": ["2", "0.5"],
                           "i": np.array([1, 2], dtype=dtype), "f": [True, False], "g": [False, False],
                           "d": ["2012-01-01", "2013-01-01"], "e": ["x", "y"], "s": ["q", "r"]}, as_of=AS_OF)
        score_both(folder, {"uscc": [USCC] * 2, "a": ["1.5", "-2"], "b": ["2", "0.5"], "i": [1, 2],
                            "f": [True, False], "g": [False, True], "d": ["2012-01-01", "2013-01-01"],
                            "e": ["x", "y"], "s": ["q", "r"]})
    finally:
        program_module._kernel.run = real_run
    expected = {op.name for op in opc.OPCODES} - {"TOTAL_ADD_CHECKED"}  # needs huge amounts: tested above
    assert expected - seen == set()


def test_an_amount_ranged_under_its_condition_is_zero_where_the_condition_fails(tmp_path):
    """The loader accepts (i - 1) * 1000000 under `i >= 2` (the condition keeps it positive);
    the kernel computes it on every row and must mask the rows where i is below 2, where the
    value would be negative."""
    folder = write_policy(tmp_path, INTS, rule("r", "i >= 2", ["(i - 1) * 1000000"], sanction=False))
    _, result = score_both(folder, {"uscc": [USCC] * 6, "i": [0, 1, 2, 3, -5, 5]})
    assert result.amounts[0].tolist() == [0, 0, 1000000, 2000000, 0, 4000000]
    assert result.total_yuan.tolist() == [0, 0, 1000000, 2000000, 0, 4000000]
