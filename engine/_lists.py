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

What a run writes is what changed (store version 8, ``store.sqlite.LIST_ENTRIES_VIEW``): the entries
it entered, as chunks, and a row for each entry that ended or whose planned end, start or text
changed. An open entry that the run finds justified as it was is not written: its
``last_run`` is the last run that judged its scope, which kept it (a run judging an open
entry either keeps or ends it). Every run's state is still one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._arrow import (
    bools,
    fill_null,
    from_bools,
    from_numbers,
    numbers,
    one_array,
    scalar,
    string_buffers,
    string_scalar,
    strings,
)

from . import store
from ._chunks import _json_rows, codes_of_json

EXITS = ("expired", "lifted", "no_longer_justified", "decision")


_SEP = string_scalar("\x1f")  # between the parts of a key: no uscc, rule id or tag holds it
_LOW_32 = scalar(0xFFFFFFFF, pa.int64())
ENTERED_CHUNK = 65_536  # entries per row of list_chunks


def update_entries(db: sqlite3.Connection, run_id: int, as_of: dt.date, *, cases_judged: bool,
                   replaced: int | None = None, left_alone: tuple[str, ...] = ()) -> dict[str, int]:
    """Bring the list entries up to run ``run_id`` (inside the run's transaction); returns
    how many entries were entered, kept and ended per exit. ``left_alone``: the ids of
    policies whose records the run did not judge (a kind whose table it was not given):
    their entries are not ended as no longer justified.

    The justified set and the open entries are compared in Arrow (hash lookups on a key
    text); only what changed is written: entered entries as chunks, and a row of
    ``list_state`` for each entry that ends or whose planned end, start or text changes. An
    open entry still justified as it was costs no write (see ``store.sqlite.LIST_ENTRIES_VIEW``)."""
    day = as_of.isoformat()
    if replaced is not None:  # a forced rerun replaces that run: its entries are now this run's
        for column in ("first_run", "last_run", "exit_run"):
            db.execute(f"UPDATE list_state SET {column} = ? WHERE {column} = ?", (run_id, replaced))
        db.execute("UPDATE list_chunks SET run_id = ? WHERE run_id = ?", (run_id, replaced))
        db.execute("UPDATE list_scopes SET last_run = ? WHERE last_run = ?", (run_id, replaced))
    justified = _justified(db, run_id, day)
    rules = {rule_id: (list_id, policy, rule) for rule_id, list_id, policy, rule
             in db.execute("SELECT id, list, policy, rule FROM list_rules")}
    scopes = {(policy, bool(cases)): last for policy, cases, last in db.execute("SELECT policy, cases, last_run FROM list_scopes")}
    before = _open_entries(db)
    n_before = before.num_rows
    # one hash lookup says both which justified keys are open and which repeat an earlier one
    keys = _keys(justified)
    at = _index_in(keys, pa.concat_arrays([_keys(before), keys]))
    fresh = at >= n_before
    repeated = (at[fresh] - n_before != np.flatnonzero(fresh)).any()  # a key not open, twice
    repeated = repeated or (np.bincount(at[~fresh], minlength=1).max(initial=0) > 1)  # an open key, twice
    if repeated:  # several entries of one key
        justified = _merge(justified)
        at = _index_in(_keys(justified), _keys(before))
    at[at >= n_before] = -1
    kept = at >= 0
    counts = {"kept": int(np.count_nonzero(kept))}
    # entered: no open entry of the key, and none that ended for good
    new = np.flatnonzero(~kept)
    if new.size:
        final = _final_keys(db)
        if len(final):
            new = new[~bools(pc.is_in(_keys(justified.take(from_numbers(new))), value_set=final))]
    counts["entered"] = int(new.size)
    entered = _order_entered(justified if new.size == justified.num_rows else justified.take(from_numbers(new)), rules)
    first_id = _next_id(db)
    entered_ids = np.arange(first_id, first_id + entered.num_rows, dtype=np.int64)
    _write_chunks(db, run_id, day, entered, entered_ids)

    # the open entries now: those before (kept ones as justified now) and those entered
    live, justified_now, changed = _live(before, justified, at, kept, entered, entered_ids, run_id, rules, scopes)
    ended: dict[int, tuple[str, str, str]] = {}  # row of live -> (exit, last day, reason)
    _lift(db, run_id, live, rules, ended)
    counts["lifted"] = len(ended)
    planned_end = live["planned_end"]
    expiring = np.flatnonzero(bools(pc.less(planned_end, string_scalar(day))))
    for i, end in zip(expiring.tolist(), planned_end.take(from_numbers(expiring)).to_pylist(), strict=True):
        ended.setdefault(i, ("expired", end, f"期满 planned end {end} passed"))
    counts["expired"] = len(ended) - counts["lifted"]
    counts["no_longer_justified"] = 0
    if before.num_rows > counts["kept"]:  # else every entry open before this run is still justified
        judged = np.zeros(max(rules, default=0) + 1, bool)
        for rule_id, (_, policy, _) in rules.items():
            judged[rule_id] = policy not in left_alone
        rule_ids = numbers(live["rule_id"])
        in_scope = judged[rule_ids] & (cases_judged | ~bools(pc.is_valid(live["case_id"])))
        gone = np.flatnonzero(in_scope & ~justified_now)
        gone = gone[gone < before.num_rows]
        why = f"不再符合 no rule justifies it as of {day} (the facts changed, or the law is not in force)"
        yesterday = (as_of - dt.timedelta(days=1)).isoformat()
        for i, start in zip(gone.tolist(), live["started"].take(from_numbers(gone)).to_pylist(), strict=True):
            if i not in ended:
                day_before_start = (dt.date.fromisoformat(start) - dt.timedelta(days=1)).isoformat()
                ended[i] = ("no_longer_justified", max(yesterday, day_before_start), why)
                counts["no_longer_justified"] += 1
    written = sorted(ended) + [i for i in np.flatnonzero(changed).tolist() if i not in ended]
    rows = live.take(from_numbers(np.array(written, np.int64))).to_pylist()
    sql = store.dialect(db)
    sql.replace_rows(db, "list_state", _STATE_COLUMNS, ("id",), [(r["id"], r["rule_id"], r["uscc"], r["tag"], r["case_id"], r["text_id"], r["started"], r["planned_end"],
                     *((ended[i][1], ended[i][0], ended[i][2]) if i in ended else (None, None, None)),
                     r["first_run"], r["last_run"], run_id if i in ended else None)
                    for i, r in zip(written, rows, strict=True)])
    # this run judged the entries of every policy it was not told to leave alone
    policies = sorted({policy for _, policy, _ in rules.values()} - set(left_alone))
    sql.replace_rows(db, "list_scopes", ("policy", "cases", "last_run"), ("policy", "cases"),
                     [(policy, cases, run_id) for policy in policies for cases in ((0, 1) if cases_judged else (0,))])
    _drop_spent_chunks(db)
    return counts


