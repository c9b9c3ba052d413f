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
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import _store as store
from ._lists import entry_changes

_POLICY_ID = "CASE WHEN instr(policy, '@') THEN substr(policy, 1, instr(policy, '@') - 1) ELSE policy END"


def _items(connection: sqlite3.Connection, sql: str, params: tuple, limit: int) -> tuple[int, list[dict[str, Any]]]:
    count = connection.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
    cursor = connection.execute(sql + (" LIMIT ?" if limit else ""), params + ((limit,) if limit else ()))
    names = [d[0] for d in cursor.description]
    return count, [dict(zip(names, row, strict=True)) for row in cursor]


def compare_runs(db, since: str | int, run: str | int = "latest", *, limit: int = 100) -> dict[str, Any]:
    connection = store.connect(db, readonly=True)
    try:
        old = store.resolve_run(connection, since)
        new = store.resolve_run(connection, run)
        return _compare(connection, old, new, limit)
    finally:
        connection.close()


def _compare(connection: sqlite3.Connection, old: int, new: int, limit: int) -> dict[str, Any]:
    """One grouped pass over both runs' rows per table, kept in temporary tables, then read."""
    report: dict[str, Any] = {"since": old, "run": new, "warnings": _warnings(connection, old, new)}
    for table in ("list_changes", "finding_changes"):
        connection.execute(f"DROP TABLE IF EXISTS temp.{table}")
    connection.execute(
        """
        CREATE TEMP TABLE list_changes AS
        SELECT list, uscc, max(run_id = :new) AS now FROM sanctions WHERE run_id IN (:old, :new)
        GROUP BY list, uscc HAVING max(run_id = :new) != max(run_id = :old)
        """,
        {"old": old, "new": new},
    )
    lists = {}
    for name, now in (("entered", 1), ("left", 0)):
        sql = "SELECT list, uscc FROM list_changes WHERE now = ? ORDER BY list, uscc"
        count, items = _items(connection, sql, (now,), limit)
        lists[name] = {"count": count, "items": items}
    report["lists"] = lists
    report["entries"] = entry_changes(connection, old, new, limit)
    connection.execute(
        f"""
        CREATE TEMP TABLE finding_changes AS
        SELECT uscc, {_POLICY_ID} AS policy, rule, payer,
               sum(CASE WHEN run_id = :old THEN amount_yuan END) AS before_yuan,
               sum(CASE WHEN run_id = :new THEN amount_yuan END) AS after_yuan
        FROM findings WHERE run_id IN (:old, :new) AND status = 'imposed'
        GROUP BY uscc, 2, rule, payer
        HAVING before_yuan IS NOT after_yuan
        """,
        {"old": old, "new": new},
    )
    columns = "uscc, policy, rule, payer"
    queries = {
        "appeared": f"SELECT {columns}, after_yuan AS amount_yuan FROM finding_changes WHERE before_yuan IS NULL "
                    "ORDER BY after_yuan DESC, uscc",
        "disappeared": f"SELECT {columns}, before_yuan AS amount_yuan FROM finding_changes WHERE after_yuan IS NULL "
                       "ORDER BY before_yuan DESC, uscc",
        "changed": f"SELECT {columns}, before_yuan, after_yuan FROM finding_changes "
                   "WHERE before_yuan IS NOT NULL AND after_yuan IS NOT NULL "
                   "ORDER BY abs(after_yuan - before_yuan) DESC, uscc",
    }
    findings = {}
    for name, sql in queries.items():
        count, items = _items(connection, sql, (), limit)
        findings[name] = {"count": count, "items": items}
    report["findings"] = findings
    districts = connection.execute(
        """
        SELECT coalesce(n.district, o.district) AS district,
               coalesce(o.deduction_yuan, 0), coalesce(n.deduction_yuan, 0),
               coalesce(o.cases, 0), coalesce(n.cases, 0)
        FROM (SELECT * FROM district_totals WHERE run_id = ?) n
        FULL OUTER JOIN (SELECT * FROM district_totals WHERE run_id = ?) o USING (district)
        ORDER BY 1
        """,
        (new, old),
    ).fetchall()
    report["districts"] = [
        {"district": d, "before_yuan": b, "after_yuan": a, "change_yuan": a - b, "cases_before": cb, "cases_after": ca}
        for d, b, a, cb, ca in districts
        if (b, cb) != (a, ca)
    ]
    report["districts"].sort(key=lambda d: (-abs(d["change_yuan"]), d["district"]))
    totals = dict(connection.execute("SELECT id, total_yuan FROM runs WHERE id IN (?, ?)", (old, new)).fetchall())
    report["total_yuan"] = {"before": totals[old], "after": totals[new], "change": totals[new] - totals[old]}
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
    total = report["total_yuan"]
    lines.append(f"扣款合计 total: {total['before']:,} -> {total['after']:,} 元 ({total['change']:+,})")
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
            money = (f"{item['before_yuan']:,} -> {item['after_yuan']:,}" if name == "changed"
                     else f"{item['amount_yuan']:,}")
            lines.append(f"  {item['uscc']}  {item['policy']} {item['rule']}  {item['payer']}  {money} 元")
        if part["count"] > len(part["items"]):
            lines.append(f"  ... {part['count'] - len(part['items']):,} more")
    lines.append(f"区县 districts that moved: {len(report['districts'])}")
    for d in report["districts"]:
        lines.append(
            f"  {d['district']}  {d['before_yuan']:,} -> {d['after_yuan']:,} 元 ({d['change_yuan']:+,}), "
            f"cases {d['cases_before']:,} -> {d['cases_after']:,}"
        )
    return "\n".join(lines)


__all__ = ["compare_runs", "render_text"]
