"""List entries across runs: who is on which list, since when, until when, and why.

A run's rules say which entries are justified on its as_of (the ``sanctions`` of the run,
with their ``from:``/``until:`` dates) and which lifts fired (``lifts``). The state in
``list_entries`` is never an input to the rules, so the three evaluators stay comparable;
at the end of each run (in its one transaction, so a killed run changes nothing)
:func:`update_entries` diffs the justified set with the stored state:

- a justified entry with no entry of its key is entered (``first_run``): started on its
  ``from:`` (default: the run's as_of, or a case's decision date), planned to end on its
  ``until:`` (inclusive; none: open-ended);
- a justified entry already open is kept (``last_run``; its planned end follows the facts);
- a lift ends the subject's open entries on its list that had started by the lift's date
  and not yet ended: exit ``lifted`` with the lifting rule's reason, last day the day before
  the lift takes effect (a lift from a case ends that case's entries only);
- an open entry whose planned end is before the run's as_of is ended ``expired`` on its
  planned end: **an entry is on the list on its planned end day and off the day after**
  (民法典 arts 201-203: a period ends at the end of its last day; ``until:
  add_years(decided, 1)`` is the corresponding day a year on, and that day is served);
- an open entry no longer justified is ended ``no_longer_justified`` (the facts changed, or
  no version of its policy is in force), last day the day before the run's as_of. A run
  without a case table leaves the entries of cases alone.

An entry that ended otherwise than ``no_longer_justified`` is final for its key: the same
justification does not enter it again (a served or lifted entry is not re-imposed by the
facts that imposed it; a new case is a new key). ``end_by_decision`` ends an entry by an
explicit decision (exit ``decision``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from . import _store as store

EXITS = ("expired", "lifted", "no_longer_justified", "decision")
_POLICY_ID = "CASE WHEN instr(s.policy, '@') THEN substr(s.policy, 1, instr(s.policy, '@') - 1) ELSE s.policy END"
_VERSION = "CASE WHEN instr(s.policy, '@') THEN substr(s.policy, instr(s.policy, '@') + 1) ELSE '' END"


def update_entries(db: sqlite3.Connection, run_id: int, as_of: dt.date, *, cases_judged: bool,
                   replaced: int | None = None, left_alone: tuple[str, ...] = ()) -> dict[str, int]:
    """Bring the list entries up to run ``run_id`` (inside the run's transaction); returns
    how many entries were entered, kept and ended per exit. ``left_alone``: the ids of
    policies whose records the run did not judge (a kind whose table it was not given):
    their entries are not ended as no longer justified."""
    day = as_of.isoformat()
    params = {"run": run_id, "day": day, "left_alone": json.dumps(list(left_alone))}
    if replaced is not None:  # a forced rerun replaces that run: its entries are now this run's
        for column in ("first_run", "last_run", "exit_run"):
            db.execute(f"UPDATE list_state SET {column} = ? WHERE {column} = ?", (run_id, replaced))
    scope = _scope(cases_judged)
    open_before = db.execute(f"SELECT count(*) FROM list_state WHERE exit IS NULL{scope}", params).fetchone()[0]
    _justified(db, params)
    counts: dict[str, int] = {}
    # kept: still justified and open
    counts["kept"] = db.execute("""
        UPDATE list_state SET last_run = :run, planned_end = j.planned_end, text_id = j.text_id,
               started = CASE WHEN j.dated_start THEN j.started ELSE list_state.started END
        FROM justified j
        WHERE list_state.exit IS NULL AND list_state.uscc = j.uscc AND list_state.rule_id = j.rule_id
              AND list_state.tag = j.tag""", params).rowcount
    # entered: no open entry of the key, and none that ended for good
    counts["entered"] = db.execute("""
        INSERT INTO list_state (rule_id, uscc, tag, case_id, text_id, started, planned_end, first_run, last_run)
        SELECT j.rule_id, j.uscc, j.tag, j.case_id, j.text_id, j.started, j.planned_end, :run, :run
        FROM justified j JOIN list_rules r ON r.id = j.rule_id
        WHERE NOT EXISTS (SELECT 1 FROM list_state e WHERE e.uscc = j.uscc AND e.rule_id = j.rule_id AND e.tag = j.tag
                          AND (e.exit IS NULL OR e.exit != 'no_longer_justified'))
        ORDER BY r.list, j.uscc, r.policy, r.rule, j.tag""", params).rowcount
    # lifted: the earliest lift of this run that reaches the entry (started by then, not ended)
    before = db.total_changes
    db.execute("""
        WITH reach AS (
            SELECT e.id AS id, l.effective AS effective, l.reason || ' (' || l.policy || ' ' || l.rule || ')' AS why,
                   row_number() OVER (PARTITION BY e.id ORDER BY l.effective, l.policy, l.rule) AS n
            FROM lifts l JOIN list_state e ON e.uscc = l.uscc AND (l.case_id IS NULL OR l.case_id = e.case_id)
                 JOIN list_rules r ON r.id = e.rule_id AND r.list = l.list
            WHERE l.run_id = :run AND e.exit IS NULL AND e.started <= l.effective
                  AND (e.planned_end IS NULL OR e.planned_end >= l.effective))
        UPDATE list_state SET exit = 'lifted', ended = date(r.effective, '-1 day'), exit_reason = r.why,
               exit_run = :run
        FROM reach r WHERE list_state.id = r.id AND r.n = 1""", params)
    counts["lifted"] = db.total_changes - before  # (rowcount is -1 for a statement with WITH)
    counts["expired"] = db.execute("""
        UPDATE list_state SET exit = 'expired', ended = planned_end, exit_run = :run,
               exit_reason = '期满 planned end ' || planned_end || ' passed'
        WHERE exit IS NULL AND planned_end IS NOT NULL AND planned_end < :day""", params).rowcount
    counts["no_longer_justified"] = 0
    if open_before > counts["kept"]:  # else every entry open before this run is still justified
        counts["no_longer_justified"] = db.execute(f"""
            UPDATE list_state SET exit = 'no_longer_justified', exit_run = :run,
                   ended = max(date(:day, '-1 day'), date(started, '-1 day')),
                   exit_reason = '不再符合 no rule justifies it as of ' || :day || ' (the facts changed, or the law is not in force)'
            WHERE exit IS NULL{scope} AND NOT EXISTS (
                SELECT 1 FROM justified j WHERE j.uscc = list_state.uscc AND j.rule_id = list_state.rule_id
                                              AND j.tag = list_state.tag)""", params).rowcount
    db.execute("DROP TABLE temp.justified")
    return counts


def _scope(cases_judged: bool) -> str:
    """The entries a run judges: a run without a case table leaves the entries of cases
    alone, and every run those of the policies ``:left_alone`` (kinds it was not given)."""
    cases = "" if cases_judged else " AND case_id IS NULL"
    return cases + (" AND rule_id NOT IN (SELECT id FROM list_rules"
                    " WHERE policy IN (SELECT value FROM json_each(:left_alone)))")


def _justified(db: sqlite3.Connection, params: dict[str, Any]) -> None:
    """``temp.justified``: one row per key that the run's sanctions justify. Where several
    entries of the run share a key, the earliest start wins, the latest planned end (open
    when any is open), and the version, reason and citation that sort first."""
    db.execute(f"""INSERT OR IGNORE INTO list_rules (list, policy, rule)
                   SELECT DISTINCT s.list, {_POLICY_ID}, s.rule FROM sanction_slots s WHERE s.run_id = :run""", params)
    db.execute(f"""INSERT OR IGNORE INTO list_texts (version, reason, citation)
                   SELECT DISTINCT {_VERSION}, coalesce(s.reason, ''), coalesce(s.citation, '')
                   FROM sanction_slots s WHERE s.run_id = :run""", params)
    db.execute("DROP TABLE IF EXISTS temp.run_slots")
    db.execute(f"""
        CREATE TEMP TABLE run_slots AS
        SELECT s.slot AS slot, r.id AS rule_id,
               -- the texts' order in the high bits, the text's id in the low 32: min() gives both
               (rank() OVER (ORDER BY t.version, t.reason, t.citation) << 32) | t.id AS text_order
        FROM sanction_slots s
             JOIN list_rules r ON (r.list, r.policy, r.rule) = (s.list, {_POLICY_ID}, s.rule)
             JOIN list_texts t ON (t.version, t.reason, t.citation)
                                  = ({_VERSION}, coalesce(s.reason, ''), coalesce(s.citation, ''))
        WHERE s.run_id = :run""", params)
    db.execute("DROP TABLE IF EXISTS temp.justified")
    db.execute("""
        CREATE TEMP TABLE justified (
            uscc TEXT NOT NULL, rule_id INTEGER NOT NULL, tag TEXT NOT NULL, case_id TEXT, started TEXT NOT NULL,
            dated_start INTEGER NOT NULL, planned_end TEXT, text_id INTEGER NOT NULL,
            PRIMARY KEY (uscc, rule_id, tag)) WITHOUT ROWID""")
    db.execute("""
        INSERT INTO justified (uscc, rule_id, tag, case_id, started, dated_start, planned_end, text_id)
        SELECT uscc, rule_id, coalesce(case_id, start, '') AS tag, min(case_id), min(coalesce(start, :day)),
               max(start IS NOT NULL), CASE WHEN count(planned_end) < count(*) THEN NULL ELSE max(planned_end) END,
               min(text_order) & 4294967295
        FROM (SELECT m.rule_id AS rule_id, m.text_order AS text_order,
                     CASE e.type WHEN 'array' THEN e.value ->> 0 ELSE e.value END AS uscc,
                     CASE e.type WHEN 'array' THEN nullif(e.value ->> 1, '') END AS case_id,
                     CASE e.type WHEN 'array' THEN e.value ->> 2 END AS start,
                     CASE e.type WHEN 'array' THEN e.value ->> 3 END AS planned_end
              FROM sanction_chunks c JOIN temp.run_slots m ON m.slot = c.slot, json_each(c.usccs) e
              WHERE c.run_id = :run)
        GROUP BY uscc, rule_id, tag""", params)
    db.execute("DROP TABLE temp.run_slots")


def end_by_decision(path, entry_id: int, on: dt.date, reason: str) -> dict[str, Any]:
    """End open entry ``entry_id`` by an explicit decision: on the list through the day
    before ``on``. Returns the entry as ended."""
    if not reason.strip():
        raise store.StoreError("a decision that ends a list entry needs its reason")
    connection = store.connect(path)
    try:
        with store.run_lock(path):
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute("SELECT exit, started FROM list_state WHERE id = ?", (entry_id,)).fetchone()
                if row is None:
                    raise store.StoreError(f"no list entry {entry_id}")
                if row[0] is not None:
                    raise store.StoreError(f"list entry {entry_id} has already ended ({row[0]})")
                last = max((on - dt.timedelta(days=1)).isoformat(), (dt.date.fromisoformat(row[1]) - dt.timedelta(days=1)).isoformat())
                connection.execute(
                    "UPDATE list_state SET exit = 'decision', ended = ?, exit_reason = ? WHERE id = ?",
                    (last, reason.strip(), entry_id))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return _entries(connection, "WHERE id = ?", (entry_id,))[0]
    finally:
        connection.close()


_COLUMNS = ("id, list, uscc, policy, version, rule, case_id, started, planned_end, ended, exit, exit_reason, reason, "
            "citation, first_run, last_run, exit_run")


def _entries(connection: sqlite3.Connection, where: str, params: tuple, limit: int = 0) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLUMNS} FROM list_entries {where} ORDER BY list, uscc, started, id"
    cursor = connection.execute(sql + (" LIMIT ?" if limit else ""), params + ((limit,) if limit else ()))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _has_state(connection: sqlite3.Connection) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'list_entries'").fetchone() is not None


def lists_as_of(path, day: dt.date, *, list_id: str | None = None, uscc: str | None = None) -> dict[str, Any]:
    """Who is on which list on ``day`` (since when, until when, why), and the entries that
    had ended by then (with their exits), as the latest run left the state."""
    connection = store.connect(path, readonly=True)
    try:
        if not _has_state(connection):
            raise store.StoreError(f"{path}: no list entries yet (an older results database; the next run adds them)")
        filters, params = [], []
        if list_id:
            filters.append("list = ?")
            params.append(list_id)
        if uscc:
            filters.append("uscc = ?")
            params.append(uscc)
        extra = "".join(f" AND {f}" for f in filters)
        iso = day.isoformat()
        on = _entries(connection, "WHERE started <= ? AND (ended IS NULL OR ended >= ?) "
                      f"AND (planned_end IS NULL OR planned_end >= ?){extra}", (iso, iso, iso, *params))
        ended = _entries(connection, f"WHERE started <= ? AND coalesce(ended, planned_end) < ?{extra}",
                         (iso, iso, *params))
        for entry in ended:  # planned to end by then, not yet ended by a run: expired as planned
            if entry["exit"] is None:
                entry["exit"], entry["ended"] = "expired", entry["planned_end"]
                entry["exit_reason"] = f"期满 planned end {entry['planned_end']} (no run since has recorded it)"
        latest = connection.execute("SELECT id, as_of FROM runs WHERE status = 'done' ORDER BY id DESC LIMIT 1").fetchone()
        return {"as_of": iso, "list": list_id, "uscc": uscc,
                "state_from_run": {"run": latest[0], "as_of": latest[1]} if latest else None,
                "on_list": on, "ended": ended}
    finally:
        connection.close()


def entry_changes(connection: sqlite3.Connection, old: int, new: int, limit: int) -> dict[str, Any]:
    """Entries entered and ended by the runs after ``old`` up to ``new``, with reasons."""
    if not _has_state(connection):
        return {"entered": {"count": 0, "items": []}, "ended": {"count": 0, "items": []}}
    report = {}
    for name, column in (("entered", "first_run"), ("ended", "exit_run")):
        where, params = f"WHERE {column} > ? AND {column} <= ?", (old, new)
        count = connection.execute(f"SELECT count(*) FROM list_entries {where}", params).fetchone()[0]
        report[name] = {"count": count, "items": _entries(connection, where, params, limit)}
    return report


def render_lists(report: dict[str, Any]) -> str:
    state = report["state_from_run"]
    known = f" (state of run {state['run']}, as of {state['as_of']})" if state else " (no run yet)"
    lines = [f"名单 lists on {report['as_of']}{known}"]
    for entry in report["on_list"]:
        lines.append(f"  {entry['list']}  {entry['uscc']}{_case(entry)}  since {entry['started']}  "
                     f"until {entry['planned_end'] or 'open-ended 无期限'}")
        lines.append(f"      {entry['reason']}  ({entry['policy']} {entry['rule']}; {entry['citation']})")
    lines.append(f"on a list: {len(report['on_list']):,}")
    lines.append(f"已移出 ended by then: {len(report['ended']):,}")
    for entry in report["ended"]:
        lines.append(f"  {entry['list']}  {entry['uscc']}{_case(entry)}  {entry['started']} .. {entry['ended']}  "
                     f"{entry['exit']}: {entry['exit_reason']}")
    return "\n".join(lines)


def _case(entry: dict[str, Any]) -> str:
    return f" (case {entry['case_id']})" if entry.get("case_id") else ""


__all__ = ["EXITS", "end_by_decision", "entry_changes", "lists_as_of", "render_lists", "update_entries"]
