"""The results database: one SQLite file that the tests and other systems read.

Tables (the columns other systems rely on; a run's rows all carry its ``run_id``):

- ``runs``: one row per run: id, started, finished (UTC, ISO 8601), status (``running``,
  ``done``, ``failed``), as_of, source, input_fingerprint, policy_fingerprint, policies (JSON:
  id, version, content_hash of each), input_stat (names, sizes, times), ecorules_version, rows_in, rows_scored, rows_rejected,
  total_yuan, summary (JSON: list entries, findings, rejects by reason), error, pid, host;
- ``findings``: run_id, uscc, policy (``id@version``), rule, kind, amount_yuan, payer (a
  district, or the enterprise's USCC), citation, ..., amount, unit, amount_fen (a view, see
  below; amounts: see *Money* below);
- ``district_totals``: run_id, district, deduction_yuan, cases (enterprises with a finding
  booked to it, 0-yuan findings included: a rule that fired is a case), deduction_fen, unit;
- ``sanctions``: run_id, uscc, list, rule, policy (a view, see below);
- ``rejects``: run_id, source, row, column, value, reason;
- ``assessed``: the memory of case assessments (一例一次): one row per imposed finding of a
  case a run assessed: run_id, case_id, uscc, policy (id), version, rule, kind, amount_yuan,
  decided (the case's decision date, or NULL), reason (``first``, ``new decision``,
  ``reassessed``, or ``withdrawn``: assessed anew to nothing, amount 0, no assessment current
  since), supersedes_run (the run of the assessment this one replaces, or NULL),
  amount_fen, unit, act_id (the case's act, NULL: its own; 一个违法行为一次罚款 across runs).
  Rows are only ever added with their run (and go with it); a key's current assessment is its
  row of the highest run_id (see ``engine/cases/_assessed.py``). A view over
  ``assessed_chunks`` (version 9) and, from version 12, the imposed findings of the case slots
  marked ``finding_slots.assessed`` (``ASSESSED_VIEW``).
- ``case_factors`` (version 13): what placed each case finding, as ``explain``'s trace shows
  it: run_id, case_id, policy, rule, name, value: one row per roll-up the finding's rule
  reads (prior_offences_2y) and per named value of integer type its trace computed (the
  discretion's levels 1-5), see ``engine/cases/_factors.py``. A view over ``factor_chunks``.

``findings`` and ``sanctions`` hold a row per finding or list entry, hundreds of thousands and
millions per run, so each is a view over two tables: ``*_slots`` names what a column of the
kernel's output means once per run (policy, rule, kind, citation; list), and ``*_chunks``
holds one batch's entries of one slot as a JSON array (``[[uscc, amount, payer], ...]``, the amount in the slot's unit;
``[uscc, ...]``). Row by row, with the names and citations repeated on every row, SQLite
spent ~1 s of a 10 M-row run inserting and indexing 140 K findings and 1.5 M list entries,
competing for the same two cores as reading and scoring; as chunks it writes them in ~0.15 s,
and reading the views is as fast as reading the tables was. Read them like any table.

Money (version 8): every amount is an integer in its unit, ``yuan`` or ``fen``, where the
policy rounds it (rules/_money.py). A finding keeps the integer of its rule's unit (the unit
is its slot's, ``finding_slots.unit``: one rule rounds one way); a total (a district's, the
run's) is in fen if any finding adding to it is, else in yuan. Each amount is readable three
ways: ``amount``/``unit`` as stored; ``*_fen``, the same integer in fen, what to add up
(``SELECT sum(amount_fen) FROM findings`` is exact whatever the units); ``*_yuan``, the exact
value in yuan as ``ecorules explain --format json`` writes it: an integer where the unit is
yuan (every run before version 8), the text of a two-place decimal where it is fen
("0.48"). SQLite has no decimal type: adding up ``*_yuan`` text would go through binary
floating point, so sums read the ``*_fen`` columns. Why not fen everywhere: the findings of
a run in yuan (all the shipped policies) stay the integers every earlier run wrote, the
chunks stay as short, and readers of ``amount_yuan`` read on unchanged.

Atomicity: a run's results are written in one transaction that ends by setting its status to
``done``, so a reader sees all of a run or none of it. Its chunks alone (``STAGED_TABLES``) are
committed as they come, so that SQLite checkpoints them while the run goes on; no view shows
them before that last transaction writes their slots, and a run that fails leaves none. The ``runs`` row itself is committed at
the start with status ``running`` so that a run in progress can be seen; if the process dies,
the next run (which holds the run lock, an ``flock`` the kernel releases on death) marks it
``failed``. Only ``done`` runs have results; ``rows_in = rows_scored + rows_rejected`` is a
CHECK constraint of every ``done`` run.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import fcntl
import json
import os
import queue
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ecorules.rules import EcorulesError

SCHEMA_VERSION = 14
PAGE_SIZE = 65_536  # of a new store (connect), SQLite's largest
WAL_FLUSH_BYTES = 64 << 20  # of a run's WAL written back to disk at a time while the run goes on (_WalFlusher)
# The chunk tables a run's slots make visible (every view joins them to their slots): a run's
# chunks are committed a ``STAGE_BYTES`` at a time (RunWriter._staged)
STAGED_TABLES = ("finding_chunks", "factor_chunks", "sanction_chunks")
STAGE_BYTES = 64 << 20
HELD_BYTES = 64 << 20  # of the other statements held for the run's last transaction, at most
_STAGED_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
# 3: before case findings; 4: before the assessment memory; 5: before list entries' state;
# 6: list entries with their names and texts on every row, and before the record kinds of
# other tables (``--records``); 7: before amounts in fen (every amount whole yuan); 8: every
# list entry a row of ``list_state``; 9: an assessment a row of the table ``assessed``; 10:
# before a finding's payer could be null (read as its uscc); 11: every assessment a second copy
# in ``assessed_chunks``; 12: before the case factors; 13: every finding row in one layout; read
# as they are (each store's views its own), migrated on the next run
READABLE_VERSIONS = ("3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14")
TABLES = ("runs", "findings", "district_totals", "sanctions", "rejects", "assessed", "lifts",
          "case_factors")  # what readers read
# An exact amount in yuan: an integer, or the text of a two-place decimal (see *Money*)
MONEY = "MONEY"
# Columns of the views computed from JSON have no declared type; what readers should take them as.
VIEW_COLUMN_TYPES = {
    "uscc": "TEXT", "amount_yuan": MONEY, "deduction_yuan": MONEY, "total_yuan": MONEY, "amount": "INTEGER",
    "unit": "TEXT", "amount_fen": "INTEGER", "payer": "TEXT", "case_id": "TEXT", "status": "TEXT", "superseded_by": "TEXT",
    "assessed_in_run": "INTEGER", "decided": "TEXT", "reason": "TEXT", "supersedes_run": "INTEGER", "start": "TEXT",
    "planned_end": "TEXT", "record_kind": "TEXT", "record_key": "TEXT", "law_note": "TEXT", "act_id": "TEXT",
    "name": "TEXT", "value": "INTEGER",
}
RESULT_TABLES = (
    "finding_chunks", "finding_slots", "district_totals", "sanction_chunks", "sanction_slots", "rejects", "assessed_chunks",
    "lifts", "factor_chunks",
)  # stored

# The findings view. Version 4 added case_id, status and superseded_by after the columns of
# version 3 (a case's findings carry them; an enterprise's are "imposed" with no case), so
# readers of the old columns read on unchanged. A chunk row is [uscc, amount_yuan, payer]
# or, for a case, [uscc, amount_yuan, payer, case_id, status, superseded_by or ""]; a case's
# imposed finding may leave off status and superseded_by (read as imposed and null); in a
# chunk holding a finding already assessed by an earlier run (version 5), assessed_in_run
# (that run's id; 0 for the chunk's other rows). Version 7 added record_kind and record_key:
# the kind of the judged record and its key. A slot of a table of another kind (``--records``)
# names its kind, and its rows' first element is the record's key (in ``uscc`` too: the
# record stands for itself, as ``Finding.payer`` says for 'enterprise'); the registry's and
# the case table's slots name none, and their records are the enterprise (key uscc) or the
# case (key case_id). law_note, last (行政处罚法 art 37, a case judged by
# the law of its own dates: the version applied and why, engine/_law_notes.py): the chunk's,
# or a row's own as its 8th element (a 从轻 note holds that case's figures). Version 8 added
# amount, unit and amount_fen, last (*Money* above): a chunk's amounts are integers of its
# slot's unit, and amount_yuan is their exact text where that is fen. Version 11: a payer
# written null is the row's uscc (the enterprise pays its own fine: a case's fines are most of
# a case run's findings, and the 18 characters again were a fifth of their bytes). Version
# 12: an imposed finding of a slot marked ``assessed`` is an assessment, its elements 8 to 11
# the assessment's (``ASSESSED_VIEW``); this view reads none of them.
#
# Version 14: the rows of a case slot (``finding_slots.layout`` = 14, :data:`CASE_LAYOUT`) are
# ``[uscc, amount, case_id, payer, act_id, decided, status, superseded_by, assessed_in,
# law_note, supersedes_run, reason]``, each element after case_id left out where empty and the
# row ends (``null`` before a present one), status and reason as codes (:data:`STATUS_CODES`,
# :data:`REASON_CODES`): the elements most rows carry first. In version 13's layout a fine of a
# named act padded four nulls before its act_id and every row carried a null payer: a 2 M-case
# run's finding chunks are 154 M characters in this layout against 179 M (bench/case_rows.py).
# The slots of earlier runs, and of the registry and other tables, keep the layout above
# (``layout`` NULL); the views read both, no chunk is rewritten.
CASE_LAYOUT = 14
STATUS_CODES = {1: "superseded", 2: "already_assessed"}  # absent: imposed
REASON_CODES = {1: "new decision", 2: "reassessed"}  # absent: first
# an element's place in a row of CASE_LAYOUT and of version 13's layout
CASE_PLACES = {"uscc": 0, "amount": 1, "case_id": 2, "payer": 3, "act_id": 4, "decided": 5, "status": 6,
               "superseded_by": 7, "assessed_in": 8, "law_note": 9, "supersedes": 10, "reason": 11}
V13_PLACES = {"uscc": 0, "amount": 1, "payer": 2, "case_id": 3, "status": 4, "superseded_by": 5, "assessed_in": 6,
              "law_note": 7, "act_id": 8, "decided": 9, "supersedes": 10, "reason": 11}


def _element(name: str) -> str:
    """A finding row's element ``name`` (``e.value``, of slot ``s``) in either layout."""
    old, new = V13_PLACES[name], CASE_PLACES[name]
    if old == new:
        return f"(e.value ->> {old})"
    return f"(e.value ->> CASE WHEN s.layout IS NULL THEN {old} ELSE {new} END)"


