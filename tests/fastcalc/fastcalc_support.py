"""Helpers of the fastcalc unit tests: tiny policies written as YAML, scored both ways."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
from ecorules.fastcalc import compile_program
from ecorules.rules import load_policies
from fastcalc_reference import Reference

AS_OF = dt.date(2012, 4, 14)


def write_policy(folder: Path, facts: str, rules: str, parameters: str = "", lists: str = "",
                 effective: str = "2011-01-01", extra_head: str = "", name: str = "tiny", checks: str = "") -> Path:
    """A one-policy folder: ``facts``/``parameters``/``rules``/``checks`` are YAML blocks (indented 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (
        "policy:\n"
        f"  id: test.{name}\n  title: tiny\n  authority: tests\n  document: unit\n"
        f'  version: "1"\n  effective: {effective}\n{extra_head}'
        "facts:\n  uscc:\n    type: string\n    format: uscc\n" + facts
        + ("parameters:\n" + parameters if parameters else "")
        + "lists:\n  watch:\n    title: watch\n" + lists
        + ("checks:\n" + checks if checks else "")
        + "rules:\n" + rules
    )
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return folder


def rule(rule_id: str, when: str, amounts: list[str] = (), payer: str = "enterprise", kind: str = "fine",
         sanction: bool = True) -> str:
    """One rule in YAML; each amount becomes a finding."""
    out = (f"  - id: {rule_id}\n    title: {rule_id}\n    citation: {{document: unit, text: unit}}\n"
           f'    when: "{when}"\n')
    if amounts:
        out += "    findings:\n" + "".join(
            f'      - {{kind: {kind}, amount: "{a}", payer: {payer}}}\n' for a in amounts)
    if sanction or not amounts:
        out += "    sanctions:\n      - {list: watch, reason: unit}\n"
    return out


def probe(expression: str, kind: str) -> list[str]:
    """Two non-negative amounts from which a signed value is read back: max(0, v), max(0, -v)."""
    if kind == "decimal":
        value = f"round(({expression}) * 10000)"
    elif kind == "date":
        value = f"(({expression}) - date('1970-01-01'))"
    else:
        value = f"({expression})"
    return [f"max(0, {value})", f"max(0, -{value})"]


def read_probe(result, slot: int) -> np.ndarray:
    return result.amounts[slot] - result.amounts[slot + 1]


def score_both(folder: Path, columns: dict, as_of: dt.date = AS_OF, **kwargs):
    """Score ``columns`` with the kernel and with the reference; assert they agree."""
    policies = load_policies(folder)
    program = compile_program(policies)
    result = program.score(columns, as_of=as_of, **kwargs)
    n = result.n_rows
    pools, index = {}, {}
    for name in program.columns:
        column = columns[name]
        values = column.to_pylist() if isinstance(column, pa.Array | pa.ChunkedArray) else list(np.asarray(column).tolist())
        pools[name] = values
        index[name] = np.arange(n, dtype=np.int64)
    expected = Reference(tuple(policies)).score(pools, index, n, as_of)
    assert_same(result, expected)
    return program, result


def assert_same(result, expected, where: str = "") -> None:
    assert np.array_equal(result.valid, expected["valid"]), (where, result.reject_reasons, expected["rejects"])
    got = list(zip(result.reject_rows.tolist(), result.reject_columns.tolist(), result.reject_values.tolist(),
                   result.reject_reasons.tolist(), strict=True))
    want = [(row, name, value, reason) for row, _, name, value, reason in expected["rejects"]]
    assert got == want, where
    for name, key in (("fired", "fired"), ("amounts", "amounts"), ("sanctions", "sanctions"),
                      ("total_yuan", "total"), ("rewards_yuan", "rewards")):
        assert np.array_equal(getattr(result, name), expected[key]), (where, name, getattr(result, name), expected[key])
    assert result.totals_by_payer() == expected["totals_by_payer"], where
    assert result.case_counts_by_payer() == expected["case_counts"], where
    assert tuple(result.warnings) == expected["warnings"], where


USCC = "91410100123456788Y"
