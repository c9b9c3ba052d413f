"""DuckDB doing the work `ecorules run` does, in hand-written SQL (issue 11, point 16).

The aggregate-only query of bench/nightly.py is the engine's floor, not a fair rival: the run
also checks every USCC (both check characters, GB 32100 and GB 11714), validates every column
the policies read as the fact catalogue says (types, ranges, enum values and their aliases),
rejects later rows of a USCC (one enterprise, one row), and writes findings, list entries,
rejects and district totals to a database. This does the same, for the shipped enterprise
policies, into a fresh DuckDB file, and returns the district totals for the agreement check.
What it leaves out: the run's reject messages in words, the list-entry state across runs,
and the per-column reject of a value that parses but lies outside its range is one reason.
"""

from __future__ import annotations

import time
from pathlib import Path

USCC_SET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _catalogue():
    from ecorules.rules import load_policies

    facts = load_policies().facts
    district = facts["district"]
    enum = [(value, value) for value in district.type.choices] + [(a, v) for a, v in district.value_aliases]
    counts = {name: (facts[name].min, facts[name].max)
              for name in ("untreated_outfalls", "direct_discharge_cases", "illegal_discharge_cases")}
    return enum, counts


def _uscc_valid(column: str) -> str:
    weights = [pow(3, i, 31) for i in range(17)]
    outer = " + ".join(f"(strpos('{USCC_SET}', substr({column}, {i + 1}, 1)) - 1) * {w}" for i, w in enumerate(weights))
    org = " + ".join(f"(strpos('{BASE36}', substr({column}, {9 + i}, 1)) - 1) * {w}"
                     for i, w in enumerate((3, 7, 9, 10, 5, 8, 4, 2)))
    return f"""(
        length({column}) = 18 AND regexp_full_match({column}, '[0-9A-HJ-NP-RTUW-Y]{{2}}[0-9]{{6}}[0-9A-HJ-NP-RTUW-Y]{{10}}')
        AND substr({column}, 17, 1) = CASE 11 - ({org}) % 11 WHEN 10 THEN 'X' WHEN 11 THEN '0'
                                      ELSE CAST(11 - ({org}) % 11 AS VARCHAR) END
        AND substr({column}, 18, 1) = substr('{USCC_SET}', (31 - ({outer}) % 31) % 31 + 1, 1))"""


def duckdb_full(path: Path, threads: int, out: Path) -> tuple[float, dict]:
    import duckdb

    enum, counts = _catalogue()
    out.unlink(missing_ok=True)
    connection = duckdb.connect(str(out))
    connection.execute(f"SET threads TO {threads}")
    connection.execute("CREATE TEMP TABLE districts (written VARCHAR, canonical VARCHAR)")
    connection.executemany("INSERT INTO districts VALUES (?, ?)", enum)
    source = (f"read_parquet('{path}')" if path.suffix == ".parquet"
              else f"read_csv('{path}', header = true, all_varchar = true)")
    trimmed = "trim(CAST({c} AS VARCHAR))"
    started = time.perf_counter()
    connection.execute(f"""
        CREATE TEMP TABLE checked AS
        SELECT r.row, r.uscc, d.canonical AS district,
               {", ".join(f"TRY_CAST({trimmed.format(c=c)} AS BIGINT) AS {c}" for c in counts)},
               {", ".join(f"TRY_CAST({trimmed.format(c=c)} AS BOOLEAN) AS {c}"
                          for c in ("industrial", "high_pollution", "high_energy"))},
               {_uscc_valid("r.uscc")} AS uscc_ok,
               row_number() OVER (PARTITION BY r.uscc ORDER BY r.row) AS nth,
               r.district AS district_written,
               {", ".join(f"{trimmed.format(c='r.' + c)} AS {c}_written" for c in
                          (*counts, "industrial", "high_pollution", "high_energy"))}
        FROM (SELECT row_number() OVER () + 1 AS row, * FROM {source}) r
             LEFT JOIN districts d ON d.written = trim(CAST(r.district AS VARCHAR))""")
    problems = [("uscc", "uscc", "NOT uscc_ok OR uscc IS NULL", "bad uscc"),
                ("uscc", "uscc", "uscc_ok AND nth > 1", "repeats an earlier row"),
                ("district", "district_written", "district IS NULL", "not an allowed district")]
    problems += [(c, f"{c}_written", f"{c} IS NULL OR {c} < {low} OR {c} > {high}", "not a whole number in range")
                 for c, (low, high) in counts.items()]
    problems += [(c, f"{c}_written", f"{c} IS NULL", "not a boolean") for c in ("industrial", "high_pollution", "high_energy")]
    connection.execute("CREATE TABLE rejects AS " + " UNION ALL ".join(
        f"SELECT row, '{column}' AS column_name, CAST({shown} AS VARCHAR) AS value, '{reason}' AS reason "
        f"FROM checked WHERE {condition}" for column, shown, condition, reason in problems))
    connection.execute("""CREATE TEMP TABLE accepted AS SELECT * FROM checked
                          WHERE row NOT IN (SELECT row FROM rejects)""")
    connection.execute("""
        CREATE TABLE findings AS
        SELECT uscc, 'untreated_outfall_deduction' AS rule, untreated_outfalls * 1000000 AS amount_yuan,
               district AS payer FROM accepted WHERE untreated_outfalls > 0
        UNION ALL
        SELECT uscc, 'direct_discharge_deduction', direct_discharge_cases * 10000000, district
        FROM accepted WHERE industrial AND direct_discharge_cases > 0""")
    connection.execute("""
        CREATE TABLE list_entries AS
        SELECT uscc, 'green_credit_blacklist' AS list FROM accepted
        WHERE illegal_discharge_cases > 0 OR direct_discharge_cases > 0
        UNION ALL
        SELECT uscc, 'restricted_loans' FROM accepted WHERE high_pollution OR high_energy""")
    connection.execute("""
        CREATE TABLE district_totals AS
        SELECT payer AS district, sum(amount_yuan)::BIGINT AS deduction_yuan, count(DISTINCT uscc) AS cases
        FROM findings GROUP BY payer""")
    connection.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    totals = {d: (yuan, cases) for d, yuan, cases in connection.execute("SELECT * FROM district_totals").fetchall()}
    lists = dict(connection.execute("SELECT list, count(*) FROM list_entries GROUP BY list").fetchall())
    rejected = connection.execute("SELECT count(DISTINCT row) FROM rejects").fetchone()[0]
    connection.close()
    return seconds, {"districts": totals, "lists": lists, "rejected_rows": rejected}


__all__ = ["duckdb_full"]