_STATE_COLUMNS = ("id", "rule_id", "uscc", "tag", "case_id", "text_id", "started", "planned_end", "ended", "exit",
                  "exit_reason", "first_run", "last_run", "exit_run")


def _keys(entries: pa.Table) -> pa.Array:
    """An entry's key as one text: uscc, rule id, tag."""
    return one_array(pc.binary_join_element_wise(entries["uscc"], pc.cast(entries["rule_id"], pa.string()), entries["tag"], _SEP))


KEYS_PER_LOOKUP = 250_000  # keys of the value set hashed at once (_index_in)


def _index_in(keys: pa.Array, value_set: pa.Array) -> np.ndarray:
    """``pc.index_in`` (-1: not found), a bucket of keys at a time: Arrow's hash table of a
    value set of 1.5 M keys (770 K open entries and as many justified) took ~115 MiB at once.
    Equal keys share a bucket (_bucket), and the first index of a key in its bucket's part of
    the value set is its first in the whole."""
    buckets = max(1, -(-len(value_set) // KEYS_PER_LOOKUP))
    if buckets == 1:
        return numbers(pc.index_in(keys, value_set=value_set), fill=-1).astype(np.int64)
    of_key, of_value = _bucket(keys, buckets), _bucket(value_set, buckets)
    at = np.full(len(keys), -1, np.int64)
    for bucket in range(buckets):
        mine, theirs = np.flatnonzero(of_key == bucket), np.flatnonzero(of_value == bucket)
        if not mine.size or not theirs.size:
            continue
        found = numbers(pc.index_in(keys.take(from_numbers(mine)), value_set=value_set.take(from_numbers(theirs))),
                        fill=-1).astype(np.int64)
        at[mine] = np.where(found >= 0, theirs[found.clip(min=0)], -1)
    return at


def _bucket(keys: pa.Array, buckets: int) -> np.ndarray:
    """A key's bucket from two of its bytes (a USCC's 16th and 17th characters: the end of
    its organization code, nearly uniform), or its last ones where it is shorter."""
    if not len(keys):
        return np.zeros(0, np.int64)
    offsets, data = string_buffers(keys)
    starts, last = offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64) - 1
    return (data[starts + np.minimum(15, last)].astype(np.int64) * 31 + data[starts + np.minimum(16, last)]) % buckets


_JUSTIFIED = pa.schema([("uscc", pa.string()), ("rule_id", pa.int64()), ("case_id", pa.string()),
                        ("start", pa.string()), ("planned_end", pa.string()), ("text_order", pa.int64())])


def _justified(db: sqlite3.Connection, run_id: int, day: str) -> pa.Table:
    """One row per key that run ``run_id``'s sanctions justify: uscc, rule_id, tag, case_id,
    started, dated (a start given by the sanction), planned_end, text_id, text_order. Where several entries
    of the run share a key, the earliest start wins, the latest planned end (open when any is
    open), and the version, reason and citation that sort first."""
    params = {"run": run_id}
    sql = store.dialect(db)
    _POLICY_ID, _VERSION = sql.policy_id("s.policy"), sql.policy_version("s.policy")
    db.execute(sql.insert_missing("list_rules", "list, policy, rule", f"""
                   SELECT DISTINCT s.list, {_POLICY_ID}, s.rule FROM sanction_slots s WHERE s.run_id = :run"""), params)
    db.execute(sql.insert_missing("list_texts", "version, reason, citation", f"""
                   SELECT DISTINCT {_VERSION}, coalesce(s.reason, ''), coalesce(s.citation, '')
                   FROM sanction_slots s WHERE s.run_id = :run"""), params)
    slots = db.execute(f"""
        SELECT s.slot, r.id, t.id, t.version, t.reason, t.citation
        FROM sanction_slots s
             JOIN list_rules r ON (r.list, r.policy, r.rule) = (s.list, {_POLICY_ID}, s.rule)
             JOIN list_texts t ON (t.version, t.reason, t.citation) = ({_VERSION}, coalesce(s.reason, ''), coalesce(s.citation, ''))
        WHERE s.run_id = :run""", params).fetchall()
    texts = sorted({(version, reason, citation, text_id) for _, _, text_id, version, reason, citation in slots})
    # the texts' order in the high bits, the text's id in the low 32: min() gives both
    order = {t[3]: (k << 32) | t[3] for k, t in enumerate(texts)}
    of_slot = {slot: (rule_id, order[text_id]) for slot, rule_id, text_id, *_ in slots}
    parts = []
    for slot, usccs in db.execute("SELECT slot, usccs FROM sanction_chunks WHERE run_id = ?", (run_id,)):
        rule_id, text_order = of_slot[slot]
        # an element: a uscc, or [uscc, case_id or "", start, planned_end] (null: the default start, an open end)
        columns = _chunk_columns(usccs, (None, None, None))
        n = len(columns[0])
        parts.append(pa.table([columns[0], from_numbers(np.full(n, rule_id, np.int64)), *columns[1:],
                               from_numbers(np.full(n, text_order, np.int64))], schema=_JUSTIFIED))
    table = pa.concat_tables(parts) if parts else _empty(_JUSTIFIED)
    start = table["start"]
    return pa.table({"uscc": table["uscc"], "rule_id": table["rule_id"],
                     "tag": pc.coalesce(table["case_id"], start, string_scalar("")), "case_id": table["case_id"],
                     "started": pc.coalesce(start, string_scalar(day)), "dated": pc.is_valid(start),
                     "planned_end": table["planned_end"], "text_id": pc.bit_wise_and(table["text_order"], _LOW_32),
                     "text_order": table["text_order"]})


def _chunk_columns(text: str, plain: tuple[str | None, ...]) -> list[pa.Array]:
    """A chunk's JSON array of entries as columns: the usccs, then one column per other part of
    an entry. An element that is a uscc alone takes ``plain``'s parts; an element that is an
    array holds every part, where "" reads as null in a part whose plain value is None."""
    codes = codes_of_json(text)  # nearly every chunk: valid USCCs only, read without json
    values = json.loads(text) if codes is None else ()
    if codes is not None or _plain(text):
        n = len(codes) if codes is not None else len(values)
        return [codes if codes is not None else strings(values),
                *(pa.nulls(n, pa.string()) if value is None else _repeated(value, n) for value in plain)]
    rows = [v if type(v) is list else [v, *plain] for v in values]
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(len(plain) + 1)]
    return [strings(columns[0]), *(strings(c) if value is not None else _optional_strings([v or None for v in c])
                                   for c, value in zip(columns[1:], plain, strict=True))]


