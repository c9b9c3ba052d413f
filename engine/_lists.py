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
import sqlite3
from collections.abc import Iterator
from typing import Any

import attrs
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
from ._chunk_reader import json_elements
from ._chunks import _json_codes, _json_rows
from ._partitions import Partitions, in_order

EXITS = ("expired", "lifted", "no_longer_justified", "decision")


_SEP = string_scalar("\x1f")  # between the parts of a key: no uscc, rule id or tag holds it
_LOW_32 = scalar(0xFFFFFFFF, pa.int64())
# entries per row of list_chunks: written as its JSON (1.4 MB at 65,536 usccs) and SQLite's
# or psycopg's copies of it, ~8 MiB at 65,536, which a run of 200 K entries (20 K entered)
# never reached: the peak grew with the entries up to 2 M (bench/lists.py); 16,384 is 340 KB
ENTERED_CHUNK = 16_384
# of entries stored as arrays (a case: ~65 characters of JSON each, a plain uscc 21): a
# chunk of 65,536 took ~25 MiB to write (its JSON and SQLite's copies); a divisor of ENTERED_CHUNK
ENTERED_ARRAYS_CHUNK = 16_384
# entries (the run's justified ones and the stored ones) compared at once: the peak RSS
# follows it (a rerun at 2 M entries: +121 MiB at 32 K, +160 at 64 K, +197 at 128 K, in
# about the same time; bench/lists.py's stores)
ENTRIES_PER_PARTITION = 32_768
ROWS_PER_PAGE = 4_096  # rows of list_state read at once (as Python tuples: 32 K of them took ~15 MiB)
# entered entries read back at once, a batch of each partition (in_order holds up to two):
# with batches of 256 (a partition's entries in all), 130 partitions' batches at 2 M entries
# took ~10 MiB of read buffers, against ~2 at 200 K (20 K entered, 13 partitions). But each
# batch costs about the same to write, read and merge however few its rows: at 8,192 (132-row
# batches at 2 M entries, 62 partitions) a first run took 13.0 CPU-s, most of it there
# (py-spy), and the list state 6.3 CPU-s of the commit of a 10 M-case run (bench/cases.py);
# at 32,768, the batches narrowed to what _enter reads, 7.0 CPU-s (bench/lists.py's store of
# 2 M entries, run 1), the peak 19 MiB higher; at 131,072 the merge takes a quarter of the
# steps (one per batch of every partition): 1.5 M plain entries 4.49 -> 3.53 CPU-s (the
# 10 M-case run's lists), bench/lists.py's 2 M run 1 8.13 -> 5.37 CPU-s, its peak +59 MiB
ENTERED_AT_ONCE = 131_072
ENDED_ROWS_AT_ONCE = 4_096  # rows of list_state written at once for entries entered and ended by a run
# entries of a stored chunk (up to 262,144 of a run's sanctions) made columns at once, from
# its text read a piece at a time: a whole chunk's copies took ~50 MiB (bench/lists.py)
PIECE_ENTRIES = 32_768
PIECE_CHARACTERS = 21 * PIECE_ENTRIES  # a piece of text: that many codes as a run writes them
PIECE_VALUES = 8_192  # entries of a chunk decoded as Python values at once (cases, or what is not a plain code)
# entries (justified, or stored) split into the partitions at once, pieces of chunks or pages
# gathered: a piece at a time, each partition's share of it was an IPC batch of ~700 rows at
# 1.5 M justified entries (46 partitions), ~2,200 writes of ~0.27 ms; ~13 MB of columns held
JUSTIFIED_AT_ONCE = 262_144
_SEQ_BITS = 40  # of an entered entry's order: its place among the run's entries (a trillion)
_MOST_GROUPS = 1 << (63 - _SEQ_BITS)  # (list rule, text, plain or not) groups the order's high bits hold
# entries of a first run entered from its codes held at once (_enter_at_once), at most: the
# run's codes and their distinct count's hash, ~50 bytes an entry (bench/cases.py's 10 M-row
# registry, 1.54 M entries: peak RSS 454 -> 521 MiB, medians); a larger run is compared
FIRST_RUN_AT_ONCE = 2_097_152


@attrs.frozen
class _Run:
    """What every partition of a run's comparison needs to know of the run."""

    run_id: int
    as_of: dt.date
    cases_judged: bool
    rules: dict[int, tuple[str, str, str]]  # id -> list, policy, rule
    scopes: dict[tuple[str, bool], int]  # (policy, of cases) -> the last run that judged its entries
    judged: np.ndarray  # by rule id: whether the run judged the rule's policy
    texts: np.ndarray  # the ids of the run's texts, sorted
    lifts: dict[str, list[tuple]]  # by subject, in the order they reach an entry (of a partition's subjects)
    lifted: pa.Array  # the subjects of lifts (of a partition's subjects)


