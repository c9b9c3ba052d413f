"""``ecorules changes``: what changed between two runs of the results database.

- list entries: enterprises that entered or left a list (keyed by list and USCC), and the
  entries of the stored state (``engine/_lists.py``) that the runs after the earlier one
  up to the later one entered or ended, with the exit and its reason;
- findings: keyed by enterprise, policy id (without version, so that a new version of a
  policy compares with the old one), rule and payer; a key present in one run only appeared
  or disappeared, a key present in both with another amount changed;
- district totals that moved (deduction or cases), a district missing from a run counting 0.

Only imposed findings compare: a case finding an earlier run assessed (status
``already_assessed``, 一例一次) is not owed again, so a case imposed in the earlier run and
already assessed in the later one shows as disappeared; ``already_assessed`` says how many
findings of each run were such.

Counts are always complete; the lists of items are cut at ``limit`` (0 = no limit).

Amounts are compared in fen, exact whatever the units of the two runs; the report shows them
in yuan (``*_yuan``), in its ``unit``: fen if either run's total is in fen, then as exact
two-place text ("0.48"), else as integers, as before amounts had units.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import store
from ._ledger_money import YUAN, in_yuan, sum_unit, yuan_json
from ._lists import entry_changes


def _items(connection: sqlite3.Connection, sql: str, params: tuple, limit: int) -> tuple[int, list[dict[str, Any]]]:
    count = connection.execute(f"SELECT count(*) FROM ({sql}) AS listed", params).fetchone()[0]
    cursor = connection.execute(sql + (" LIMIT ?" if limit else ""), params + ((limit,) if limit else ()))
    names = [d[0] for d in cursor.description]
    return count, [dict(zip(names, row, strict=True)) for row in cursor]


def compare_runs(db, since: str | int, run: str | int = "latest", *, limit: int = 100) -> dict[str, Any]:
    connection = store.connect(db, readonly=True)
    try:
        _temporary_tables(connection)
        with store.snapshot(connection):
            old = store.resolve_run(connection, since)
            new = store.resolve_run(connection, run)
            report = _compare(connection, old, new, limit)
            report["warnings"] += store.interrupted(db, connection)
        return report
    finally:
        connection.close()


_LIST_CHANGES = """
    SELECT list, uscc, max(CASE WHEN run_id = :new THEN 1 ELSE 0 END) AS now FROM sanctions
    WHERE run_id IN (:old, :new)
    GROUP BY list, uscc
    HAVING max(CASE WHEN run_id = :new THEN 1 ELSE 0 END) != max(CASE WHEN run_id = :old THEN 1 ELSE 0 END)