def _empty(schema: pa.Schema) -> pa.Table:
    """A table of no rows (``Schema.empty_table`` imports pandas)."""
    return pa.table([pa.nulls(0, field.type) for field in schema], schema=schema)


def _optional_strings(values: list) -> pa.Array:
    """Python strings or None as an Arrow string array, from buffers (``strings`` with nulls)."""
    present = np.fromiter((v is not None for v in values), bool, len(values))
    texts = strings([v if v is not None else "" for v in values])
    if present.all():
        return texts
    validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), len(values), [validity, *texts.buffers()[1:]])


def _plain(text: str) -> bool:
    """Whether a JSON array of entries holds only texts (usccs), by its text: an array element
    starts the array or follows a comma (a text holding ',[' only costs the slower path)."""
    return not text.startswith("[[") and ",[" not in text and ", [" not in text


def _merge(table: pa.Table) -> pa.Table:
    """One row per key where several entries of the run share it: the earliest start, the
    latest planned end (open when any is open), the text that sorts first."""
    table = table.group_by(["uscc", "rule_id", "tag"], use_threads=False).aggregate(
        [("case_id", "min"), ("started", "min"), ("dated", "any"), ("planned_end", "max"),
         ("planned_end", "count"), ("uscc", "count"), ("text_order", "min")])
    open_ended = pc.less(table["planned_end_count"], table["uscc_count"])
    return pa.table({"uscc": table["uscc"], "rule_id": table["rule_id"], "tag": table["tag"],
                     "case_id": table["case_id_min"], "started": table["started_min"],
                     "dated": table["dated_any"],
                     "planned_end": pc.if_else(open_ended, pa.nulls(1, pa.string())[0], table["planned_end_max"]),
                     "text_id": pc.bit_wise_and(table["text_order_min"], _LOW_32),
                     "text_order": table["text_order_min"]})