def _coded(name: str, codes: dict[int, str], otherwise: str) -> str:
    """Element ``name``: a text in version 13's layout, a code of ``codes`` in CASE_LAYOUT."""
    old, new = V13_PLACES[name], CASE_PLACES[name]
    named = " ".join(f"WHEN {code} THEN '{text}'" for code, text in codes.items())
    return (f"CASE WHEN s.layout IS NULL THEN coalesce(e.value ->> {old}, '{otherwise}') "
            f"ELSE CASE e.value ->> {new} {named} ELSE '{otherwise}' END END")


FINDINGS_VIEW = f"""
    SELECT c.run_id AS run_id, e.value ->> 0 AS uscc, s.policy AS policy, s.rule AS rule, s.kind AS kind,
           CASE s.unit WHEN 'fen' THEN printf('%d.%02d', (e.value ->> 1) / 100, (e.value ->> 1) % 100)
                ELSE e.value ->> 1 END AS amount_yuan, coalesce({_element("payer")}, e.value ->> 0) AS payer,
           s.citation AS citation, {_element("case_id")} AS case_id,
           {_coded("status", STATUS_CODES, "imposed")} AS status,
           nullif({_element("superseded_by")}, '') AS superseded_by, nullif({_element("assessed_in")}, 0) AS assessed_in_run,
           coalesce(s.record_kind, CASE WHEN {_element("case_id")} IS NULL THEN 'enterprise' ELSE 'case' END) AS record_kind,
           coalesce({_element("case_id")}, e.value ->> 0) AS record_key,
           coalesce({_element("law_note")}, c.law_note) AS law_note,
           e.value ->> 1 AS amount, coalesce(s.unit, 'yuan') AS unit,
           CASE s.unit WHEN 'fen' THEN e.value ->> 1 ELSE (e.value ->> 1) * 100 END AS amount_fen
    FROM finding_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_each(c.rows) e"""

# 一例一次: which case was assessed, by which run (version 5; see engine/cases/_assessed.py).
# Version 9 stores them in chunks, as findings are: one row of ``assessed_chunks`` per run,
# policy version, rule, kind and batch, its assessments a JSON array of ``[case_id, uscc,
# amount (an integer of the chunk's unit, as findings), decided or "", reason, supersedes_run
# or 0, act_id or ""]``, read through the ``assessed`` view with the columns of the table it
# was (version 8 added amount_fen and unit), then act_id (the case's act; NULL: its own act,
# or a chunk written before acts were kept, whose rows have 6 elements; see
# :func:`_add_act_ids`). A row per assessment, with two indexes, kept
# SQLite's writer busy for most of a case run (one imposed finding per case: 13 M rows and a
# ~3 GB WAL at 10 M cases, bench/cases.py).
_ASSESSED_ROWS = """
    SELECT c.run_id AS run_id, e.value ->> 0 AS case_id, e.value ->> 1 AS uscc, c.policy AS policy,
           c.version AS version, c.rule AS rule, c.kind AS kind,
           CASE c.unit WHEN 'fen' THEN printf('%d.%02d', (e.value ->> 2) / 100, (e.value ->> 2) % 100)
                ELSE e.value ->> 2 END AS amount_yuan,
           nullif(e.value ->> 3, '') AS decided, e.value ->> 4 AS reason, nullif(e.value ->> 5, 0) AS supersedes_run,
           CASE c.unit WHEN 'fen' THEN e.value ->> 2 ELSE (e.value ->> 2) * 100 END AS amount_fen,
           coalesce(c.unit, 'yuan') AS unit, nullif(e.value ->> 6, '') AS act_id
    FROM assessed_chunks c, json_each(c.rows) e"""
# Version 12: an assessment is the imposed finding itself, not a second copy (~a third of a
# case run's store, and its writing, at 2 M cases: bench/cases.py). A slot whose imposed case
# findings are the run's assessments says so (``finding_slots.assessed`` = 1); such a finding
# row carries what the assessment adds, after the elements the findings view reads: act_id
# (8), decided (9), supersedes_run (10) and reason (11, absent: "first"), each left out where
# empty and the row ends, ``null`` before a present one. ``assessed_chunks`` keeps the
# withdrawn assessments (they have no finding) and the assessments of runs before version 12.
# The policy id and version are the slot's ``id@version`` split at its last '@' (rtrim by
# every other character of it leaves the text up to that '@').
_SLOT_POLICY = "rtrim(s.policy, replace(s.policy, '@', ''))"
_FINDING_ASSESSMENTS = f"""
    SELECT c.run_id AS run_id, {_element("case_id")} AS case_id, e.value ->> 0 AS uscc,
           CASE WHEN instr(s.policy, '@') THEN substr({_SLOT_POLICY}, 1, length({_SLOT_POLICY}) - 1)
                ELSE s.policy END AS policy,
           CASE WHEN instr(s.policy, '@') THEN substr(s.policy, length({_SLOT_POLICY}) + 1) ELSE '' END AS version,
           s.rule AS rule, s.kind AS kind,
           CASE s.unit WHEN 'fen' THEN printf('%d.%02d', (e.value ->> 1) / 100, (e.value ->> 1) % 100)
                ELSE e.value ->> 1 END AS amount_yuan,
           nullif({_element("decided")}, '') AS decided, {_coded("reason", REASON_CODES, "first")} AS reason,
           nullif({_element("supersedes")}, 0) AS supersedes_run,
           CASE s.unit WHEN 'fen' THEN e.value ->> 1 ELSE (e.value ->> 1) * 100 END AS amount_fen,
           coalesce(s.unit, 'yuan') AS unit, nullif({_element("act_id")}, '') AS act_id
    FROM finding_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot, json_each(c.rows) e
    WHERE s.assessed = 1 AND {_element("status")} IS NULL AND {_element("case_id")} IS NOT NULL"""
ASSESSED_VIEW = _ASSESSED_ROWS + "\n    UNION ALL" + _FINDING_ASSESSMENTS
ASSESSED_SCHEMA = """
CREATE TABLE IF NOT EXISTS assessed_chunks (
    run_id INTEGER NOT NULL,
    policy TEXT NOT NULL,
    version TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    rows TEXT NOT NULL,
    unit TEXT
);
CREATE INDEX IF NOT EXISTS assessed_chunks_run ON assessed_chunks (run_id);
""" + "CREATE VIEW IF NOT EXISTS assessed AS" + ASSESSED_VIEW + ";\n"

# What placed each case finding (version 13, engine/cases/_factors.py): a chunk per finding
# slot (the first finding of a rule) and batch, its rows ``[case_id, {name: value, ...}]``;
# a name is a roll-up the rule reads or a named value of integer type on its trace. A view
# row per case, finding and name.
CASE_FACTORS_VIEW = """
    SELECT c.run_id AS run_id, e.value ->> 0 AS case_id, s.policy AS policy, s.rule AS rule, f.key AS name,
           f.value AS value
    FROM factor_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_each(c.rows) e, json_each(e.value, '$[1]') f"""