"""


def _finding_changes(connection) -> str:
    amount_fen = "amount_fen" if store.has_units(connection) else "amount_yuan * 100"
    return f"""
        SELECT * FROM (
            SELECT uscc, {store.dialect(connection).policy_id("policy")} AS policy, rule, payer,
                   sum(CASE WHEN run_id = :old THEN {amount_fen} END) AS before_fen,
                   sum(CASE WHEN run_id = :new THEN {amount_fen} END) AS after_fen
            FROM findings WHERE run_id IN (:old, :new) AND status = 'imposed'
            GROUP BY uscc, 2, rule, payer) g
        WHERE before_fen {store.dialect(connection).IS_DISTINCT} after_fen
    """


def _temporary_tables(connection) -> None:
    """The temporary tables of :func:`_compare`, empty, before its snapshot begins (a
    PostgreSQL read-only transaction creates no table, even a temporary one)."""
    temp = store.dialect(connection).TEMP
    for table, sql in (("list_changes", _LIST_CHANGES), ("finding_changes", _finding_changes(connection))):
        connection.execute(f"DROP TABLE IF EXISTS {temp}.{table}")
        connection.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM ({sql}) AS shape LIMIT 0", {"old": 0, "new": 0})


def _compare(connection: sqlite3.Connection, old: int, new: int, limit: int) -> dict[str, Any]:
    """One grouped pass over both runs' rows per table, kept in temporary tables, then read."""
    unit = sum_unit(store.run_unit(connection, old), store.run_unit(connection, new))
    report: dict[str, Any] = {"since": old, "run": new, "unit": unit, "warnings": _warnings(connection, old, new)}
    units = store.has_units(connection)  # else a store before version 8, read as it is: all whole yuan
    dialect = store.dialect(connection)
    connection.execute(f"INSERT INTO {dialect.TEMP}.list_changes {_LIST_CHANGES}", {"old": old, "new": new})
    lists = {}
    for name, now in (("entered", 1), ("left", 0)):
        sql = "SELECT list, uscc FROM list_changes WHERE now = ? ORDER BY list, uscc"
        count, items = _items(connection, sql, (now,), limit)
        lists[name] = {"count": count, "items": items}
    report["lists"] = lists
    report["entries"] = entry_changes(connection, old, new, limit)
    connection.execute(f"INSERT INTO {dialect.TEMP}.finding_changes {_finding_changes(connection)}", {"old": old, "new": new})
    columns = "uscc, policy, rule, payer"
    queries = {
        "appeared": f"SELECT {columns}, after_fen AS amount_fen FROM finding_changes WHERE before_fen IS NULL "
                    "ORDER BY after_fen DESC, uscc",
        "disappeared": f"SELECT {columns}, before_fen AS amount_fen FROM finding_changes WHERE after_fen IS NULL "
                       "ORDER BY before_fen DESC, uscc",
        "changed": f"SELECT {columns}, before_fen, after_fen FROM finding_changes "
                   "WHERE before_fen IS NOT NULL AND after_fen IS NOT NULL "
                   "ORDER BY abs(after_fen - before_fen) DESC, uscc",
    }
    findings = {}
    for name, sql in queries.items():
        count, items = _items(connection, sql, (), limit)
        for item in items:  # in yuan as the report's unit shows them; the fen beside
            for key in ("amount", "before", "after"):
                if f"{key}_fen" in item:
                    item[f"{key}_yuan"] = yuan_json(item[f"{key}_fen"], unit)
        findings[name] = {"count": count, "items": items}
    report["findings"] = findings
    deduction_fen = "deduction_fen" if units else "deduction_yuan * 100"
    districts = connection.execute(
        f"""
        SELECT coalesce(n.district, o.district) AS district,
               coalesce(o.{deduction_fen}, 0), coalesce(n.{deduction_fen}, 0),
               coalesce(o.cases, 0), coalesce(n.cases, 0)
        FROM (SELECT * FROM district_totals WHERE run_id = ?) n
        FULL OUTER JOIN (SELECT * FROM district_totals WHERE run_id = ?) o USING (district)
        ORDER BY 1
        """,
        (new, old),
    ).fetchall()
    moved = sorted(((d, b, a, cb, ca) for d, b, a, cb, ca in districts if (b, cb) != (a, ca)),
                   key=lambda d: (-abs(d[2] - d[1]), d[0]))
    report["districts"] = [
        {"district": d, "before_yuan": yuan_json(b, unit), "after_yuan": yuan_json(a, unit),
         "change_yuan": yuan_json(a - b, unit), "cases_before": cb, "cases_after": ca,
         "before_fen": b, "after_fen": a}
        for d, b, a, cb, ca in moved
    ]
    total_fen = "total_fen" if units else "total_yuan * 100"
    totals = dict(connection.execute(f"SELECT id, {total_fen} FROM runs WHERE id IN (?, ?)", (old, new)).fetchall())
    report["total_yuan"] = {"before": yuan_json(totals[old], unit), "after": yuan_json(totals[new], unit),
                            "change": yuan_json(totals[new] - totals[old], unit)}
    report["total_fen"] = {"before": totals[old], "after": totals[new], "change": totals[new] - totals[old]}
    summaries = dict(connection.execute("SELECT id, summary FROM runs WHERE id IN (?, ?)", (old, new)).fetchall())
    already = {run: json.loads(summaries[run] or "{}").get("already_assessed", 0) for run in (old, new)}
    report["already_assessed"] = {"before": already[old], "after": already[new]}
    return report


