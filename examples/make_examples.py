"""Regenerate the example registries and records: ``python examples/make_examples.py``.

The examples are generated rows (real district names, valid USCCs, real-looking names) chosen
and then edited on purpose, so that every case a policy must handle appears, with counts that
are easy to check by hand:

- registry.csv: 50 rows. Clean enterprises in each of the 17 districts; untreated outfalls
  (1-3; the source report deducts 1,000,000 yuan per outfall from the responsible unit's
  funds, i.e. the district's); industrial direct discharge (10,000,000 yuan per case from the
  district government or management committee); non-industrial units with a direct-discharge
  case, which the 10 M rule must ignore; illegal discharge cases only; high pollution / high
  energy units (restricted loans under green credit); a few with everything at once.
- registry_bad.csv: 10 rows, each valid but for one defect, listed in
  registry_bad_defects.json (line, column, value, defect, and for USCCs the exact reason).
- records/*.json: single records named by what they show: clean_enterprise (nothing),
  untreated_outfalls (3 -> 3,000,000 yuan), industrial_direct_discharge (2 cases ->
  20,000,000 yuan), non_industrial_direct_discharge (1 case, not subject to the 10 M rule),
  illegal_discharge_blacklist (2 cases), high_pollution_restricted_loans (high pollution and
  high energy, no case).

Editing the files by hand is pointless: rerun this script (it is deterministic).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
from ecorules.engine._generate import (
    DISTRICT_NAMES,
    REGISTRY_SCHEMA,
    generate_registry,
    write_registry,
)
from ecorules.rules._uscc import USCC_CHARSET, check_character, uscc_problem

HERE = Path(__file__).resolve().parent
SEED = 2012  # the year of the source report
POOL_ROWS = 20_000
COUNTS = ("untreated_outfalls", "direct_discharge_cases", "illegal_discharge_cases")


def _clean(row: dict) -> bool:
    return not any(row[c] for c in COUNTS) and not row["high_pollution"] and not row["high_energy"]


def _take(pool: list[dict], used: set[str], test, edits: dict) -> dict:
    """The first unused pool row passing ``test``, with ``edits`` applied."""
    for row in pool:
        if row["uscc"] not in used and test(row):
            used.add(row["uscc"])
            return {**row, **edits}
    raise LookupError(f"no pool row for {edits}")


def _cases(outfalls: int = 0, direct: int = 0, illegal: int = 0) -> dict:
    return dict(zip(COUNTS, (outfalls, direct, illegal), strict=True))


def _enterprise(row: dict) -> bool:
    return row["uscc"][1] == "1"  # not an individual business or a co-operative


def _industrial_enterprise(row: dict) -> bool:
    return row["industrial"] and _enterprise(row)


def registry_rows() -> list[dict]:
    pool = generate_registry(POOL_ROWS, SEED).to_pylist()
    wanted = [(lambda r, d=d: r["district"] == d and _clean(r), {}) for d in DISTRICT_NAMES]
    wanted += [(_clean, {})] * 3
    wanted += [(lambda r: r["uscc"][1] == "3" and _clean(r), {})]  # a farmers' co-operative
    wanted += [
        (lambda r: r["untreated_outfalls"] > 0, _cases(outfalls=k)) for k in (1, 1, 2, 3, 1, 2)
    ]
    wanted += [(_industrial_enterprise, _cases(direct=k)) for k in (1, 2, 1, 1, 3)]
    # Not industrial, so not subject to the 10,000,000 yuan rule.
    wanted += [
        (lambda r: not r["industrial"] and r["direct_discharge_cases"] > 0, _cases(direct=k))
        for k in (1, 2)
    ]
    wanted += [
        (lambda r: r["illegal_discharge_cases"] > 0, _cases(illegal=k)) for k in (1, 2, 1, 3, 1)
    ]
    wanted += [
        (lambda r: r["high_pollution"] and r["industrial"], {**_cases(), "high_energy": e})
        for e in (True, False, True, False, False)
    ]
    wanted += [(lambda r: r["high_energy"] and not r["high_pollution"], _cases())] * 3
    wanted += [  # everything at once
        (lambda r: r["high_pollution"] and _industrial_enterprise(r), _cases(*k))
        for k in ((2, 1, 1), (1, 1, 2), (3, 2, 4))
    ]
    used: set[str] = set()
    return [_take(pool, used, test, edits) for test, edits in wanted]


RECORDS = {  # file name: which example row shows it
    "clean_enterprise": lambda r: _clean(r) and _enterprise(r),
    "untreated_outfalls": lambda r: (
        r["untreated_outfalls"] == 3 and not r["direct_discharge_cases"]
    ),
    "industrial_direct_discharge": lambda r: (
        r["industrial"] and r["direct_discharge_cases"] == 2 and not r["untreated_outfalls"]
    ),
    "non_industrial_direct_discharge": lambda r: (
        not r["industrial"] and r["direct_discharge_cases"] == 1
    ),
    "illegal_discharge_blacklist": lambda r: (
        r["illegal_discharge_cases"] == 2
        and not r["direct_discharge_cases"]
        and not r["untreated_outfalls"]
    ),
    "high_pollution_restricted_loans": lambda r: (
        r["high_pollution"] and r["high_energy"] and not any(r[c] for c in COUNTS)
    ),
}


def _swap_check(code: str) -> str:
    """The same code with a wrong (but allowed) check character."""
    right = check_character(code[:17])
    return code[:17] + USCC_CHARSET[(USCC_CHARSET.index(right) + 7) % 31]


def _break_org_check(code: str) -> str:
    """A code whose position 17 is wrong but whose position 18 matches it: only GB 11714 fails."""
    wrong = "X" if code[16] != "X" else "0"
    return code[:16] + wrong + check_character(code[:16] + wrong)


def bad_rows(good: list[dict]) -> list[tuple[dict, str, str]]:
    """(row, column, defect): each a valid example row with one defect."""
    r = [dict(row) for row in good[:10]]
    defects = [
        ("uscc", _swap_check(r[0]["uscc"]), "wrong check character (position 18)"),
        ("uscc", r[1]["uscc"][:17], "17 characters"),
        ("uscc", "", "empty"),
        (
            "uscc",
            _break_org_check(r[3]["uscc"]),
            "wrong organization code check character (position 17)",
        ),
        ("untreated_outfalls", "-1", "negative count"),
        ("direct_discharge_cases", "1.5", "count is not an integer"),
        ("industrial", "maybe", "boolean is not true/false"),
        ("district", "", "missing district"),
        ("district", "朝阳区", "unknown district (not in Zhengzhou)"),
        ("uscc", r[9]["uscc"][:5] + "O" + r[9]["uscc"][6:], "letter O is not allowed"),
    ]
    return [
        ({**row, column: value}, column, why)
        for row, (column, value, why) in zip(r, defects, strict=True)
    ]


def _csv_value(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def main(out: Path = HERE) -> None:
    """Write every example under ``out`` (the examples folder itself by default)."""
    rows = registry_rows()
    table = pa.Table.from_pylist(rows, schema=REGISTRY_SCHEMA)
    write_registry(table, out / "registry.csv")

    records = out / "records"
    records.mkdir(exist_ok=True)
    for name, shows in RECORDS.items():
        row = next(r for r in rows if shows(r))
        text = json.dumps(row, ensure_ascii=False, indent=2) + "\n"
        (records / f"{name}.json").write_text(text, encoding="utf-8")

    bad = bad_rows(rows)
    with open(out / "registry_bad.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(REGISTRY_SCHEMA.names)
        for row, _, _ in bad:
            writer.writerow([_csv_value(row[c]) for c in REGISTRY_SCHEMA.names])
    defects = [
        {
            "line": i + 2,
            "uscc": row["uscc"],
            "column": column,
            "value": _csv_value(row[column]),
            "defect": why,
            **({"uscc_problem": uscc_problem(row["uscc"])} if column == "uscc" else {}),
        }
        for i, (row, column, why) in enumerate(bad)
    ]
    text = json.dumps(defects, ensure_ascii=False, indent=2) + "\n"
    (out / "registry_bad_defects.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