def update_entries(db: sqlite3.Connection, run_id: int, as_of: dt.date, *, cases_judged: bool,
                   replaced: int | None = None, left_alone: tuple[str, ...] = ()) -> dict[str, int]:
    """Bring the list entries up to run ``run_id`` (inside the run's transaction); returns
    how many entries were entered, kept and ended per exit. ``left_alone``: the ids of
    policies whose records the run did not judge (a kind whose table it was not given):
    their entries are not ended as no longer justified.

    The justified set and the stored entries are compared in Arrow (hash lookups on a key
    text), a partition of subjects at a time (engine/_partitions.py: memory stays that of a
    partition however many entries there are); only what changed is written: entered entries
    as chunks, and a row of ``list_state`` for each entry that ends or whose planned end,
    start or text changes. An open entry still justified as it was costs no write (see
    ``store.sqlite.LIST_ENTRIES_VIEW``)."""
    day = as_of.isoformat()
    if replaced is not None:  # a forced rerun replaces that run: its entries are now this run's
        # one pass over list_state, not one per column: no index serves these columns (three
        # more on list_state would cost every night's writes for a rerun's sake), so each
        # statement read the whole table (2 M rows, 1/20 of them moved: 1.36 -> 0.73 CPU-s)
        db.execute("UPDATE list_state SET first_run = CASE WHEN first_run = ? THEN ? ELSE first_run END, "
                   "last_run = CASE WHEN last_run = ? THEN ? ELSE last_run END, "
                   "exit_run = CASE WHEN exit_run = ? THEN ? ELSE exit_run END "
                   "WHERE first_run = ? OR last_run = ? OR exit_run = ?", (replaced, run_id) * 3 + (replaced,) * 3)
        db.execute("UPDATE list_chunks SET run_id = ? WHERE run_id = ?", (run_id, replaced))
        db.execute("UPDATE list_scopes SET last_run = ? WHERE last_run = ?", (run_id, replaced))
    of_slot = _slots(db, run_id)
    rules = {rule_id: (list_id, policy, rule) for rule_id, list_id, policy, rule
             in db.execute("SELECT id, list, policy, rule FROM list_rules")}
    judged = np.zeros(max(rules, default=0) + 1, bool)
    for rule_id, (_, policy, _) in rules.items():
        judged[rule_id] = policy not in left_alone
    run = _Run(run_id, as_of, cases_judged, rules,
               {(policy, bool(cases)): last for policy, cases, last in db.execute("SELECT policy, cases, last_run FROM list_scopes")},
               judged, np.unique(np.array([text_order & 0xFFFFFFFF for _, text_order in of_slot.values()], np.int64)),
               {}, strings([]))
    counts = dict.fromkeys(("kept", "entered", "lifted", "expired", "no_longer_justified"), 0)
    sql = store.dialect(db)
    first_id = _next_id(db)
    # the rows of list_state the run writes, gathered and written by one statement at the end:
    # every stored entry is read (parts.add) before the first is written
    sql.begin_replacing(db, "list_state", _STATE_COLUMNS)
    if not _enter_at_once(db, run, day, of_slot, counts):  # (a first run of plain entries: as its sanctions hold them)
        _compared(db, sql, run, day, of_slot, counts, first_id)
    sql.finish_replacing(db, "list_state", _STATE_COLUMNS, ("id",))
    # this run judged the entries of every policy it was not told to leave alone
    policies = sorted({policy for _, policy, _ in rules.values()} - set(left_alone))
    sql.replace_rows(db, "list_scopes", ("policy", "cases", "last_run"), ("policy", "cases"),
                     [(policy, cases, run_id) for policy in policies for cases in ((0, 1) if cases_judged else (0,))])
    _drop_spent_chunks(db)
    return counts