_OPEN = pa.schema([("id", pa.int64()), ("rule_id", pa.int64()), ("uscc", pa.string()), ("tag", pa.string()),
                   ("case_id", pa.string()), ("text_id", pa.int64()), ("started", pa.string()),
                   ("planned_end", pa.string()), ("first_run", pa.int64()), ("last_run", pa.int64())])


def _open_entries(db: sqlite3.Connection) -> pa.Table:
    """Every open entry: the open rows of ``list_state`` and the chunks' entries no row hides;
    last_run as stored (a chunk's: its run)."""
    rows = db.execute("SELECT id, rule_id, uscc, tag, case_id, text_id, started, planned_end, first_run, last_run "
                      "FROM list_state WHERE exit IS NULL").fetchall()
    parts = [pa.table([from_numbers(np.array(c, np.int64)) if pa.types.is_integer(t.type) else _optional_strings(list(c))
                       for c, t in zip(zip(*rows, strict=True), _OPEN, strict=True)], schema=_OPEN)
             if rows else _empty(_OPEN)]
    chunks = db.execute("SELECT first_id, n, run_id, rule_id, text_id, started, rows FROM list_chunks ORDER BY first_id").fetchall()
    if chunks:
        hidden = np.fromiter((r[0] for r in db.execute("SELECT id FROM list_state WHERE id >= ?", (chunks[0][0],))), np.int64)
        for first_id, n, run, rule_id, text_id, started, text in chunks:
            # an element: a uscc (no tag, case or end; the chunk's start), or [uscc, tag, case_id, started, planned_end]
            columns = _chunk_columns(text, ("", None, started, None))
            ids = np.arange(first_id, first_id + n, dtype=np.int64)
            usccs, tags, cases, starts, ends = columns
            part = pa.table([from_numbers(ids), from_numbers(np.full(n, rule_id, np.int64)), usccs, tags, cases,
                             from_numbers(np.full(n, text_id, np.int64)), starts, ends,
                             from_numbers(np.full(n, run, np.int64)), from_numbers(np.full(n, run, np.int64))],
                            schema=_OPEN)
            if hidden.size:
                part = part.filter(from_bools(~np.isin(ids, hidden)))
            parts.append(part)
    return pa.concat_tables(parts)