FACTORS_SCHEMA = """
CREATE TABLE IF NOT EXISTS factor_chunks (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    rows TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS factor_chunks_run ON factor_chunks (run_id);
""" + "CREATE VIEW IF NOT EXISTS case_factors AS" + CASE_FACTORS_VIEW + ";\n"

# The sanctions view. A chunk's entry is the subject's uscc, or (version 6) for an entry with
# dates or of a case ``[uscc, case_id or "", start or null, planned_end or null]`` (ISO
# dates; a null start is the default, the run's as_of). The first five columns are those of
# versions 3 to 5; record_kind is version 7's (for an entry of another kind's table, ``uscc``
# is the record's key).
SANCTIONS_VIEW = """
    SELECT c.run_id AS run_id, CASE e.type WHEN 'array' THEN e.value ->> 0 ELSE e.value END AS uscc,
           s.list AS list, s.rule AS rule, s.policy AS policy,
           CASE e.type WHEN 'array' THEN nullif(e.value ->> 1, '') END AS case_id,
           CASE e.type WHEN 'array' THEN e.value ->> 2 END AS start,
           CASE e.type WHEN 'array' THEN e.value ->> 3 END AS planned_end,
           coalesce(s.record_kind, CASE WHEN e.type = 'array' AND nullif(e.value ->> 1, '') IS NOT NULL
                                        THEN 'case' ELSE 'enterprise' END) AS record_kind
    FROM sanction_chunks c JOIN sanction_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_each(c.usccs) e"""

# List entries across runs (version 6; narrow rows since version 7; chunks since version 8; see
# engine/_lists.py). An entry's key is its subject (uscc), its rule (``list_rules``: list,
# policy id, rule) and its ``tag``: the case id, or the entry's own start date when the sanction
# gives ``from:``, else ''; at most one open entry per key. The version, reason and citation it
# was last justified with are a row of ``list_texts``. Dates are ISO text; ``ended`` and
# ``planned_end`` are the last day on the list (inclusive). Read the ``list_entries`` view.
#
# An entry is written once when it enters, in ``list_chunks`` (one row per run, rule and text
# with the entered entries as a JSON array, ids ``first_id`` .. ``first_id + n - 1``; an
# element is the uscc, or ``[uscc, tag, case_id or "", started, planned_end or ""]`` when it
# has a tag, a case, a planned end or a start other than the chunk's), and again only when it
# ends or its planned end, start or text changes: then a row of ``list_state`` with the same id
# holds it and hides the chunk's element. A run that finds an open entry still justified
# writes nothing for it: its ``last_run`` is the last run that judged its scope
# (``list_scopes``: a policy id, and whether entries of cases; a run without a case table
# leaves the cases' entries alone), because such a run either keeps an open entry or ends it.
# Written as rows, every entry entering and every open entry kept cost a B-tree insert or
# update with its indexes: 4.6 s of a 5.6 s run of 5 M registry rows (bench/nightly.py).
LIST_ENTRIES_VIEW = """
    SELECT s.id AS id, r.list || '|' || s.uscc || '|' || r.policy || '|' || r.rule || '|' || s.tag AS key,
           r.list AS list, s.uscc AS uscc, r.policy AS policy, t.version AS version, r.rule AS rule,
           s.case_id AS case_id, s.started AS started, s.planned_end AS planned_end, s.ended AS ended,
           s.exit AS exit, s.exit_reason AS exit_reason, t.reason AS reason, t.citation AS citation,
           s.first_run AS first_run,
           CASE WHEN s.exit IS NULL THEN max(s.last_run, coalesce(sc.last_run, 0)) ELSE s.last_run END AS last_run,
           s.exit_run AS exit_run
    FROM (SELECT id, rule_id, uscc, tag, case_id, text_id, started, planned_end, ended, exit, exit_reason,
                 first_run, last_run, exit_run FROM list_state
          UNION ALL
          SELECT c.first_id + e.key, c.rule_id, CASE e.type WHEN 'array' THEN e.value ->> 0 ELSE e.value END,
                 CASE e.type WHEN 'array' THEN e.value ->> 1 ELSE '' END,
                 CASE e.type WHEN 'array' THEN nullif(e.value ->> 2, '') END, c.text_id,
                 CASE e.type WHEN 'array' THEN e.value ->> 3 ELSE c.started END,
                 CASE e.type WHEN 'array' THEN nullif(e.value ->> 4, '') END, NULL, NULL, NULL,
                 c.run_id, c.run_id, NULL
          FROM list_chunks c, json_each(c.rows) e
          WHERE NOT EXISTS (SELECT 1 FROM list_state x WHERE x.id = c.first_id + e.key)) s
         JOIN list_rules r ON r.id = s.rule_id JOIN list_texts t ON t.id = s.text_id
         LEFT JOIN list_scopes sc ON sc.policy = r.policy AND sc.cases = (s.case_id IS NOT NULL)"""