def _enter_at_once(db, run: _Run, day: str, of_slot: dict[int, tuple[int, int]], counts: dict[str, int]) -> bool:
    """A run whose every justified entry is a plain uscc (no case, tag or dates: a case run's
    lists, as a registry's), into a store that holds no list entry and with no lift: every
    entry is entered, none ends, so its entries are written as chunks straight from its
    sanctions' codes, in the order ``_enter`` gives ids (by list, policy and rule, then text,
    then as the run found them), without the comparison, its partition files and their merge
    (``_compared``: ~1.2 CPU-s of a 10 M-case first run's 1.2 M entries). Whether it was such
    a run; False as soon as it is not (a key twice in the run: merged by the comparison), or
    when it has more than FIRST_RUN_AT_ONCE entries."""
    if (db.execute("SELECT 1 FROM list_state LIMIT 1").fetchone() or db.execute("SELECT 1 FROM list_chunks LIMIT 1").fetchone()
            or db.execute("SELECT 1 FROM lifts WHERE run_id = ? LIMIT 1", (run.run_id,)).fetchone()
            or len(run.rules) * len(run.texts) * 2 >= _MOST_GROUPS
            or db.execute("SELECT coalesce(sum(length(usccs)), 0) FROM sanction_chunks WHERE run_id = ?",
                          (run.run_id,)).fetchone()[0] // 21 > FIRST_RUN_AT_ONCE):  # (21 characters a plain entry)
        return False
    sql = store.dialect(db)
    rank = {rule_id: k for k, rule_id in enumerate(sorted(run.rules, key=run.rules.__getitem__))}
    groups: dict[tuple[int, int], list[pa.Array]] = {}  # (rule's rank, text's place) -> the codes, in the run's order
    for slot, row in sql.sanction_chunk_rows(db, run.run_id):
        rule_id, text_order = of_slot[slot]
        text_id = text_order & 0xFFFFFFFF
        codes = groups.setdefault((rank[rule_id], int(np.searchsorted(run.texts, text_id)), rule_id, text_id), [])
        for elements in json_elements(sql.text_pieces(db, "sanction_chunks", "usccs", row, PIECE_CHARACTERS), PIECE_ENTRIES,
                                      PIECE_VALUES):
            if not isinstance(elements, pa.Array):  # an entry of a case, with dates or not laid out as a code
                return False
            codes.append(elements)
    by_rule: dict[int, list[pa.Array]] = {}
    for (_, _, rule_id, _), codes in groups.items():
        by_rule.setdefault(rule_id, []).extend(codes)
    for codes in by_rule.values():
        if not _distinct_codes(codes):
            return False
    next_id, size = 1, _chunk_size(plain=True)  # (no entry yet: ids from 1, as _next_id gives them)
    for (_, _, rule_id, text_id), codes in sorted(groups.items()):
        usccs = pa.chunked_array(codes, pa.string())
        for start in range(0, len(usccs), size):
            part = one_array(usccs.slice(start, size))
            db.execute("INSERT INTO list_chunks (first_id, n, run_id, rule_id, text_id, started, rows) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (next_id, len(part), run.run_id, rule_id, text_id, day, _json_codes(part)))
            next_id += len(part)
        counts["entered"] += len(usccs)
    return True


_CODE = 18  # characters of a code as _chunk_reader's codes hold them: fixed width, ASCII
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], np.uint64)


def _distinct_codes(codes: list[pa.Array]) -> bool:
    """Whether no code of ``codes`` (``json_elements``' arrays of 18-character codes) is there
    twice. Their 18 bytes mixed into a 64-bit hash per code, sorted and compared: equal codes
    hash alike, so distinct hashes are distinct codes; where two hashes meet (two equal codes,
    or rarely a collision), Arrow's count decides. Arrow's count_distinct alone was 0.73
    CPU-s for 1.2 M codes, nearly all of a 10 M-case first night's list state; this is ~0.07."""
    hashes = []
    for array in codes:
        offsets, data = string_buffers(array)
        if array.null_count or (np.diff(offsets) != _CODE).any():
            hashes = None  # not all codes: counted by Arrow
            break
        laid = data[int(offsets[0]):int(offsets[-1])].reshape(len(array), _CODE)
        words = np.ascontiguousarray(laid[:, :16]).view(np.uint64)
        tail = laid[:, 16].astype(np.uint64) << np.uint64(8) | laid[:, 17]
        hashes.append(words[:, 0] * _MIX[0] ^ words[:, 1] * _MIX[1] ^ tail * _MIX[2])
    if hashes is not None:
        ordered = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, np.uint64)
        if not (ordered[1:] == ordered[:-1]).any():
            return True
    usccs = pa.chunked_array(codes, pa.string())
    return pc.count_distinct(usccs).as_py() == len(usccs)