def _repeated(text: str, n: int) -> pa.Array:
    """``text`` n times as an Arrow string array, from buffers (no list of n Python strings)."""
    size = len(text.encode())
    offsets = np.arange(0, size * n + 1, size, dtype=np.int32) if size else np.zeros(n + 1, np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.encode() * n)])


def _final_keys(db: sqlite3.Connection) -> pa.Array:
    """The keys of entries that ended for good (otherwise than no longer justified)."""
    rows = db.execute("SELECT uscc, rule_id, tag FROM list_state WHERE exit IS NOT NULL "
                      "AND exit != 'no_longer_justified'").fetchall()
    if not rows:
        return strings([])
    usccs, rule_ids, tags = zip(*rows, strict=True)
    return _keys(pa.table({"uscc": strings(list(usccs)), "rule_id": from_numbers(np.array(rule_ids, np.int64)),
                           "tag": strings(list(tags))}))


def _order_entered(entered: pa.Table, rules: dict[int, tuple[str, str, str]]) -> pa.Table:
    """Entered entries in the order their ids are given: by list, policy and rule, text, the
    plain ones (no tag, case, start or end of their own) first, then as the run found them."""
    rank = np.zeros(max(rules, default=0) + 1, np.int64)
    rank[sorted(rules, key=rules.__getitem__)] = np.arange(len(rules))
    plain = pc.and_(pc.and_(pc.equal(entered["tag"], string_scalar("")), pc.is_null(entered["case_id"])),
                    pc.and_(pc.is_null(entered["planned_end"]), pc.invert(entered["dated"])))
    plain = bools(plain)
    order = np.lexsort((~plain, numbers(entered["text_id"]), rank[numbers(entered["rule_id"])]))
    return entered.take(from_numbers(order)).append_column("plain", from_bools(plain[order]))


def _next_id(db: sqlite3.Connection) -> int:
    return 1 + max(db.execute("SELECT coalesce(max(id), 0) FROM list_state").fetchone()[0],
                   db.execute("SELECT coalesce(max(first_id + n - 1), 0) FROM list_chunks").fetchone()[0])


