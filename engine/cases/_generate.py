"""Synthetic case tables for tests and bench: shared acts, windows around 29 February,
empty optional cells, and (on request) bad rows of every kind a run rejects. Vectorised, so
that ten million rows take seconds; deterministic for a seed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import from_bools, from_numbers, string_scalar
from ecorules.rules._types import date_to_days


def _day(text: str) -> int:
    return date_to_days(dt.date.fromisoformat(text))


def _texts(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(from_numbers(numbers.astype(np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(string_scalar(prefix), digits, string_scalar(""))


def _dates(days: np.ndarray, present: np.ndarray | None = None) -> pa.Array:
    mask = None if present is None else ~present
    return pc.cast(pa.array(days.astype("datetime64[D]"), mask=mask), pa.string())


def generate_cases(usccs: pa.Array, rows: int, seed: int, clauses: tuple[str, ...]) -> pa.Table:
    """``rows`` cases of the enterprises ``usccs`` (text columns, as a CSV holds them)."""
    rng = np.random.default_rng(seed)
    owner = np.minimum(rng.geometric(0.5, rows) - 1, 40) + rng.integers(0, len(usccs), rows)
    owner %= len(usccs)
    act = rng.integers(0, 4, rows)
    act_present = rng.random(rows) < 0.6  # the same act_id text in many enterprises: acts are per enterprise
    days = rng.integers(_day("2021-01-01"), _day("2025-12-31"), rows)
    leap = rng.random(rows) < 0.2  # near 29 February of 2022 and 2024, the windows' hard days
    days[leap] = rng.choice(np.array([_day(d) for d in ("2022-02-27", "2022-02-28", "2022-03-01", "2024-02-28",
                                                        "2024-02-29", "2024-03-01", "2026-02-28")]), int(leap.sum()))
    end_present = rng.random(rows) < 0.3
    ends = days + rng.integers(0, 400, rows)
    discovered = days + rng.choice(np.array([1, 300, 730, 731, 1100]), rows)
    fine_present = rng.random(rows) < 0.4
    fines = rng.choice(np.array([0, 20000, 100000, 600000]), rows)
    eco_present = rng.random(rows) < 0.3
    eco = rng.random(rows) < 0.5
    return pa.table({
        "case_id": _texts("C", np.arange(rows), 9),
        "uscc": usccs.take(from_numbers(owner)),
        # (pa.array(arrow_array, mask=...) ignores the mask: every case had an act_id)
        "act_id": pc.if_else(from_bools(act_present), _texts("A", act, 1), pa.nulls(rows, pa.string())),
        "clause": pa.array(np.array(clauses, dtype=object)[rng.integers(0, len(clauses), rows)], pa.string()),
        "act_date": _dates(days),
        "act_end": _dates(ends, end_present),
        "discovered": _dates(discovered),
        "fine_yuan": pc.cast(pa.array(fines, mask=~fine_present), pa.string()),
        "into_eco_water": pa.array(np.where(eco, "true", "false"), mask=~eco_present),
    })


def bad_cases(good: pa.Table, strangers: pa.Array, rejected_usccs: pa.Array, seed: int) -> tuple[pa.Table, list[str]]:
    """Rows each of which the run must reject, one reject kind apiece (named in the list):
    unknown enterprise, rejected enterprise, duplicate case_id, dates out of order, a decided
    fine outside its range (a check of tests/data/cases, clause a83_2), bad values."""
    rng = np.random.default_rng(seed)
    base = good.slice(0, 1).to_pylist()[0]
    kinds, rows = [], []

    def add(kind: str, **changes) -> None:
        kinds.append(kind)
        rows.append({**base, "case_id": f"BAD{len(rows):05d}", **changes})

    for code in strangers.to_pylist():
        add("unknown enterprise", uscc=code)
    for code in rejected_usccs.to_pylist():
        add("rejected enterprise", uscc=code)
    for index in rng.integers(0, good.num_rows, 5).tolist():
        add("duplicate case_id", case_id=good["case_id"][index].as_py())
    add("discovered before act_date", act_date="2024-03-01", discovered="2024-02-29")
    add("act_end before act_date", act_date="2024-03-01", act_end="2024-02-01", discovered="2024-04-01")
    add("decided fine outside its range", clause="a83_2", fine_yuan="2000000")
    add("bad value", clause="no_such_clause")
    add("bad value", act_date="2024-02-30")
    add("bad value", fine_yuan="-5")
    add("bad value", case_id="")
    add("bad value", into_eco_water="maybe")
    return pa.Table.from_pylist(rows, schema=good.schema), kinds


__all__ = ["bad_cases", "generate_cases"]