# (version 8)
LIST_CHUNKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS list_chunks (
    first_id INTEGER PRIMARY KEY,
    n INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    rule_id INTEGER NOT NULL REFERENCES list_rules (id),
    text_id INTEGER NOT NULL REFERENCES list_texts (id),
    started TEXT NOT NULL,
    rows TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS list_scopes (
    policy TEXT NOT NULL,
    cases INTEGER NOT NULL,
    last_run INTEGER NOT NULL,
    PRIMARY KEY (policy, cases)
) WITHOUT ROWID;
"""
LIST_ENTRIES_SCHEMA = """
CREATE TABLE IF NOT EXISTS list_rules (
    id INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    UNIQUE (list, policy, rule)
);
CREATE TABLE IF NOT EXISTS list_texts (
    id INTEGER PRIMARY KEY,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    citation TEXT NOT NULL,
    UNIQUE (version, reason, citation)
);
CREATE TABLE IF NOT EXISTS list_state (
    id INTEGER PRIMARY KEY,
    rule_id INTEGER NOT NULL REFERENCES list_rules (id),
    uscc TEXT NOT NULL,
    tag TEXT NOT NULL,
    case_id TEXT,
    text_id INTEGER NOT NULL REFERENCES list_texts (id),
    started TEXT NOT NULL,
    planned_end TEXT,
    ended TEXT,
    exit TEXT CHECK (exit IS NULL OR exit IN ('expired', 'lifted', 'no_longer_justified', 'decision')),
    exit_reason TEXT,
    first_run INTEGER NOT NULL,
    last_run INTEGER NOT NULL,
    exit_run INTEGER,
    CHECK ((exit IS NULL) = (ended IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS list_state_open ON list_state (uscc, rule_id, tag) WHERE exit IS NULL;
CREATE INDEX IF NOT EXISTS list_state_key ON list_state (uscc, rule_id, tag);
CREATE INDEX IF NOT EXISTS list_state_ending ON list_state (planned_end) WHERE exit IS NULL AND planned_end IS NOT NULL;
CREATE TABLE IF NOT EXISTS lifts (
    run_id INTEGER NOT NULL,
    uscc TEXT NOT NULL,
    list TEXT NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    case_id TEXT,
    effective TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lifts_run ON lifts (run_id);
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    as_of TEXT NOT NULL,
    source TEXT NOT NULL,
    input_fingerprint TEXT,
    input_stat TEXT,
    policy_fingerprint TEXT NOT NULL,
    policies TEXT NOT NULL,
    ecorules_version TEXT NOT NULL,
    rows_in INTEGER,
    rows_scored INTEGER,
    rows_rejected INTEGER,
    total_yuan,
    summary TEXT,
    error TEXT,
    pid INTEGER,
    host TEXT,
    total_fen INTEGER,
    unit TEXT,
    CHECK (status != 'done' OR (rows_in IS NOT NULL AND rows_in = rows_scored + rows_rejected))
);
CREATE INDEX IF NOT EXISTS runs_fingerprints ON runs (input_fingerprint, policy_fingerprint, as_of);
CREATE INDEX IF NOT EXISTS runs_stats ON runs (input_stat, policy_fingerprint, as_of);
CREATE TABLE IF NOT EXISTS finding_slots (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    citation TEXT NOT NULL,
    record_kind TEXT,
    unit TEXT,
    assessed INTEGER,
    layout INTEGER,
    PRIMARY KEY (run_id, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS finding_chunks (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    rows TEXT NOT NULL,
    law_note TEXT
);
CREATE INDEX IF NOT EXISTS finding_chunks_run ON finding_chunks (run_id);
""" + "CREATE VIEW IF NOT EXISTS findings AS" + FINDINGS_VIEW + """;
CREATE TABLE IF NOT EXISTS district_totals (
    run_id INTEGER NOT NULL,
    district TEXT NOT NULL,
    deduction_yuan NOT NULL,
    cases INTEGER NOT NULL,
    deduction_fen INTEGER,
    unit TEXT,
    PRIMARY KEY (run_id, district)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sanction_slots (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    policy TEXT NOT NULL,
    list TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT,
    citation TEXT,
    record_kind TEXT,
    PRIMARY KEY (run_id, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sanction_chunks (
    run_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    usccs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sanction_chunks_run ON sanction_chunks (run_id);
""" + "CREATE VIEW IF NOT EXISTS sanctions AS" + SANCTIONS_VIEW + """;
CREATE TABLE IF NOT EXISTS rejects (
    run_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    row INTEGER,
    "column" TEXT,
    value TEXT,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_run ON rejects (run_id);
""" + ASSESSED_SCHEMA + LIST_ENTRIES_SCHEMA + LIST_CHUNKS_SCHEMA + "CREATE VIEW IF NOT EXISTS list_entries AS" + LIST_ENTRIES_VIEW + ";" \
    + FACTORS_SCHEMA

INSERT_FINDING_SLOT = "INSERT INTO finding_slots (run_id, slot, policy, rule, kind, citation) VALUES (?, ?, ?, ?, ?, ?)"
# the slots of a table of another kind name it (version 7), with the unit of the slot's amounts, where it is not yuan (version 8)
INSERT_UNIT_FINDING_SLOT = (
    "INSERT INTO finding_slots (run_id, slot, policy, rule, kind, citation, record_kind, unit) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# a case slot, its rows in CASE_LAYOUT (version 14), whose imposed findings are the run's
# assessments where ``assessed`` is 1 (version 12, ``ASSESSED_VIEW``)
INSERT_CASE_FINDING_SLOT = (
    "INSERT INTO finding_slots (run_id, slot, policy, rule, kind, citation, record_kind, unit, assessed, layout) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DISTRICT_TOTAL = (
    "INSERT INTO district_totals (run_id, district, deduction_yuan, cases, deduction_fen, unit) VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_FINDINGS = "INSERT INTO finding_chunks (run_id, slot, rows) VALUES (?, ?, ?)"
# The same with the rows given as their UTF-8 bytes (engine/_chunk_rows.pyx): stored as the
# TEXT they spell, byte for byte (SQLite reads a blob cast to TEXT as text of the database's
# encoding, UTF-8), with no str made of them and encoded back by sqlite3 on the writer's thread
INSERT_FINDINGS_UTF8 = "INSERT INTO finding_chunks (run_id, slot, rows) VALUES (?, ?, CAST(? AS TEXT))"
INSERT_NOTED_FINDINGS_UTF8 = "INSERT INTO finding_chunks (run_id, slot, rows, law_note) VALUES (?, ?, CAST(? AS TEXT), ?)"
INSERT_FACTORS_UTF8 = "INSERT INTO factor_chunks (run_id, slot, rows) VALUES (?, ?, CAST(? AS TEXT))"
INSERT_SANCTION_SLOT = (
    "INSERT INTO sanction_slots (run_id, slot, policy, list, rule, reason, citation) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_KIND_SANCTION_SLOT = (
    "INSERT INTO sanction_slots (run_id, slot, policy, list, rule, reason, citation, record_kind) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_LIFTS = "INSERT INTO lifts (run_id, uscc, list, policy, rule, reason, case_id, effective) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_SANCTIONS = "INSERT INTO sanction_chunks (run_id, slot, usccs) VALUES (?, ?, ?)"
INSERT_REJECTS = 'INSERT INTO rejects (run_id, source, row, "column", value, reason) VALUES (?, ?, ?, ?, ?, ?)'


class StoreError(EcorulesError):
    """The results database cannot be opened, written or understood."""


class NoStore(StoreError):
    """No results store is there yet: no file, or one whose first run stopped before the
    schema was committed (a reader must treat both alike, not as someone else's database)."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def connect(path: str | os.PathLike, *, readonly: bool = False, timeout: float = 60.0) -> sqlite3.Connection:
    """A connection in WAL mode with the schema in place (read-only: the file must exist)."""
    path = Path(path)
    try:
        if readonly:
            if not path.is_file():
                raise NoStore(f"{path}: no such results database")
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, isolation_level=None,
                                         factory=_ReadOnly)
            connection.path = path
            # The writer creates the file before its schema (sqlite3 opens it with O_CREAT; the
            # schema is one transaction): a run killed in between leaves a file with no table,
            # ours, which the next run completes. Not someone else's database, and no store yet.
            if connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None:
                connection.close()
                raise NoStore(f"{path}: no results database yet (the run that created the file stopped "
                              "before it had written anything; the next run completes it)")
            _check_schema(connection, path, readonly=True)
            return connection
        if path.is_dir():
            raise StoreError(f"{path}: is a folder; give a file name such as results.sqlite")
        created = not path.exists()
        connection = sqlite3.connect(path, timeout=timeout, isolation_level=None, factory=_Writable)
        connection.path, connection.created = path, created
        _refuse_foreign(connection, path)
        # A new store's pages are 64 KiB (an existing one keeps its own: WAL fixes it): a run
        # writes its findings as JSON chunks of megabytes, each an overflow chain that SQLite
        # writes, logs and checkpoints a page per system call; with 4 KiB pages a 2 M-case run
        # made ~380,000 such calls, a third of its CPU time in the kernel (bench/cases.py).
        connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        try:
            connection.executescript(
                "BEGIN IMMEDIATE;" + SCHEMA
                + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
            )
            _migrate(connection)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        _check_schema(connection, path)
        return connection
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: cannot open the results database for writing: {error}") from error


class _Writable(sqlite3.Connection):
    """A writer that knows its file and whether it made it (:func:`discard_unused`)."""

    path: Path
    created: bool


def discard_unused(connection: _Writable) -> None:
    """The results file that ``connection`` made, removed with its -wal and -shm when it holds
    no run (a run refused before it began leaves no empty store behind); the connection is
    closed then. A file that was there before is left as it is."""
    if not connection.created or connection.execute("SELECT 1 FROM runs LIMIT 1").fetchone():
        return
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{connection.path}{suffix}").unlink(missing_ok=True)


class _ReadOnly(sqlite3.Connection):
    """A reader that leaves no -wal or -shm file behind. A read-only connection to a WAL
    database makes them but may not remove them; the last connection to close removes them,
    so on closing, a writable database is opened and closed once more. SQLite itself decides
    whether that was the last connection (a run still writing keeps them, as it must)."""

    path: Path

    def close(self) -> None:
        super().close()
        if Path(f"{self.path}-wal").exists() and os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK):
            with contextlib.suppress(sqlite3.Error):
                last = sqlite3.connect(self.path, isolation_level=None)
                last.execute("SELECT count(*) FROM sqlite_master").fetchone()  # (an idle one removes nothing)
                last.close()


def _refuse_foreign(connection: sqlite3.Connection, path: Path) -> None:
    """An existing database that is not a results store is some other system's data: we
    never add our tables to it (a mistyped --out would otherwise mix them into it)."""
    tables = [r[0] for r in connection.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    if tables and "meta" not in tables:
        connection.close()
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(f"{path}: an SQLite database that is not an ecorules results database (it has {shown}); "
                         "give a new file name for the results")


def _migrate(connection: sqlite3.Connection) -> None:
    """Version 3 -> 4: the findings view gains case_id, status and superseded_by; the stored
    chunks are unchanged (their rows read as imposed findings of no case). Version 4 -> 5:
    the ``assessed`` table (created empty by the schema script: earlier runs remembered
    nothing, so their cases are assessed anew once) and the view's assessed_in_run. Version
    5 -> 6: ``sanction_slots`` gains reason and citation (NULL for earlier runs), the
    sanctions view case_id, start and planned_end (NULL: earlier runs wrote plain usccs), and
    the state tables ``list_entries`` and ``lifts`` are created empty: the next run enters
    every entry it finds justified, from its own as_of (earlier runs kept no dates). Version
    6 -> 7: list entries in narrow rows (:func:`_narrow_list_entries`). Then the slots'
    ``record_kind`` (see :func:`_add_record_kinds`), the findings' law_note
    (:func:`_add_law_note`) and, version 7 -> 8, the units of amounts (:func:`_add_units`).
    Version 8 -> 9: entries entered in chunks, kept without a write
    (:func:`_list_entries_in_chunks`). Version 9 -> 10: assessments in chunks
    (:func:`_assessed_in_chunks`, after the units: a chunk keeps its unit). Version 10 -> 11:
    the findings view reads a null payer as the uscc (the chunks are unchanged). Version 11 ->
    12: assessments are the imposed findings of marked slots (:func:`_add_assessed_slots`).
    Version 12 -> 13: ``factor_chunks`` and the ``case_factors`` view, made empty by the schema
    script (``IF NOT EXISTS``): earlier runs kept no factors, their findings have none. Version
    13 -> 14: the slots' layout (:func:`_add_layouts`)."""
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    # (first: every view made again below reads the slots' layout)
    layouts_added = _add_layouts(connection)
    _add_assessed_slots(connection)  # (first: the assessed view the schema script made reads its column)
    kinds_added = _add_record_kinds(connection)
    kinds_added |= _add_law_note(connection)
    kinds_added |= _add_units(connection)
    if row is not None and row[0] in ("3", "4", "5", "6", "7", "8", "9", "10"):  # (11: a null payer)
        connection.execute("DROP VIEW findings")
        connection.execute("CREATE VIEW findings AS" + FINDINGS_VIEW)
    if row is not None and row[0] in ("3", "4", "5"):
        columns = {r[1] for r in connection.execute("PRAGMA table_info(sanction_slots)")}
        for column in ("reason", "citation"):
            if column not in columns:
                connection.execute(f"ALTER TABLE sanction_slots ADD COLUMN {column} TEXT")
        connection.execute("DROP VIEW sanctions")
        connection.execute("CREATE VIEW sanctions AS" + SANCTIONS_VIEW)
    if row is not None and row[0] == "6":
        _narrow_list_entries(connection)
    if row is not None and row[0] in ("6", "7", "8"):
        _list_entries_in_chunks(connection)
    if row is not None and row[0] in ("5", "6", "7", "8", "9"):
        _assessed_in_chunks(connection)
    _add_act_ids(connection)
    if kinds_added:
        for view, body in (("findings", FINDINGS_VIEW), ("sanctions", SANCTIONS_VIEW)):
            connection.execute(f"DROP VIEW IF EXISTS {view}")
            connection.execute(f"CREATE VIEW {view} AS" + body)
    if layouts_added:
        connection.execute("DROP VIEW IF EXISTS findings")
        connection.execute("CREATE VIEW findings AS" + FINDINGS_VIEW)
        if _columns(connection, "assessed"):  # (a view by now: every step above made it one)
            connection.execute("DROP VIEW assessed")
            connection.execute("CREATE VIEW assessed AS" + ASSESSED_VIEW)
    if row is not None and row[0] != str(SCHEMA_VERSION):
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _add_law_note(connection: sqlite3.Connection) -> bool:
    """``finding_chunks`` gains law_note (NULL for earlier runs); whether it was added (then
    the views are made again). By the columns present, as ``_add_record_kinds``."""
    if "law_note" in {r[1] for r in connection.execute("PRAGMA table_info(finding_chunks)")}:
        return False
    connection.execute("ALTER TABLE finding_chunks ADD COLUMN law_note TEXT")
    return True


def _narrow_list_entries(connection: sqlite3.Connection) -> None:
    """Version 6 -> 7: the entries of the wide ``list_entries`` table move to ``list_state``
    (ids kept), their names to ``list_rules`` and texts to ``list_texts``; the key's last
    part, after the fourth '|', is the tag (the list, uscc, policy id and rule hold no '|')."""
    kind = connection.execute("SELECT type FROM sqlite_master WHERE name = 'list_entries'").fetchone()
    if kind is None or kind[0] != "table":  # a version 5 store migrated now: nothing to move
        return
    connection.execute("""INSERT OR IGNORE INTO list_rules (list, policy, rule)
                          SELECT DISTINCT list, policy, rule FROM list_entries""")
    connection.execute("""INSERT OR IGNORE INTO list_texts (version, reason, citation)
                          SELECT DISTINCT version, reason, citation FROM list_entries""")
    connection.execute("""
        INSERT INTO list_state (id, rule_id, uscc, tag, case_id, text_id, started, planned_end, ended, exit,
                                exit_reason, first_run, last_run, exit_run)
        SELECT e.id, r.id, e.uscc, substr(e.key, length(e.list || e.uscc || e.policy || e.rule) + 5), e.case_id,
               t.id, e.started, e.planned_end, e.ended, e.exit, e.exit_reason, e.first_run, e.last_run, e.exit_run
        FROM list_entries e JOIN list_rules r ON (r.list, r.policy, r.rule) = (e.list, e.policy, e.rule)
             JOIN list_texts t ON (t.version, t.reason, t.citation) = (e.version, e.reason, e.citation)""")
    connection.execute("DROP TABLE list_entries")
    connection.execute("CREATE VIEW list_entries AS" + LIST_ENTRIES_VIEW)


def _add_units(connection: sqlite3.Connection) -> bool:
    """Version 7 -> 8, amounts with their unit (*Money* above): ``finding_slots.unit`` (NULL,
    read as yuan), ``district_totals``, ``runs`` and ``assessed`` gain ``*_fen`` and ``unit``, filled from
    the whole yuan every earlier run wrote, and their ``*_yuan`` column loses its INTEGER
    type, under which SQLite would turn the text "0.48" into a binary float. Whether anything
    was added (then the views are made again). By the columns present, as the other steps,
    so that it composes with any other migration of the same version."""
    changed = False
    if "unit" not in _columns(connection, "finding_slots"):
        connection.execute("ALTER TABLE finding_slots ADD COLUMN unit TEXT")
        changed = True
    for table, yuan, fen in (("district_totals", "deduction_yuan", "deduction_fen"), ("runs", "total_yuan", "total_fen"),
                             ("assessed", "amount_yuan", "amount_fen")):
        stored = connection.execute("SELECT type FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        if fen in _columns(connection, table) or stored is None or stored[0] != "table":
            continue  # done, or a view another step made: its own definition reads the unit
        _untype_column(connection, table, yuan)
        connection.execute(f"ALTER TABLE {table} ADD COLUMN {fen} INTEGER")
        connection.execute(f"ALTER TABLE {table} ADD COLUMN unit TEXT")
        connection.execute(f"UPDATE {table} SET {fen} = {yuan} * 100, unit = 'yuan' WHERE {yuan} IS NOT NULL")
        changed = True
    return changed


def _columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in connection.execute(f"PRAGMA table_info({table})")}


def _untype_column(connection: sqlite3.Connection, table: str, column: str) -> None:
    """``table`` made again with ``column`` declared without a type (SQLite's procedure for a
    change ALTER TABLE cannot make: a new table, the rows copied, the old one dropped, the new
    one renamed, its indexes made again), from the table's own stored definition, so that
    columns other steps added are kept."""
    definition, = connection.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                     (table,)).fetchone()
    indexes = [r[0] for r in connection.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,))]
    untyped, typed = re.subn(rf"\b{column}\s+INTEGER\b", column, definition)
    renamed, named = re.subn(rf"^CREATE TABLE\s+(IF NOT EXISTS\s+)?\"?{table}\"?", f"CREATE TABLE {table}_v8", untyped)
    if typed != 1 or named != 1:
        raise StoreError(f"cannot migrate {table}.{column}: its definition is not one this ecorules wrote")
    connection.execute(renamed)
    connection.execute(f"INSERT INTO {table}_v8 SELECT * FROM {table}")
    connection.execute(f"DROP TABLE {table}")
    connection.execute(f"ALTER TABLE {table}_v8 RENAME TO {table}")
    for index in indexes:
        connection.execute(index)


def _list_entries_in_chunks(connection: sqlite3.Connection) -> None:
    """Version 8 -> 9: the view reads ``list_chunks`` beside ``list_state``, and an open
    entry's last_run becomes the last run that judged its scope. Every run judging a scope
    kept or ended each of its open entries, so the open entries of a scope all carry that run
    as last_run: it is their maximum. The ended entries stay rows; the open ones move into
    chunks (:func:`_open_rows_into_chunks`)."""
    connection.execute("DROP VIEW IF EXISTS list_entries")
    connection.execute("CREATE VIEW list_entries AS" + LIST_ENTRIES_VIEW)
    connection.execute("""
        INSERT OR REPLACE INTO list_scopes (policy, cases, last_run)
        SELECT r.policy, s.case_id IS NOT NULL, max(s.last_run)
        FROM list_state s JOIN list_rules r ON r.id = s.rule_id WHERE s.exit IS NULL GROUP BY 1, 2""")
    _open_rows_into_chunks(connection)


def _open_rows_into_chunks(connection: sqlite3.Connection, most: int = 65_536) -> None:
    """The open entries of a version 8 (or earlier) store become chunks, their ids kept: each run of
    consecutive ids entered by one run under one rule and text is one chunk. Left as rows,
    every later run would read them all row by row (1 s for 308,000 entries, more than version
    8 took to update them). An entry whose last_run is not its scope's stays a row."""
    rows = connection.execute("""
        SELECT s.id, s.rule_id, s.text_id, s.first_run, s.uscc, s.tag, s.case_id, s.started, s.planned_end
        FROM list_state s JOIN list_rules r ON r.id = s.rule_id
             JOIN list_scopes sc ON sc.policy = r.policy AND sc.cases = (s.case_id IS NOT NULL)
        WHERE s.exit IS NULL AND s.last_run = sc.last_run ORDER BY s.id""").fetchall()
    chunks: list[list] = []  # [first_id, run, rule_id, text_id, started, elements]
    for entry_id, rule_id, text_id, run, uscc, tag, case_id, started, planned_end in rows:
        last = chunks[-1] if chunks else None
        if (last is None or entry_id != last[0] + len(last[5]) or (run, rule_id, text_id) != tuple(last[1:4])
                or len(last[5]) >= most):
            last = [entry_id, run, rule_id, text_id, started, []]
            chunks.append(last)
        plain = tag == "" and case_id is None and planned_end is None and started == last[4]
        last[5].append(uscc if plain else [uscc, tag, case_id or "", started, planned_end or ""])
    connection.executemany(
        "INSERT INTO list_chunks (first_id, n, run_id, rule_id, text_id, started, rows) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(first, len(items), run, rule_id, text_id, started, json.dumps(items, ensure_ascii=False))
         for first, run, rule_id, text_id, started, items in chunks])
    connection.executemany("DELETE FROM list_state WHERE id >= ? AND id < ? AND exit IS NULL",
                           [(first, first + len(items)) for first, *_, items in chunks])


def _assessed_in_chunks(connection: sqlite3.Connection) -> None:
    """Version 9 -> 10: the rows of the table ``assessed`` move into ``assessed_chunks``, one
    chunk per run, policy version, rule, kind and unit (in rowid order, as they were written),
    each amount the integer of its unit (run after :func:`_add_units`, which gave every row its
    amount_fen), and ``assessed`` becomes the view that reads them."""
    kind = connection.execute("SELECT type FROM sqlite_master WHERE name = 'assessed'").fetchone()
    if kind is None or kind[0] != "table":
        return
    connection.execute("""
        INSERT INTO assessed_chunks (run_id, policy, version, rule, kind, unit, rows)
        SELECT run_id, policy, version, rule, kind, unit,
               json_group_array(json_array(case_id, uscc,
                                           CASE unit WHEN 'fen' THEN amount_fen ELSE amount_fen / 100 END,
                                           coalesce(decided, ''), reason, coalesce(supersedes_run, 0)))
        FROM (SELECT * FROM assessed ORDER BY rowid) GROUP BY run_id, policy, version, rule, kind, unit""")
    connection.execute("DROP TABLE assessed")  # (its indexes with it)
    connection.execute("CREATE VIEW assessed AS" + ASSESSED_VIEW)


def _add_assessed_slots(connection: sqlite3.Connection) -> None:
    """Version 11 -> 12: ``finding_slots`` gains ``assessed`` (NULL for the slots of earlier
    runs, whose assessments stay the rows of ``assessed_chunks`` they were written as), and
    the ``assessed`` view reads the marked slots' imposed findings beside those rows. By the
    columns present, as the other steps."""
    if "assessed" in _columns(connection, "finding_slots"):
        return
    connection.execute("ALTER TABLE finding_slots ADD COLUMN assessed INTEGER")
    kind = connection.execute("SELECT type FROM sqlite_master WHERE name = 'assessed'").fetchone()
    if kind is not None and kind[0] == "view":  # (a table of version 9 or before: its step makes the view)
        connection.execute("DROP VIEW assessed")
        connection.execute("CREATE VIEW assessed AS" + ASSESSED_VIEW)


def _add_layouts(connection: sqlite3.Connection) -> bool:
    """Version 13 -> 14: ``finding_slots`` gains ``layout`` (NULL for every slot of earlier
    runs: their chunks are read as they were written, none is rewritten); whether it was added
    (then the findings and assessed views are made again, reading either layout). By the
    columns present, as the other steps."""
    if "layout" in _columns(connection, "finding_slots"):
        return False
    connection.execute("ALTER TABLE finding_slots ADD COLUMN layout INTEGER")
    return True


def _add_act_ids(connection: sqlite3.Connection) -> None:
    """The ``assessed`` view gains act_id, last (a store of this version written before:
    its chunks' rows have no act and read as NULL); by the view's columns, as the other steps."""
    columns = _columns(connection, "assessed")
    if columns and "act_id" not in columns:
        connection.execute("DROP VIEW assessed")
        connection.execute("CREATE VIEW assessed AS" + ASSESSED_VIEW)


def _add_record_kinds(connection: sqlite3.Connection) -> bool:
    """The slots of tables of other kinds name their kind (``record_kind``; NULL: the
    registry's and the case table's, as in every earlier run); whether the column was added
    (then both views are made again to read it). Decided by the columns present rather than by
    the version number, so that it composes with any other migration of the same version."""
    missing = [table for table in ("finding_slots", "sanction_slots")
               if "record_kind" not in {r[1] for r in connection.execute(f"PRAGMA table_info({table})")}]
    for table in missing:
        connection.execute(f"ALTER TABLE {table} ADD COLUMN record_kind TEXT")
    return bool(missing)


def _check_schema(connection: sqlite3.Connection, path: Path, readonly: bool = False) -> None:
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: not an ecorules results database ({error})") from error
    if row is None or (row[0] not in READABLE_VERSIONS if readonly else row[0] != str(SCHEMA_VERSION)):
        raise StoreError(f"{path}: results schema version {row and row[0]}, this ecorules writes {SCHEMA_VERSION}")


@contextlib.contextmanager
def run_lock(path: str | os.PathLike) -> Iterator[None]:
    """Held for the whole of a run: one run at a time per database; released if we die.

    The lock is an ``flock`` on ``<db>-run.lock``, removed when released so that no file is
    left beside the database. Removing it is safe because a holder checks, once locked, that
    the name still leads to the file it locked: one that opened the file just before it was
    removed finds it gone and tries again on the new one.
    """
    lock_path = f"{os.fspath(path)}-run.lock"
    while True:
        try:
            handle = open(lock_path, "a+b")
        except OSError as error:
            raise StoreError(f"{lock_path}: cannot create the run lock: {error.strerror}") from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreError(f"{path}: another run is writing to this database") from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()  # removed by the holder that just left: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        handle.close()


def abandon_stale_runs(connection: sqlite3.Connection, by_run: str = "the next run") -> list[int]:
    """Mark runs left ``running`` by a dead process as failed and drop any rows they left.

    Call only while holding :func:`run_lock`: then no run is really in progress.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        stale = [r[0] for r in connection.execute("SELECT id FROM runs WHERE status = 'running'")]
        for run_id in stale:
            for table in RESULT_TABLES:
                connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            connection.execute(
                "UPDATE runs SET status = 'failed', finished = ?, error = ? WHERE id = ?",
                (now(), f"interrupted (process killed or crashed); found by {by_run}", run_id),
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return stale


def find_done_run(connection: sqlite3.Connection, policy_fingerprint: str, as_of: dt.date, *,
                  input_fingerprint: str | None = None, input_stat: str | None = None,
                  any_input: bool = False) -> int | None:
    """The latest finished run of the same policies and date, and input (by content or stat;
    ``any_input``: of any input)."""
    column, value = ("input_fingerprint", input_fingerprint) if input_fingerprint else ("input_stat", input_stat)
    match, values = ("", ()) if any_input else (f" AND {column} = ?", (value,))
    row = connection.execute(
        f"SELECT id FROM runs WHERE status = 'done'{match} AND policy_fingerprint = ? "
        "AND as_of = ? ORDER BY id DESC LIMIT 1",
        (*values, policy_fingerprint, as_of.isoformat()),
    ).fetchone()
    return row[0] if row else None


def start_run(connection: sqlite3.Connection, *, as_of: dt.date, source: str, policy_fingerprint: str,
              policies: list[dict[str, Any]], version: str) -> int:
    """The run's row, committed with status ``running``; its id. RETURNING (SQLite 3.35, under
    the 3.38 the views' ``->>`` need; PostgreSQL 8.2) rather than sqlite3's lastrowid, which
    psycopg has not: one statement for both stores."""
    with _transaction(connection):
        (run_id,), = connection.execute(
            "INSERT INTO runs (started, status, as_of, source, policy_fingerprint, policies, "
            "ecorules_version, pid, host) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (now(), as_of.isoformat(), source, policy_fingerprint,
             json.dumps(policies, ensure_ascii=False), version, os.getpid(), socket.gethostname()),
        ).fetchall()  # (all: the statement finished before the COMMIT)
    return run_id


def fail_run(connection: sqlite3.Connection, run_id: int, error: str) -> None:
    with _transaction(connection):
        for table in RESULT_TABLES:  # normally none: the results' transaction was rolled back
            connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        connection.execute(
            "UPDATE runs SET status = 'failed', finished = ?, error = ? WHERE id = ? AND status = 'running'",
            (now(), error[:2000], run_id),
        )


def delete_run(connection: sqlite3.Connection, run_id: int) -> None:
    """Every row of a run (inside the caller's transaction)."""
    for table in RESULT_TABLES:
        connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
    connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))


def _execute(connection: sqlite3.Connection, action: str, sql: str, params) -> None:
    if action == "many":
        connection.executemany(sql, params)
    else:
        connection.execute(sql, params)


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


class RunWriter:
    """Writes one run's results from a thread of its own, in one transaction.

    The scoring thread hands over statements through a bounded queue (so memory stays bounded
    and SQLite works while the next batch is read and scored); :meth:`commit` ends the run.
    An error in the writer is raised in the caller at its next call.
    """

    def __init__(self, path: str | os.PathLike, run_id: int, depth: int = 4):
        self.path, self.run_id = path, run_id
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self.busy: dict[str, float] = {}  # seconds the writer spent per kind of job
        self.waited = 0.0  # seconds the caller waited for room in the queue
        self._started = threading.Event()
        self._flusher: _WalFlusher | None = None  # (SQLite's: _open)
        self._thread = threading.Thread(target=self._work, name=f"ecorules-writer-{run_id}", daemon=True)
        self._thread.start()
        self._started.wait()
        self._raise()

    # what a failed statement raises: reported as "writing results failed"
    _database_errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)
    # whether the chunks are committed as they come (_staged); PostgreSQL's: no checkpoint to spread
    _stages_chunks = True
    _staging, _staged_any, _held_jobs, _held_bytes = False, False, (), 0  # (until _open)

    def _open(self):
        """The writer's connection, in the run's transaction."""
        connection = connect(self.path)
        connection.execute("BEGIN IMMEDIATE")
        self._flusher = _WalFlusher(Path(self.path))
        self._held_jobs: list[tuple[str, str, Any]] = []  # (action, sql, params) for the final transaction
        self._held_bytes = 0
        self._staged_bytes = 0  # of chunks since the last staging commit
        self._staged_any = False  # a staging commit made: a rollback deletes its chunks
        self._staging = self._stages_chunks
        return connection

    def _staged(self, connection, action: str, sql: str, params) -> bool:
        """Chunks committed as they come. An insert into a chunk table that only its run's
        slots make visible (``STAGED_TABLES``: every view joins them) is executed now and
        committed every ``STAGE_BYTES``, so that SQLite checkpoints the WAL into the database
        file while the run goes on, not all of it in the final COMMIT (2.1 s of a 10 M-case
        run's 2.9 s commit, both cores idle: bench/cases.py). Every other statement, the
        slots among them, is held for the final transaction: no view shows a chunk before its
        run is done, and a run that fails leaves none (``rollback``, ``fail_run``, or after
        a kill the next run's ``abandon_stale_runs``, delete them). Held statements past
        ``HELD_BYTES`` (a registry of bad rows: its rejects) end the staging: they and the
        rest of the run go into the transaction then open, committed at the end (the memory
        a run holds stays bounded). Whether the statement was taken (else: execute it)."""
        if not self._staging:
            return False
        table = _STAGED_INSERT.match(sql)
        rows = params if action == "many" else (params,)
        size = sum(len(v) for row in rows for v in row if isinstance(v, (str, bytes)))
        if table is None or table.group(1) not in STAGED_TABLES:
            self._held_jobs.append((action, sql, params))
            self._held_bytes += size + 64 * len(rows)
            if self._held_bytes >= HELD_BYTES:
                self._staging = False
                self._release_held(connection)
            return True
        _execute(connection, action, sql, params)
        self._staged_bytes += size
        if self._staged_bytes >= STAGE_BYTES:
            connection.execute("COMMIT")  # (and SQLite's checkpoint of the WAL, past wal_autocheckpoint)
            connection.execute("BEGIN IMMEDIATE")
            self._staged_bytes, self._staged_any = 0, True
        return True

    def _release_held(self, connection) -> None:
        held, self._held_jobs, self._held_bytes = self._held_jobs, [], 0
        for action, sql, params in held:
            _execute(connection, action, sql, params)

    def _do(self, connection, action: str, sql: str | None, params) -> None:
        if action in ("one", "many"):
            if not self._staged(connection, action, sql, params):
                _execute(connection, action, sql, params)
        elif action == "commit":
            began = time.perf_counter()
            self._release_held(connection)
            params(connection)  # last statements, then COMMIT
            ended = time.perf_counter()
            connection.execute("COMMIT")
            # (the steps line) SQLite checkpoints the rest of the run's WAL in the COMMIT: apart from the list work
            self.busy["final"], self.busy["COMMIT"] = ended - began, time.perf_counter() - ended
        elif action == "rollback":
            connection.execute("ROLLBACK")
            if self._staged_any:
                with _transaction(connection):
                    for table in STAGED_TABLES:
                        connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (self.run_id,))

    def _work(self) -> None:
        try:
            connection = self._open()
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            self._error = error
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    self._queue.task_done()
                    break
                if self._error is not None:
                    self._queue.task_done()
                    continue  # drain until the caller notices
                action, sql, params = job
                kind, began = action, time.perf_counter()
                try:
                    if action == "built":  # (execute_built) the parameters made here, then a statement as any
                        action, params = "one", tuple(params())
                    self._do(connection, action, sql, params)
                except BaseException as error:  # noqa: BLE001 - handed to the caller
                    self._error = error
                self.busy[kind] = self.busy.get(kind, 0.0) + time.perf_counter() - began
                if self._flusher is not None:
                    self._flusher.grew()
                self._queue.task_done()
        finally:
            if self._flusher is not None:
                self._flusher.close()
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            connection.close()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, self._database_errors):
                raise StoreError(f"{self.path}: writing results failed: {error}") from error
            raise error

    def execute(self, sql: str, params: Iterable[Any]) -> None:
        self._raise()
        self._put(("one", sql, tuple(params)))

    def execute_built(self, sql: str, make: Callable[[], Iterable[Any]]) -> None:
        """``execute(sql, make())`` with ``make`` called on the writer's thread: for parameters
        whose making releases the GIL (a chunk's JSON text, engine/_chunk_rows.pyx), made while
        the caller goes on. ``make`` must read only what nobody changes after the call; an
        error it raises is raised at the caller's next call, as a statement's is."""
        self._raise()
        self._put(("built", sql, make))

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        self._raise()
        if rows:
            self._put(("many", sql, rows))

    def _put(self, job) -> None:
        began = time.perf_counter()
        self._queue.put(job)
        self.waited += time.perf_counter() - began

    def flush(self) -> None:
        """Wait until everything handed over so far is executed (not committed)."""
        self._queue.join()
        self._raise()

    def commit(self, final) -> None:
        """Run ``final(connection)`` in the transaction, commit, and wait until it is done."""
        self._raise()
        self._queue.put(("commit", None, final))
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def rollback(self) -> None:
        if self._thread.is_alive():
            self._queue.put(("rollback", None, None))
            self._queue.put(None)
            self._thread.join()
        self._error = None


class _WalFlusher:
    """Writes a run's WAL back to disk from a thread of its own while the run goes on.

    A run is one transaction, so SQLite checkpoints its WAL (every page of the run) only at
    the commit, and the checkpoint syncs the WAL before copying it into the database file: at
    10 M cases ~920 MB, waited for after the run's last statement with both cores idle
    (bench/cases.py). Here the WAL is synced a ``WAL_FLUSH_BYTES`` at a time as it grows, so
    that most of it is on disk by the commit, written while the run was judging. Only when
    data reaches the disk changes, never what is committed or in which order SQLite syncs:
    the transaction is as open as before (a killed run still commits nothing). A best effort:
    a failed sync leaves SQLite's own to do it.

    Never the database file: SQLite holds POSIX (fcntl) locks on it, and closing *any*
    descriptor of a file drops every such lock the process holds on it
    (https://www.sqlite.org/howtocorrupt.html, 2.2), so another process could switch the
    store out of WAL mode, or delete the WAL, under this run. SQLite takes no lock on the WAL
    file itself (its WAL locks are on the -shm file), so a descriptor of it may come and go."""

    def __init__(self, database: Path):
        self.wal, self.every = Path(f"{database}-wal"), WAL_FLUSH_BYTES
        self.synced = 0  # WAL bytes asked to be synced (its size when last asked)
        self.syncs = 0  # syncs done
        self._wanted = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="ecorules-wal-flusher", daemon=True)
        self._thread.start()

    def grew(self) -> None:
        """After a statement (the writer's thread): a sync once another ``every`` is written."""
        try:
            size = self.wal.stat().st_size
        except OSError:
            return
        if size - self.synced >= self.every:
            self.synced = size
            self._wanted.set()

    def _work(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            try:
                descriptor = os.open(self.wal, os.O_RDONLY)
                try:
                    os.fdatasync(descriptor)
                finally:
                    os.close(descriptor)
                self.syncs += 1
            except OSError:
                pass

    def close(self) -> None:
        self._closing = True
        self._wanted.set()
        self._thread.join()


def run_row(connection: sqlite3.Connection, run_id: int) -> dict[str, Any] | None:
    cursor = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def run_unit(connection: sqlite3.Connection, run_id: int) -> str:
    """The unit of a run's total: ``fen`` if any of its findings is in fen, else ``yuan``
    (every run of a store before version 8, read as it is)."""
    if "unit" not in _columns(connection, "runs"):
        return "yuan"
    row = connection.execute("SELECT unit FROM runs WHERE id = ?", (run_id,)).fetchone()
    return (row and row[0]) or "yuan"


def has_units(connection: sqlite3.Connection) -> bool:
    """Whether the store keeps units (version 8): else every amount is whole yuan."""
    return "amount_fen" in _columns(connection, "findings")


def resolve_run(connection: sqlite3.Connection, run: str | int, *, done: bool = True) -> int:
    """A run id from ``run`` (an id, ``latest`` or ``previous``), checked to exist (and, with
    ``done``, be done). ``latest`` and ``previous`` name finished runs whatever ``done`` says:
    a killed run marked running is never the latest."""
    text = str(run).strip().lower()
    if text in ("latest", "last", "previous"):
        offset = 1 if text == "previous" else 0
        row = connection.execute("SELECT id FROM runs WHERE status = 'done' ORDER BY id DESC LIMIT 1 OFFSET ?",
                                 (offset,)).fetchone()
        if row is None:
            raise StoreError(f"no done run to call {text!r}")
        return row[0]
    try:
        run_id = int(text)
    except ValueError:
        raise StoreError(f"{run!r} is not a run id (a number, 'latest' or 'previous')") from None
    row = run_row(connection, run_id)
    if row is None:
        raise StoreError(f"no run {run_id} in this database")
    if done and row["status"] != "done":
        raise StoreError(f"run {run_id} is {row['status']}, it has no results")
    return run_id


# -- what is not the same SQL in PostgreSQL (the dialect: see postgres.py's of the same names) ---

IS_DISTINCT = "IS NOT"
TEMP = "temp"
BEGIN_SNAPSHOT = "BEGIN"  # a read transaction: one state of the WAL for all its statements (store.snapshot)
INSERTION_ORDER = "rowid"  # of assessed_chunks
# a stored chunk's JSON text as the memory of assessments reads it (engine/cases/_remembered.py): its UTF-8 bytes, not decoded
TEXT_BYTES = "CAST({} AS BLOB)"


def policy_id(column: str) -> str:
    """The policy id of ``id@version`` text."""
    return f"CASE WHEN instr({column}, '@') THEN substr({column}, 1, instr({column}, '@') - 1) ELSE {column} END"


def policy_version(column: str) -> str:
    return f"CASE WHEN instr({column}, '@') THEN substr({column}, instr({column}, '@') + 1) ELSE '' END"


def insert_missing(table: str, columns: str, select: str) -> str:
    """Insert the rows of ``select`` that ``table`` lacks (by all of ``columns``, a unique key)."""
    return f"INSERT OR IGNORE INTO {table} ({columns}) {select}"


def replace_rows(db: sqlite3.Connection, table: str, columns: tuple[str, ...], key: tuple[str, ...],
                 rows: list[tuple]) -> None:
    """Rows of ``table`` replaced by key (its primary key)."""
    db.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                   rows)


# Rows of a table replaced by key, gathered over a step in a temporary table and written by one
# statement (the list state's rows of a run, engine/_lists.py): an INSERT OR REPLACE a row cost
# ~55 µs of CPU at 500 K entries (bench/lists.py's second run), most of it the statement
# journal each statement fills with the 64 KiB pages it changes, where one INSERT ... SELECT
# journals a page once; in id order, the rows' pages are changed one after the other.
def _staged(table: str) -> str:
    return f"temp.ecorules_replacing_{table}"


def begin_replacing(db: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> None:
    """Start gathering rows that will replace rows of ``table`` (:func:`finish_replacing`)."""
    # (a table left by an earlier failure on this connection: its transaction's rollback drops it)
    db.execute(f"DROP TABLE IF EXISTS {_staged(table)}")
    db.execute(f"CREATE TABLE {_staged(table)} AS SELECT {', '.join(columns)} FROM {table} WHERE 0")


def add_replacing(db: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    db.executemany(f"INSERT INTO {_staged(table)} VALUES ({', '.join('?' * len(columns))})", rows)


def finish_replacing(db: sqlite3.Connection, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> None:
    """The gathered rows replace those of ``table`` with their key (its primary key), a row
    added later winning over an earlier one of the same key, as INSERT OR REPLACE a row did.

    In key order the table's pages are changed one after another, but an index on other
    columns at random places: with the connection's cache (2 MB, 31 pages of 64 KiB) each
    row read an index page and wrote another out to the WAL, 64 KiB each way (list_state at
    2 M entries, 217 K rows: ~155 K of each, 5.8 CPU-s; with the index's pages cached 2.6-3.2).
    So the cache holds the table's indexes while the statement runs (pages are taken as they
    are read: a few rows take a few), at most INDEX_CACHE_MOST."""
    names = ", ".join(columns)
    rows = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] + db.execute(
        f"SELECT count(*) FROM {_staged(table)}").fetchone()[0]
    cache = db.execute("PRAGMA main.cache_size").fetchone()[0]
    wanted = min(INDEX_CACHE_MOST, rows * _INDEX_ROW_BYTES) // 1024
    if cache < 0 and wanted > -cache:  # (a cache given in pages, positive: left as it is)
        db.execute(f"PRAGMA main.cache_size = -{wanted}")
    try:
        db.execute(f"INSERT OR REPLACE INTO {table} ({names}) SELECT {names} FROM {_staged(table)} "
                   f"ORDER BY {', '.join(key)}, rowid")
    finally:
        db.execute(f"PRAGMA main.cache_size = {cache}")  # (the pages over it are freed)
    db.execute(f"DROP TABLE {_staged(table)}")


INDEX_CACHE_MOST = 128 << 20
_INDEX_ROW_BYTES = 128  # of a table's indexes, a row: list_state_key took ~50, list_state_open less


# list entry :id as a row of list_state when it is still only a chunk's element
ENTRY_AS_ROW = """
    INSERT INTO list_state (id, rule_id, uscc, tag, case_id, text_id, started, planned_end, first_run, last_run)
    SELECT c.first_id + e.key, c.rule_id, CASE e.type WHEN 'array' THEN e.value ->> 0 ELSE e.value END,
           CASE e.type WHEN 'array' THEN e.value ->> 1 ELSE '' END,
           CASE e.type WHEN 'array' THEN nullif(e.value ->> 2, '') END, c.text_id,
           CASE e.type WHEN 'array' THEN e.value ->> 3 ELSE c.started END,
           CASE e.type WHEN 'array' THEN nullif(e.value ->> 4, '') END, c.run_id, c.run_id
    FROM list_chunks c, json_each(c.rows) e
    WHERE c.first_id = (SELECT max(first_id) FROM list_chunks WHERE first_id <= :id) AND c.first_id + e.key = :id
          AND NOT EXISTS (SELECT 1 FROM list_state WHERE id = :id)"""


def streamed(db: sqlite3.Connection, statement: str, params=(), size: int = 64) -> Iterator[tuple]:
    """The rows of a query as they are read (an sqlite3 cursor holds none it has not
    returned): the memory of earlier assessments read a chunk at a time (engine/cases/_remembered.py)."""
    yield from db.execute(statement, params)


def has_relation(connection: sqlite3.Connection, name: str) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def declared_columns(connection: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """A table's or view's columns and their types as readers take them (``INTEGER``,
    ``TEXT``, or :data:`MONEY` for an exact amount in yuan): a view's computed columns have
    none declared, :data:`VIEW_COLUMN_TYPES` says."""
    return [(name, (declared or VIEW_COLUMN_TYPES[name]).upper())
            for _cid, name, declared, *_ in connection.execute(f"PRAGMA table_info({table})")]


# -- a chunk's text a piece at a time (the list state: engine/_chunk_reader.py) --------------

def sanction_chunk_rows(db: sqlite3.Connection, run_id: int) -> list[tuple[int, int]]:
    """The slot and row (for :func:`text_pieces`) of each sanction chunk of run ``run_id``,
    in the order they were written."""
    return db.execute("SELECT slot, rowid FROM sanction_chunks WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()


def text_pieces(db: sqlite3.Connection, table: str, column: str, row: int, size: int) -> Iterator[str]:
    """Text ``column`` of row ``row`` of ``table`` (its rowid: ``list_chunks``' first_id),
    ``size`` bytes at a time: read by an incremental blob handle, so that a chunk of
    megabytes is never whole in memory (``SELECT`` and ``substr`` load the whole value)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with db.blobopen(table, column, row, readonly=True) as blob:
        while piece := blob.read(size):
            yield decoder.decode(piece)
    yield decoder.decode(b"", final=True)


__all__ = [
    "CASE_LAYOUT", "CASE_PLACES", "INSERT_CASE_FINDING_SLOT", "REASON_CODES", "STATUS_CODES", "V13_PLACES", "INSERT_DISTRICT_TOTAL", "INSERT_FACTORS_UTF8", "INSERT_FINDINGS_UTF8", "INSERT_NOTED_FINDINGS_UTF8", "MONEY", "RESULT_TABLES", "SCHEMA_VERSION", "TABLES", "VIEW_COLUMN_TYPES", "NoStore", "RunWriter", "StoreError", "abandon_stale_runs",
    "connect", "delete_run", "has_units", "run_unit", "fail_run", "find_done_run", "resolve_run", "run_lock", "run_row",
    "start_run",
]