def _write_chunks(db: sqlite3.Connection, run_id: int, day: str, entered: pa.Table, ids: np.ndarray) -> None:
    """The entered entries as rows of ``list_chunks``: one per rule, text and kind of element
    (plain usccs, or arrays), at most ENTERED_CHUNK entries each."""
    if not entered.num_rows:
        return
    rule_ids, text_ids = numbers(entered["rule_id"]), numbers(entered["text_id"])
    plain = bools(entered["plain"])
    cuts = np.flatnonzero((np.diff(rule_ids) != 0) | (np.diff(text_ids) != 0) | (np.diff(plain.astype(np.int8)) != 0)) + 1
    bounds = [0, *cuts.tolist(), entered.num_rows]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        for start in range(a, b, ENTERED_CHUNK):
            part = entered.slice(start, min(b, start + ENTERED_CHUNK) - start)
            if plain[start]:
                rows = _json_rows([one_array(part["uscc"])])
            else:
                rows = _json_rows([one_array(part[name]) if name in ("uscc", "tag", "started")
                                   else fill_null(one_array(part[name]), "")
                                   for name in ("uscc", "tag", "case_id", "started", "planned_end")])
            out.append((int(ids[start]), part.num_rows, run_id, int(rule_ids[start]), int(text_ids[start]), day, rows))
    db.executemany("INSERT INTO list_chunks (first_id, n, run_id, rule_id, text_id, started, rows) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", out)


def _differs(a, b) -> np.ndarray:
    """Where ``a`` and ``b`` differ, a null differing from any value but null."""
    return bools(pc.or_kleene(pc.not_equal(a, b), pc.xor(pc.is_null(a), pc.is_null(b))))