def _compared(db, sql, run: _Run, day: str, of_slot: dict[int, tuple[int, int]], counts: dict[str, int],
              first_id: int) -> None:
    """The comparison of the run's justified entries with the stored ones, a partition of
    subjects at a time: the rows of ``list_state`` it writes added to the statement being
    gathered, the entered entries written as chunks."""
    with Partitions(_partition_count(db, run.run_id)) as parts:
        for table in _gathered(_justified_parts(db, run.run_id, of_slot), JUSTIFIED_AT_ONCE):
            parts.add("justified", table)
        for table in _gathered(_stored_parts(db), JUSTIFIED_AT_ONCE):
            parts.add("stored", table)
        for table in _gathered(_chunk_parts(db), JUSTIFIED_AT_ONCE):
            parts.add("chunked", table)
        for table in _lift_parts(db, run.run_id):  # a lift reaches the entries of its subject: of its partition
            parts.add("lifts", table)
        for partition in range(parts.count):
            lifts = _lifts_of(parts.read("lifts", partition, _LIFTS))
            run = attrs.evolve(run, lifts=lifts, lifted=strings(sorted(lifts)))
            before, final = _stored_of(parts.read("stored", partition, _STORED), parts.read("chunked", partition, _OPEN))
            justified = _justified_of(parts.read("justified", partition, _JUSTIFIED), day)
            entered, rows = _compare(justified, before, final, run, counts)
            sql.add_replacing(db, "list_state", _STATE_COLUMNS, rows)
            # read back a batch or two of each partition at a time (in_order), only what _enter reads
            parts.put("entered", partition, entered.select(_ENTERED_COLUMNS), max(64, ENTERED_AT_ONCE // parts.count))
        # ids in one order across the partitions (_order_entered), a part of each at a time
        _enter(db, run.run_id, day, in_order([parts.batches("entered", p) for p in range(parts.count)], "order"), first_id)


def _partition_count(db: sqlite3.Connection, run_id: int) -> int:
    """Partitions of about ENTRIES_PER_PARTITION entries: the run's (a plain one takes 21
    characters of JSON; others more, which only overestimates) and the stored ones."""
    characters = db.execute("SELECT coalesce(sum(length(usccs)), 0) FROM sanction_chunks WHERE run_id = ?",
                            (run_id,)).fetchone()[0]
    stored = (db.execute("SELECT count(*) FROM list_state").fetchone()[0]
              + db.execute("SELECT coalesce(sum(n), 0) FROM list_chunks").fetchone()[0])
    return max(1, -(-(int(characters) // 21 + int(stored)) // ENTRIES_PER_PARTITION))


def _compare(justified: pa.Table, before: pa.Table, final: pa.Array, run: _Run,
             counts: dict[str, int]) -> tuple[pa.Table, list[tuple]]:
    """One partition's comparison of the justified entries with the open ones (``before``;
    ``final``: the keys that ended for good), its counts added to ``counts``. Returns the
    entries it enters (as _order_entered sorts them, with their exit where the run also ends
    them) and the rows of ``list_state`` to write for the entries open before."""
    day = run.as_of.isoformat()
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
    counts["kept"] += int(np.count_nonzero(kept))
    # entered: no open entry of the key, and none that ended for good
    new = np.flatnonzero(~kept)
    if new.size and len(final):
        new = new[~bools(pc.is_in(_keys(justified.take(from_numbers(new))), value_set=final))]
    counts["entered"] += int(new.size)
    entered = _order_entered(justified if new.size == justified.num_rows else justified.take(from_numbers(new)), run)

    # the open entries now: those before (kept ones as justified now) and those entered
    live, justified_now, changed = _live(before, justified, at, kept, entered, run)
    ended: dict[int, tuple[str, str, str]] = {}  # row of live -> (exit, last day, reason)
    _lift(run, live, ended)
    counts["lifted"] += len(ended)
    lifted = len(ended)
    planned_end = live["planned_end"]
    expiring = np.flatnonzero(bools(pc.less(planned_end, string_scalar(day))))
    for i, end in zip(expiring.tolist(), planned_end.take(from_numbers(expiring)).to_pylist(), strict=True):
        ended.setdefault(i, ("expired", end, f"期满 planned end {end} passed"))
    counts["expired"] += len(ended) - lifted
    gone = np.zeros(0, np.int64)  # open before, not ended otherwise, ended no longer justified (most of a run's ends)
    if n_before > np.count_nonzero(kept):  # else every entry open before this run is still justified
        rule_ids = numbers(live["rule_id"])
        in_scope = run.judged[rule_ids] & (run.cases_judged | ~bools(pc.is_valid(live["case_id"])))
        gone = np.flatnonzero(in_scope & ~justified_now)
        gone = gone[(gone < n_before) & ~np.isin(gone, np.fromiter(ended, np.int64, len(ended)))]
        counts["no_longer_justified"] += int(gone.size)
    written = np.array(sorted(i for i in ended if i < n_before), np.int64)
    ends = np.zeros(len(changed), bool)
    ends[written], ends[gone] = True, True
    changed_only = np.flatnonzero(changed & ~ends)  # (an entry that changed and ended: its row says both)
    state = _state_rows(live.take(from_numbers(np.concatenate([written, gone, changed_only]))),
                        [ended[i] for i in written.tolist()], _last_days(live["started"].take(from_numbers(gone)), run.as_of),
                        changed_only.size, run)
    # an entry entered and ended by this run: its row is written with the id it is given (_enter)
    mine = sorted(i for i in ended if i >= n_before)
    at_exit = np.full(entered.num_rows, len(mine), np.int64)  # the null after the exits: not ended
    at_exit[np.array(mine, np.int64) - n_before] = np.arange(len(mine))
    for position, name in ((1, "ended"), (0, "exit"), (2, "exit_reason")):
        values = _optional_strings([ended[i][position] for i in mine] + [None])
        entered = entered.append_column(name, values.take(from_numbers(at_exit)))
    return entered, state


def _last_days(started: pa.Array, as_of: dt.date) -> list[str]:
    """The last day on the list of entries no longer justified as of ``as_of``: the day
    before, or the day before an entry's start where it starts later (a future start)."""
    yesterday = (as_of - dt.timedelta(days=1)).isoformat()
    days = [yesterday] * len(started)
    late = np.flatnonzero(bools(pc.greater(started, string_scalar(as_of.isoformat()))))
    for k, start in zip(late.tolist(), started.take(from_numbers(late)).to_pylist(), strict=True):
        days[k] = max(yesterday, (dt.date.fromisoformat(start) - dt.timedelta(days=1)).isoformat())
    return days


def _state_rows(rows: pa.Table, ended: list[tuple[str, str, str]], gone_days: list[str], unended: int,
                run: _Run) -> list[tuple]:
    """Rows of ``list_state`` for open entries (``rows``: of ``live``): first those the run
    ended (``ended``: exit, last day, reason each), then those no longer justified (their
    last days), then ``unended`` whose planned end, start or text changed. Built a column at
    a time: as dicts a row, 217 K rows took ~1.3 s of a 2 M-entry run."""
    why = f"不再符合 no rule justifies it as of {run.as_of.isoformat()} (the facts changed, or the law is not in force)"
    n_gone, none = len(gone_days), [None] * unended
    exits = [e[0] for e in ended] + ["no_longer_justified"] * n_gone + none
    last_days = [e[1] for e in ended] + gone_days + none
    reasons = [e[2] for e in ended] + [why] * n_gone + none
    exit_runs = [run.run_id] * (len(ended) + n_gone) + none
    columns = [rows[name].to_pylist() for name in _STATE_COLUMNS[:8]]
    return list(zip(*columns, last_days, exits, reasons, rows["first_run"].to_pylist(), rows["last_run"].to_pylist(),
                    exit_runs, strict=True))


_STATE_COLUMNS = ("id", "rule_id", "uscc", "tag", "case_id", "text_id", "started", "planned_end", "ended", "exit",
                  "exit_reason", "first_run", "last_run", "exit_run")
# of an entered entry, what _enter writes: its order, its chunk's rule and text, its element
# and, where the run ended it too, its row of list_state (_write_ended)
_ENTERED_COLUMNS = ("order", *_STATE_COLUMNS[1:11])


def _keys(entries: pa.Table) -> pa.Array:
    """An entry's key as one text: uscc, rule id, tag."""
    return one_array(pc.binary_join_element_wise(entries["uscc"], pc.cast(entries["rule_id"], pa.string()), entries["tag"], _SEP))


def _index_in(keys: pa.Array, value_set: pa.Array) -> np.ndarray:
    """``pc.index_in`` as numpy, -1 where not found."""
    return numbers(pc.index_in(keys, value_set=value_set), fill=-1).astype(np.int64)


_JUSTIFIED = pa.schema([("uscc", pa.string()), ("rule_id", pa.int64()), ("case_id", pa.string()),
                        ("start", pa.string()), ("planned_end", pa.string()), ("text_order", pa.int64()),
                        ("seq", pa.int64())])


def _slots(db: sqlite3.Connection, run_id: int) -> dict[int, tuple[int, int]]:
    """Each sanction slot of run ``run_id`` as its rule's id and its text's order: the texts'
    order (version, reason, citation) in the high bits, the text's id in the low 32, so that
    min() gives both. The run's rules and texts are added to ``list_rules`` and ``list_texts``."""
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
    order = {t[3]: (k << 32) | t[3] for k, t in enumerate(texts)}
    return {slot: (rule_id, order[text_id]) for slot, rule_id, text_id, *_ in slots}


def _justified_parts(db: sqlite3.Connection, run_id: int, of_slot: dict[int, tuple[int, int]]) -> Iterator[pa.Table]:
    """The entries that run ``run_id``'s sanctions justify, PIECE_ENTRIES of a chunk at a time:
    uscc, rule_id, case_id, start (null: the run's as_of), planned_end, text_order, and seq,
    the entry's place among them (which orders the entered ones)."""
    sql = store.dialect(db)
    seq = 0
    for slot, row in sql.sanction_chunk_rows(db, run_id):
        rule_id, text_order = of_slot[slot]
        # an element: a uscc, or [uscc, case_id or "", start, planned_end] (null: the default start, an open end)
        for elements in json_elements(sql.text_pieces(db, "sanction_chunks", "usccs", row, PIECE_CHARACTERS), PIECE_ENTRIES,
                                      PIECE_VALUES):
            columns = _columns_of(elements, (None, None, None))
            n = len(columns[0])
            yield pa.table([columns[0], from_numbers(np.full(n, rule_id, np.int64)), *columns[1:],
                            from_numbers(np.full(n, text_order, np.int64)), from_numbers(np.arange(seq, seq + n, dtype=np.int64))],
                           schema=_JUSTIFIED)
            seq += n


def _gathered(tables: Iterator[pa.Table], rows: int) -> Iterator[pa.Table]:
    """``tables`` (of one schema) as tables of at least ``rows`` rows each, but the last."""
    held: list[pa.Table] = []
    count = 0
    for table in tables:
        held.append(table)
        count += table.num_rows
        if count >= rows:
            yield pa.concat_tables(held).combine_chunks()
            held, count = [], 0
    if held:
        yield pa.concat_tables(held).combine_chunks()


def _justified_of(table: pa.Table, day: str) -> pa.Table:
    """Justified entries as the comparison reads them: uscc, rule_id, tag, case_id, started,
    dated (a start given by the sanction), planned_end, text_id, text_order, seq."""
    start = table["start"]
    return pa.table({"uscc": table["uscc"], "rule_id": table["rule_id"],
                     "tag": pc.coalesce(table["case_id"], start, string_scalar("")), "case_id": table["case_id"],
                     "started": pc.coalesce(start, string_scalar(day)), "dated": pc.is_valid(start),
                     "planned_end": table["planned_end"], "text_id": pc.bit_wise_and(table["text_order"], _LOW_32),
                     "text_order": table["text_order"], "seq": table["seq"]})


def _columns_of(elements: pa.Array | list, plain: tuple[str | None, ...]) -> list[pa.Array]:
    """A group of a chunk's entries (json_elements': codes, or decoded values) as columns: the
    usccs, then one column per other part of an entry. An element that is a uscc alone takes
    ``plain``'s parts; an element that is an array holds every part, where "" reads as null in
    a part whose plain value is None."""
    if isinstance(elements, pa.Array) or all(type(v) is str for v in elements):
        n = len(elements)
        return [elements if isinstance(elements, pa.Array) else strings(elements),
                *(pa.nulls(n, pa.string()) if value is None else _repeated(value, n) for value in plain)]
    rows = [v if type(v) is list else [v, *plain] for v in elements]
    columns = [list(c) for c in zip(*rows, strict=True)]
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


def _merge(table: pa.Table) -> pa.Table:
    """One row per key where several entries of the run share it: the earliest start, the
    latest planned end (open when any is open), the text that sorts first; seq: the first's.
    By sorts, not ``Table.group_by``: that imports Acero and pandas (~25 MiB, in the first run
    whose sanctions repeat a key)."""
    groups = numbers(pc.dictionary_encode(_keys(table)).indices).astype(np.int64)  # in order of first appearance
    _, first = np.unique(groups, return_index=True)
    n = len(first)

    def least(name: str, order: str = "ascending") -> pa.Array:  # per group; nulls only where all are
        by = pc.sort_indices(pa.table({"group": from_numbers(groups), "missing": pc.is_null(table[name]), "value": table[name]}),
                             sort_keys=[("group", "ascending"), ("missing", "ascending"), ("value", order)])
        by = numbers(by)
        return one_array(table[name]).take(from_numbers(by[np.flatnonzero(np.diff(groups[by], prepend=-1))]))

    def smallest(name: str) -> np.ndarray:
        values = np.full(n, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(values, groups, numbers(table[name]))
        return values

    open_ended = np.bincount(groups, weights=bools(pc.is_null(table["planned_end"])), minlength=n) > 0
    text_order = smallest("text_order")
    return pa.table({"uscc": one_array(table["uscc"]).take(from_numbers(first)),
                     "rule_id": one_array(table["rule_id"]).take(from_numbers(first)),
                     "tag": one_array(table["tag"]).take(from_numbers(first)),
                     "case_id": least("case_id"), "started": least("started"),
                     "dated": from_bools(np.bincount(groups, weights=bools(table["dated"]), minlength=n) > 0),
                     "planned_end": pc.if_else(from_bools(open_ended), pa.nulls(1, pa.string())[0],
                                               least("planned_end", "descending")),
                     "text_id": from_numbers(text_order & 0xFFFFFFFF), "text_order": from_numbers(text_order),
                     "seq": from_numbers(smallest("seq"))})


_OPEN = pa.schema([("id", pa.int64()), ("rule_id", pa.int64()), ("uscc", pa.string()), ("tag", pa.string()),
                   ("case_id", pa.string()), ("text_id", pa.int64()), ("started", pa.string()),
                   ("planned_end", pa.string()), ("first_run", pa.int64()), ("last_run", pa.int64())])
_STORED = pa.schema([*_OPEN, ("exit", pa.string())])


def _stored_parts(db: sqlite3.Connection) -> Iterator[pa.Table]:
    """The rows of ``list_state`` (open or ended), a page of ids at a time."""
    last = 0
    while rows := db.execute("SELECT id, rule_id, uscc, tag, case_id, text_id, started, planned_end, first_run, last_run, "
                             "exit FROM list_state WHERE id > ? ORDER BY id LIMIT ?", (last, ROWS_PER_PAGE)).fetchall():
        yield pa.table([from_numbers(np.array(c, np.int64)) if pa.types.is_integer(t.type) else _optional_strings(list(c))
                        for c, t in zip(zip(*rows, strict=True), _STORED, strict=True)], schema=_STORED)
        last = rows[-1][0]


def _chunk_parts(db: sqlite3.Connection) -> Iterator[pa.Table]:
    """The entries of ``list_chunks``, PIECE_ENTRIES of a chunk at a time, a row of
    ``list_state`` of the same id hiding them or not; last_run: the chunk's run."""
    sql = store.dialect(db)
    last = 0
    while chunks := db.execute("SELECT first_id, n, run_id, rule_id, text_id, started FROM list_chunks "
                               "WHERE first_id > ? ORDER BY first_id LIMIT 64", (last,)).fetchall():
        for first_id, n, run, rule_id, text_id, started in chunks:
            next_id = first_id
            # an element: a uscc (no tag, case or end; the chunk's start), or [uscc, tag, case_id, started, planned_end]
            for elements in json_elements(sql.text_pieces(db, "list_chunks", "rows", first_id, PIECE_CHARACTERS), PIECE_ENTRIES,
                                          PIECE_VALUES):
                usccs, tags, cases, starts, ends = _columns_of(elements, ("", None, started, None))
                k = len(usccs)
                runs = from_numbers(np.full(k, run, np.int64))
                yield pa.table([from_numbers(np.arange(next_id, next_id + k, dtype=np.int64)),
                                from_numbers(np.full(k, rule_id, np.int64)), usccs, tags, cases,
                                from_numbers(np.full(k, text_id, np.int64)), starts, ends, runs, runs], schema=_OPEN)
                next_id += k
            if next_id != first_id + n:
                raise store.StoreError(f"list_chunks row {first_id} holds {next_id - first_id:,} entries, not the {n:,} it says")
        last = chunks[-1][0]


def _stored_of(stored: pa.Table, chunked: pa.Table) -> tuple[pa.Table, pa.Array]:
    """The open entries (open rows of ``list_state``, and chunks' entries no row hides:
    a row has its entry's uscc, so it is in the same partition) and the keys of entries
    that ended for good (otherwise than no longer justified)."""
    is_open = pc.is_null(stored["exit"])
    if chunked.num_rows and stored.num_rows:
        chunked = chunked.filter(from_bools(~np.isin(numbers(chunked["id"]), numbers(stored["id"]))))
    before = pa.concat_tables([stored.filter(is_open).select(_OPEN.names), chunked])
    final = stored.filter(pc.and_(pc.invert(is_open), pc.not_equal(stored["exit"], string_scalar("no_longer_justified"))))
    return before, _keys(final)


def _repeated(text: str, n: int) -> pa.Array:
    """``text`` n times as an Arrow string array, from buffers (no list of n Python strings)."""
    size = len(text.encode())
    offsets = np.arange(0, size * n + 1, size, dtype=np.int32) if size else np.zeros(n + 1, np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.encode() * n)])


def _order_entered(entered: pa.Table, run: _Run) -> pa.Table:
    """Entered entries in the order their ids are given: by list, policy and rule, text, the
    plain ones (no tag, case, start or end of their own) first, then as the run found them
    (``seq``). ``order`` says it as one number, alike in every partition: the first three
    numbered as one group in its high bits, ``seq`` in the low 40."""
    rank = np.zeros(max(run.rules, default=0) + 1, np.int64)
    rank[sorted(run.rules, key=run.rules.__getitem__)] = np.arange(len(run.rules))
    plain = pc.and_(pc.and_(pc.equal(entered["tag"], string_scalar("")), pc.is_null(entered["case_id"])),
                    pc.and_(pc.is_null(entered["planned_end"]), pc.invert(entered["dated"])))
    plain = bools(plain)
    text = np.searchsorted(run.texts, numbers(entered["text_id"]))
    group = (rank[numbers(entered["rule_id"])] * len(run.texts) + text) * 2 + ~plain
    if len(run.rules) * len(run.texts) * 2 >= _MOST_GROUPS:
        raise store.StoreError(f"{len(run.rules):,} list rules and {len(run.texts):,} texts: more than list ids are ordered by")
    key = (group << _SEQ_BITS) | numbers(entered["seq"])
    order = np.argsort(key, kind="stable")
    return (entered.take(from_numbers(order)).append_column("plain", from_bools(plain[order]))
            .append_column("order", from_numbers(key[order])))


def _next_id(db: sqlite3.Connection) -> int:
    return 1 + max(db.execute("SELECT coalesce(max(id), 0) FROM list_state").fetchone()[0],
                   db.execute("SELECT coalesce(max(first_id + n - 1), 0) FROM list_chunks").fetchone()[0])


def _enter(db: sqlite3.Connection, run_id: int, day: str, ordered: Iterator[pa.Table], first_id: int) -> None:
    """The entered entries, in the order their ids are given, as chunks of ``list_chunks``
    (cut at each group and every _chunk_size entries of one), and a row of ``list_state``
    for each that the run also ended.

    A chunk is gathered as its JSON text, a part of ``ordered`` at a time, not as the
    entries' columns: 65,536 of them, held as the parts read back from the partitions (a
    part's slice keeps its whole batch), took ~30 MiB at 2 M entries (bench/lists.py), a
    chunk's text 1.4 MB; an ended entry's row is written as its part comes, with its id."""
    sql = store.dialect(db)
    next_id = first_id
    texts: list[str] = []  # the JSON of the chunk being gathered, without its brackets
    held = group = 0
    chunk: tuple[int, int, int] = (0, 0, 0)  # its first id, rule id and text id

    def flush() -> None:
        nonlocal held
        if held:
            texts[0] = "[" + texts[0]  # (brackets added to the ends, not around a second copy of the whole)
            texts[-1] += "]"
            db.execute("INSERT INTO list_chunks (first_id, n, run_id, rule_id, text_id, started, rows) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (chunk[0], held, run_id, chunk[1], chunk[2], day, ",".join(texts)))
        texts.clear()
        held = 0

    for table in ordered:
        groups = numbers(table["order"]) >> _SEQ_BITS
        bounds = [0, *(np.flatnonzero(np.diff(groups)) + 1).tolist(), table.num_rows]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if held and groups[a] != group:  # a group ends: a cut
                flush()
            group = int(groups[a])
            plain = not group & 1  # the low bit of a group: not plain (_order_entered)
            size = _chunk_size(plain=plain)
            while a < b:
                part = table.slice(a, min(b - a, size - held))
                if not held:
                    chunk = (next_id, part["rule_id"][0].as_py(), part["text_id"][0].as_py())
                texts.append(_entries_json(part, plain)[1:-1])
                _write_ended(sql, db, run_id, part, next_id)
                held, next_id, a = held + part.num_rows, next_id + part.num_rows, a + part.num_rows
                if held == size:
                    flush()
    flush()


def _chunk_size(*, plain: bool) -> int:
    return ENTERED_CHUNK if plain else min(ENTERED_CHUNK, ENTERED_ARRAYS_CHUNK)


def _entries_json(part: pa.Table, plain: bool) -> str:
    """Entries of one rule and text as a chunk's JSON: usccs, or [uscc, tag, case_id, started, planned_end]."""
    if plain:
        return _json_rows([one_array(part["uscc"])])
    return _json_rows([one_array(part[name]) if name in ("uscc", "tag", "started") else fill_null(one_array(part[name]), "")
                       for name in ("uscc", "tag", "case_id", "started", "planned_end")])


def _write_ended(sql, db: sqlite3.Connection, run_id: int, part: pa.Table, first_id: int) -> None:
    """The rows of ``list_state`` of the entries of ``part`` (ids from ``first_id``) that the
    run ended as it entered them, as Python rows a few thousand at a time: a chunk's worth
    (65,536 cases ended as they entered, when a first run finds them expired) took ~40 MiB as
    dicts at once."""
    ended = np.flatnonzero(bools(pc.is_valid(part["exit"])))
    for start in range(0, ended.size, ENDED_ROWS_AT_ONCE):
        at = ended[start:start + ENDED_ROWS_AT_ONCE]
        rows = part.take(from_numbers(at))
        sql.add_replacing(db, "list_state", _STATE_COLUMNS, list(zip(
            (at + first_id).tolist(), *(rows[name].to_pylist() for name in _STATE_COLUMNS[1:11]),
            *([run_id] * len(at),) * 3, strict=True)))


def _differs(a, b) -> np.ndarray:
    """Where ``a`` and ``b`` differ, a null differing from any value but null."""
    return bools(pc.or_kleene(pc.not_equal(a, b), pc.xor(pc.is_null(a), pc.is_null(b))))


def _live(before: pa.Table, justified: pa.Table, at: np.ndarray, kept: np.ndarray, entered: pa.Table,
          run: _Run) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The open entries during the run: those open before it (first, in ``before``'s order),
    then those it entered, as the run leaves them (a kept entry with its planned end, text and
    given start as now; last_run: this run for a justified entry, else the last run that kept
    it; id: -1 for an entered one, which gets its id later); whether each is justified by this
    run, and whether a kept one changed."""
    run_id, rules, scopes = run.run_id, run.rules, run.scopes
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
        "id": from_numbers(np.concatenate([numbers(before["id"]) if n else np.zeros(0, np.int64), np.full(m, -1, np.int64)])),
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


_LIFTS = pa.schema([(name, pa.string()) for name in ("uscc", "list", "case_id", "effective", "policy", "rule", "reason")])


def _lift_parts(db: sqlite3.Connection, run_id: int) -> Iterator[pa.Table]:
    """The lifts of run ``run_id``, earliest first, a page at a time."""
    cursor = db.execute(f"SELECT {', '.join(_LIFTS.names)} FROM lifts WHERE run_id = ? ORDER BY effective, policy, rule",
                        (run_id,))
    while rows := cursor.fetchmany(ROWS_PER_PAGE):
        yield pa.table([_optional_strings(list(c)) for c in zip(*rows, strict=True)], schema=_LIFTS)


def _lifts_of(lifts: pa.Table) -> dict[str, list[tuple]]:
    """Lifts by subject, in their order (a partition's: a tuple each, only for its subjects)."""
    by_subject: dict[str, list[tuple]] = {}
    for lift in zip(*(lifts[name].to_pylist() for name in _LIFTS.names), strict=True):
        by_subject.setdefault(lift[0], []).append(lift)
    return by_subject


def _lift(run: _Run, live: pa.Table, ended: dict) -> None:
    """The earliest lift of this run that reaches each open entry (of its subject, list and
    case, started by then and not planned to end before): exit ``lifted`` the day before."""
    if not run.lifts:
        return
    candidates = np.flatnonzero(bools(pc.is_in(live["uscc"], value_set=run.lifted)))
    for i, entry in zip(candidates.tolist(), live.take(from_numbers(candidates)).to_pylist(), strict=True):
        list_id = run.rules[entry["rule_id"]][0]
        for _, lift_list, case_id, effective, policy, rule, reason in run.lifts[entry["uscc"]]:
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