def _warnings(connection: sqlite3.Connection, old: int, new: int) -> list[str]:
    """Differences between the two runs that are not changes of the facts or the law: two
    runs that read different sources compare two registries, not one registry over time."""
    rows = {r[0]: r[1:] for r in connection.execute("SELECT id, source, as_of FROM runs WHERE id IN (?, ?)", (old, new))}
    warnings = []
    if rows[old][0] != rows[new][0]:
        warnings.append(f"the runs read different sources: run {old} {rows[old][0]}, run {new} {rows[new][0]}; "
                        "every difference of the files shows as a change")
    return warnings


def render_text(report: dict[str, Any]) -> str:
    lines = [f"changes from run {report['since']} to run {report['run']}"]
    lines += [f"warning: {warning}" for warning in report.get("warnings", ())]
    unit = report.get("unit", YUAN)

    def money(fen: int, sign: str = "") -> str:
        return f"{in_yuan(fen, unit):{sign},}"

    total = report["total_fen"]
    lines.append(f"扣款合计 total: {money(total['before'])} -> {money(total['after'])} 元 ({money(total['change'], '+')})")
    already = report.get("already_assessed", {})
    if already.get("before") or already.get("after"):
        lines.append(f"已处理 already assessed by earlier runs (not counted): {already['before']:,} -> {already['after']:,}")
    for name, label in (("entered", "列入 entered"), ("left", "移出 left")):
        part = report["lists"][name]
        lines.append(f"名单 {label}: {part['count']:,}")
        lines += [f"  {item['list']}  {item['uscc']}" for item in part["items"]]
        if part["count"] > len(part["items"]):
            lines.append(f"  ... {part['count'] - len(part['items']):,} more")
    entries = report.get("entries")
    if entries:
        for name, label in (("entered", "名单条目 entries entered"), ("ended", "名单条目 entries ended")):
            part = entries[name]
            lines.append(f"{label}: {part['count']:,}")
            for item in part["items"]:
                until = item["planned_end"] or "open-ended"
                what = (f"since {item['started']} until {until}: {item['reason']} ({item['policy']} {item['rule']})"
                        if name == "entered" else f"{item['started']} .. {item['ended']}, {item['exit']}: {item['exit_reason']}")
                case = f" (case {item['case_id']})" if item["case_id"] else ""
                lines.append(f"  {item['list']}  {item['uscc']}{case}  {what}")
            if part["count"] > len(part["items"]):
                lines.append(f"  ... {part['count'] - len(part['items']):,} more")
    for name, label in (("appeared", "新增 appeared"), ("disappeared", "消失 disappeared"), ("changed", "变化 changed")):
        part = report["findings"][name]
        lines.append(f"处罚 findings {label}: {part['count']:,}")
        for item in part["items"]:
            shown = (f"{money(item['before_fen'])} -> {money(item['after_fen'])}" if name == "changed"
                     else money(item["amount_fen"]))
            lines.append(f"  {item['uscc']}  {item['policy']} {item['rule']}  {item['payer']}  {shown} 元")
        if part["count"] > len(part["items"]):
            lines.append(f"  ... {part['count'] - len(part['items']):,} more")
    lines.append(f"区县 districts that moved: {len(report['districts'])}")
    for d in report["districts"]:
        lines.append(
            f"  {d['district']}  {money(d['before_fen'])} -> {money(d['after_fen'])} 元 "
            f"({money(d['after_fen'] - d['before_fen'], '+')}), "
            f"cases {d['cases_before']:,} -> {d['cases_after']:,}"
        )
    return "\n".join(lines)


__all__ = ["compare_runs", "render_text"]