def _live(before: pa.Table, justified: pa.Table, at: np.ndarray, kept: np.ndarray, entered: pa.Table,
          entered_ids: np.ndarray, run_id: int, rules, scopes) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The open entries during the run: those open before it (first, in ``before``'s order),
    then those it entered, as the run leaves them (a kept entry with its planned end, text and
    given start as now; last_run: this run for a justified entry, else the last run that kept
    it); whether each is justified by this run, and whether a kept one changed."""
    n = before.num_rows
    # the justified row of each entry open before (kept ones)
    source = np.full(n, -1, np.int64)
    hit = np.flatnonzero(kept)
    source[at[hit]] = hit
    was_kept = source >= 0
    planned_end, text_id, started = before["planned_end"], before["text_id"], before["started"]
    changed = np.zeros(n, bool)
    if hit.size:
        # the columns a kept entry takes from now only: the others' copies cost ~100 MiB at 770 K
        now = justified.select(["planned_end", "text_id", "started", "dated"]).take(
            from_numbers(np.where(was_kept, source, 0)))
        mask = from_bools(was_kept)
        planned_end = pc.if_else(mask, now["planned_end"], before["planned_end"])
        text_id = pc.if_else(mask, now["text_id"], before["text_id"])
        started = pc.if_else(pc.and_(mask, now["dated"]), now["started"], before["started"])
        changed = was_kept & (_differs(planned_end, before["planned_end"]) | _differs(text_id, before["text_id"])
                              | _differs(started, before["started"]))
    rule_ids = numbers(before["rule_id"]) if n else np.zeros(0, np.int64)
    top = max(rules, default=0) + 1
    scope = np.zeros((2, top), np.int64)  # per rule: the last run that judged its entries (of no case, of cases)
    for rule_id, (_, policy, _) in rules.items():
        scope[:, rule_id] = scopes.get((policy, False), 0), scopes.get((policy, True), 0)
    has_case = bools(pc.is_valid(before["case_id"])).astype(np.int64) if n else np.zeros(0, np.int64)
    last_run = np.maximum(numbers(before["last_run"]), scope[has_case, rule_ids]) if n else np.zeros(0, np.int64)
    last_run[was_kept] = run_id
    m = entered.num_rows

    def both(old, new, type_) -> pa.ChunkedArray:  # their chunks side by side, not copied into one
        return pa.chunked_array([*_chunks(old), *_chunks(new)], type_)

    live = pa.table({
        "id": from_numbers(np.concatenate([numbers(before["id"]) if n else np.zeros(0, np.int64), entered_ids])),
        "rule_id": both(before["rule_id"], entered["rule_id"], pa.int64()),
        "uscc": both(before["uscc"], entered["uscc"], pa.string()),
        "tag": both(before["tag"], entered["tag"], pa.string()),
        "case_id": both(before["case_id"], entered["case_id"], pa.string()),
        "text_id": both(text_id, entered["text_id"], pa.int64()),
        "started": both(started, entered["started"], pa.string()),
        "planned_end": both(planned_end, entered["planned_end"], pa.string()),
        "first_run": from_numbers(np.concatenate([numbers(before["first_run"]) if n else np.zeros(0, np.int64),
                                                  np.full(m, run_id, np.int64)])),
        "last_run": from_numbers(np.concatenate([last_run, np.full(m, run_id, np.int64)])),
    })
    return live, np.concatenate([was_kept, np.ones(m, bool)]), np.concatenate([changed, np.zeros(m, bool)])


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(values.chunks) if isinstance(values, pa.ChunkedArray) else [values]


def _lift(db: sqlite3.Connection, run_id: int, live: pa.Table, rules, ended: dict) -> None:
    """The earliest lift of this run that reaches each open entry (of its subject, list and
    case, started by then and not planned to end before): exit ``lifted`` the day before."""
    lifts = db.execute("SELECT uscc, list, case_id, effective, policy, rule, reason FROM lifts WHERE run_id = ? "
                       "ORDER BY effective, policy, rule", (run_id,)).fetchall()
    if not lifts:
        return
    by_subject: dict[str, list] = {}
    for lift in lifts:
        by_subject.setdefault(lift[0], []).append(lift)
    subjects = strings(sorted(by_subject))
    candidates = np.flatnonzero(bools(pc.is_in(live["uscc"], value_set=subjects)))
    for i, entry in zip(candidates.tolist(), live.take(from_numbers(candidates)).to_pylist(), strict=True):
        list_id = rules[entry["rule_id"]][0]
        for _, lift_list, case_id, effective, policy, rule, reason in by_subject[entry["uscc"]]:
            if (lift_list == list_id and (case_id is None or case_id == entry["case_id"]) and entry["started"] <= effective
                    and (entry["planned_end"] is None or entry["planned_end"] >= effective)):
                last = (dt.date.fromisoformat(effective) - dt.timedelta(days=1)).isoformat()
                ended[i] = ("lifted", last, f"{reason} ({policy} {rule})")
                break


def _drop_spent_chunks(db: sqlite3.Connection) -> None:
    """A chunk whose every entry a row of ``list_state`` hides holds nothing any more."""
    db.execute("""DELETE FROM list_chunks WHERE n = (SELECT count(*) FROM list_state s
                                                   WHERE s.id >= list_chunks.first_id AND s.id < list_chunks.first_id + n)""")


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
                _as_row(connection, entry_id)
                row = connection.execute("SELECT exit, started FROM list_state WHERE id = ?", (entry_id,)).fetchone()
                if row is None:
                    raise store.StoreError(f"no list entry {entry_id}")
                if row[0] is not None:
                    raise store.StoreError(f"list entry {entry_id} has already ended ({row[0]})")
                if on.isoformat() < row[1]:
                    # it took the entry off before it was ever on: stored as "2012-04-14 .. 2012-04-13"
                    raise store.StoreError(
                        f"list entry {entry_id} started on {row[1]}: a decision taking effect on {on} precedes it; "
                        f"to take it off from its first day (a decision revoking it), give --as-of {row[1]}")
                last = (on - dt.timedelta(days=1)).isoformat()
                kept_by = connection.execute("SELECT last_run FROM list_entries WHERE id = ?", (entry_id,)).fetchone()[0]
                connection.execute(  # ended, its last_run is no longer its scope's: kept as it is now
                    "UPDATE list_state SET exit = 'decision', ended = ?, exit_reason = ?, last_run = ? WHERE id = ?",
                    (last, reason.strip(), kept_by, entry_id))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return _entries(connection, "WHERE id = ?", (entry_id,))[0]
    finally:
        connection.close()


def _as_row(connection: sqlite3.Connection, entry_id: int) -> None:
    """Entry ``entry_id`` as a row of ``list_state``, when it is still only a chunk's element."""
    connection.execute(store.dialect(connection).ENTRY_AS_ROW, {"id": entry_id})


_COLUMNS = ("id, list, uscc, policy, version, rule, case_id, started, planned_end, ended, exit, exit_reason, reason, "
            "citation, first_run, last_run, exit_run")


def _entries(connection: sqlite3.Connection, where: str, params: tuple, limit: int = 0) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLUMNS} FROM list_entries {where} ORDER BY list, uscc, started, id"
    cursor = connection.execute(sql + (" LIMIT ?" if limit else ""), params + ((limit,) if limit else ()))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _has_state(connection: sqlite3.Connection) -> bool:
    return store.dialect(connection).has_relation(connection, "list_entries")


def lists_as_of(path, day: dt.date, *, list_id: str | None = None, uscc: str | None = None) -> dict[str, Any]:
    """Who is on which list on ``day`` (since when, until when, why), and the entries that
    had ended by then (with their exits), as the latest run left the state."""
    connection = store.connect(path, readonly=True)
    try:
        if not _has_state(connection):
            raise store.StoreError(f"{path}: no list entries yet (an older results database; the next run adds them)")
        filters, params = [], []
        if list_id:
            _check_list(connection, list_id)
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
                "on_list": on, "ended": ended, "warnings": store.interrupted(path, connection)}
    finally:
        connection.close()


def _check_list(connection, list_id: str) -> None:
    """Refuse a list no shipped policy declares and no run has entered anyone on: a misspelt
    id would otherwise answer "on a list: 0", which reads as an answer."""
    import difflib

    from ecorules.rules import load_policies

    known = {row[0] for row in connection.execute("SELECT DISTINCT list FROM list_rules")}
    known |= {name for policy in load_policies() for name in policy.lists}
    if list_id not in known:
        close = difflib.get_close_matches(list_id, sorted(known), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise store.StoreError(f"no list {list_id!r}: neither a shipped policy nor a run of this store names it{hint} "
                               f"(lists: {', '.join(sorted(known))})")


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
    lines += [f"warning: {warning}" for warning in report.get("warnings", ())]
    for entry in report["on_list"]:  # the entry's id: what `lists --end ID` takes
        lines.append(f"  #{entry['id']}  {entry['list']}  {entry['uscc']}{_case(entry)}  since {entry['started']}  "
                     f"until {entry['planned_end'] or 'open-ended 无期限'}")
        lines.append(f"      {entry['reason']}  ({entry['policy']} {entry['rule']}; {entry['citation']})")
    lines.append(f"on a list: {len(report['on_list']):,}")
    lines.append(f"已移出 ended by then: {len(report['ended']):,}")
    for entry in report["ended"]:
        lines.append(f"  #{entry['id']}  {entry['list']}  {entry['uscc']}{_case(entry)}  {entry['started']} .. {entry['ended']}  "
                     f"{entry['exit']}: {entry['exit_reason']}")
    return "\n".join(lines)


def _case(entry: dict[str, Any]) -> str:
    return f" (case {entry['case_id']})" if entry.get("case_id") else ""


__all__ = ["EXITS", "end_by_decision", "entry_changes", "lists_as_of", "render_lists", "update_entries"]
