"""The results store in PostgreSQL: the tables and views of :mod:`.sqlite`, in a schema of their own.

    ecorules run --registry registry.csv --out "postgresql:///bureau?schema=ecorules"

``schema`` (default ``ecorules``) is ecorules' own parameter; every other one goes to libpq as
written (host, port, sslmode, service...). A password is refused in the URL, as on the read
side (engine/sources/_pg_url.py): libpq takes it from PGPASSWORD, ~/.pgpass or a service file,
and the URL is shown in logs, errors and the runs table.

The tables are SQLite's (version 10: runs, the findings' and list entries' slots and JSON
chunks, district totals, rejects, lifts, the list state, the assessed-once memory) with
PostgreSQL's types; the views ``findings``, ``sanctions``, ``assessed`` and ``list_entries``
read the chunks with ``json_array_elements`` where SQLite uses ``json_each``. Only plain SQL
that KingbaseES and openGauss, which speak PostgreSQL's protocol, also accept: no extension,
``bigserial`` rather than identity columns, no ``ON CONFLICT``; text columns ``COLLATE "C"``
so that they sort as SQLite sorts them (by code point) whatever the database's locale.

Guarantees, as SQLite's: a run's results are one transaction that ends by setting its status
``done`` (a reader sees all of a run or none); the ``runs`` row is committed first with status
``running``, and one left so by a dead process is marked failed by the next run, which holds
the run lock: a session-level ``pg_advisory_lock`` that the server releases when the
session ends, however it ends. The chunk tables are loaded with ``COPY ... FROM STDIN
(FORMAT BINARY)``.

The schema is made and upgraded by :data:`MIGRATIONS`, versioned in ``meta`` and idempotent
(``ecorules db upgrade --out URL``; every run does it first), under a transaction-level
advisory lock so that two first runs do not both make it.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import hashlib
import itertools
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import attrs

from . import sqlite
from .sqlite import (  # noqa: F401 - (start_run: the same SQL in both)
    CASE_PLACES,
    REASON_CODES,
    RESULT_TABLES,
    STATUS_CODES,
    V13_PLACES,
    NoStore,
    StoreError,
    start_run,
)

log = logging.getLogger(__name__)

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_SCHEMA = "ecorules"
SCHEMA_VERSION = sqlite.SCHEMA_VERSION

_TEXT = 'text COLLATE "C"'


def is_url(target: object) -> bool:
    return isinstance(target, str) and target.strip().lower().startswith(SCHEMES)


def _psycopg():
    try:
        import psycopg
    except ImportError as error:
        raise StoreError("a PostgreSQL results store needs the postgres extra: pip install 'ecorules[postgres]'") from error
    return psycopg


@attrs.frozen
class StoreUrl:
    """A results store's location; ``str()`` is safe to show (a password is refused)."""

    connection: str  # the libpq URL without ecorules' parameter
    schema: str = DEFAULT_SCHEMA

    @classmethod
    def parse(cls, text: str) -> StoreUrl:
        from ..sources._pg_url import WHERE_PASSWORDS_GO, redact

        text = str(text).strip()
        if redact(text) != text:
            raise StoreError(f"{redact(text)}: a password in the URL is refused; {WHERE_PASSWORDS_GO}")
        base, _, query = text.partition("?")
        schema, passed = None, []
        for part in (p for p in query.split("&") if p):
            key, _, value = part.partition("=")
            if key == "schema":
                if schema is not None:
                    raise StoreError(f"{text}: schema= given twice")
                schema = unquote(value)
            elif key in ("table", "query"):
                raise StoreError(f"{text}: a results store takes ?schema=NAME (its tables are ecorules'), not {key}=")
            else:
                passed.append(part)
        if schema is not None and (not schema.strip() or "\0" in schema):
            raise StoreError(f"{text}: schema= must be a non-empty name without NUL characters")
        url = cls(base + ("?" + "&".join(passed) if passed else ""), schema or DEFAULT_SCHEMA)
        conninfo = _psycopg().conninfo
        try:
            parameters = conninfo.conninfo_to_dict(url.connection)
        except Exception as error:  # noqa: BLE001 - libpq's parse errors
            raise StoreError(f"{url}: libpq cannot read the URL: {redact(str(error))}") from error
        if "password" in parameters:
            raise StoreError(f"{url}: a password in the URL is refused; {WHERE_PASSWORDS_GO}")
        return url

    def __str__(self) -> str:
        joiner = "&" if "?" in self.connection else "?"
        return f"{self.connection}{joiner}schema={self.schema}"


def _failed(url: StoreUrl, doing: str, error: BaseException) -> StoreError:
    from ..sources._pg_url import redact

    lines = [line.strip() for line in redact(str(error)).splitlines() if line.strip()]
    return StoreError(f"{url}: {doing}: {' '.join(lines)}")


# -- the connection: sqlite3's calling conventions over psycopg --------------------------------

_TOKENS = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|::|\?|:[A-Za-z_]\w*|%)""")


@functools.lru_cache(maxsize=512)
def _placeholders(statement: str) -> str:
    """``?`` and ``:name`` (sqlite3's) as ``%s`` and ``%(name)s`` (psycopg's), ``%`` doubled,
    outside quoted literals and identifiers; ``::`` casts left alone."""
    def swap(match: re.Match) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if token.startswith(":") and token != "::":
            return f"%({token[1:]})s"
        return token
    return _TOKENS.sub(swap, statement)


class Connection:
    """A psycopg connection that callers of the store use as they use an sqlite3 one: ``?`` or
    ``:name`` placeholders, ``BEGIN IMMEDIATE``/``COMMIT``/``ROLLBACK`` as statements,
    ``with connection:`` commits an open transaction. What is not the same SQL in both is
    :func:`~ecorules.engine.store.dialect`'s."""

    dialect = sys.modules[__name__]

    def __init__(self, raw, url: StoreUrl):
        self.raw, self.url = raw, url

    def execute(self, statement: str, params: Any = ()):
        verb = statement.strip().upper()
        if verb in ("BEGIN", "BEGIN IMMEDIATE"):
            statement = "BEGIN"
        cursor = self.raw.cursor()
        params = params if isinstance(params, dict) else tuple(params)
        cursor.execute(_placeholders(statement) if params else statement, params or None)
        return cursor

    def executemany(self, statement: str, rows) -> None:
        rows = list(rows)
        if rows:
            with self.raw.cursor() as cursor:
                cursor.executemany(_placeholders(statement), rows)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != _psycopg().pq.TransactionStatus.IDLE

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK" if kind is not None else "COMMIT")

    def close(self) -> None:
        self.raw.close()


def _open(url: StoreUrl) -> Connection:
    psycopg = _psycopg()
    try:
        raw = psycopg.connect(url.connection, autocommit=True, application_name="ecorules")
    except psycopg.Error as error:
        raise _failed(url, "cannot connect", error) from error
    raw.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(url.schema)))
    return Connection(raw, url)


def connect(target: str | StoreUrl, *, readonly: bool = False, timeout: float = 60.0) -> Connection:
    """A connection with the schema in place and up to date (read-only: it must exist)."""
    url = target if isinstance(target, StoreUrl) else StoreUrl.parse(target)
    psycopg = _psycopg()
    connection = _open(url)
    try:
        if readonly:
            version = _version(connection)
            if version is None:
                raise NoStore(f"{url}: no results store in schema {url.schema!r} (no run has written to it)")
            if str(version) not in sqlite.READABLE_VERSIONS:
                raise StoreError(f"{url}: results schema version {version}, this ecorules reads up to {SCHEMA_VERSION}")
        else:
            upgrade(connection)
        return connection
    except psycopg.Error as error:
        connection.close()
        raise _failed(url, "cannot open the results store", error) from error
    except BaseException:
        connection.close()
        raise


def _version(connection: Connection) -> int | None:
    if not _has_table(connection, "meta"):
        return None
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def _relations(connection: Connection) -> list[str]:
    """The tables and views of the store's schema, from the catalogue (information_schema
    shows only those the user has a privilege on)."""
    return [r[0] for r in connection.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ? AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY c.relname", (connection.url.schema,))]


def _has_table(connection: Connection, name: str) -> bool:
    return name in _relations(connection)


def _lock_key(url: StoreUrl, purpose: str) -> int:
    """An advisory lock's key: per database already (the server's), so per schema and purpose here."""
    digest = hashlib.sha256(f"ecorules {purpose} {url.schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# -- the schema and its migrations ------------------------------------------------------------

_TABLES_V10 = f"""
CREATE TABLE IF NOT EXISTS runs (
    id bigserial PRIMARY KEY,
    started {_TEXT} NOT NULL,
    finished {_TEXT},
    status {_TEXT} NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    as_of {_TEXT} NOT NULL,
    source {_TEXT} NOT NULL,
    input_fingerprint {_TEXT},
    input_stat {_TEXT},
    policy_fingerprint {_TEXT} NOT NULL,
    policies {_TEXT} NOT NULL,
    ecorules_version {_TEXT} NOT NULL,
    rows_in bigint,
    rows_scored bigint,
    rows_rejected bigint,
    total_yuan numeric,
    summary {_TEXT},
    error {_TEXT},
    pid bigint,
    host {_TEXT},
    total_fen bigint,
    unit {_TEXT},
    CHECK (status <> 'done' OR (rows_in IS NOT NULL AND rows_in = rows_scored + rows_rejected))
);
CREATE INDEX IF NOT EXISTS runs_fingerprints ON runs (input_fingerprint, policy_fingerprint, as_of);
CREATE INDEX IF NOT EXISTS runs_stats ON runs (input_stat, policy_fingerprint, as_of);
CREATE TABLE IF NOT EXISTS finding_slots (
    run_id bigint NOT NULL,
    slot bigint NOT NULL,
    policy {_TEXT} NOT NULL,
    rule {_TEXT} NOT NULL,
    kind {_TEXT} NOT NULL,
    citation {_TEXT} NOT NULL,
    record_kind {_TEXT},
    unit {_TEXT},
    PRIMARY KEY (run_id, slot)
);
CREATE TABLE IF NOT EXISTS finding_chunks (run_id bigint NOT NULL, slot bigint NOT NULL, rows {_TEXT} NOT NULL,
                                           law_note {_TEXT});
CREATE INDEX IF NOT EXISTS finding_chunks_run ON finding_chunks (run_id);
CREATE TABLE IF NOT EXISTS district_totals (
    run_id bigint NOT NULL,
    district {_TEXT} NOT NULL,
    deduction_yuan numeric NOT NULL,
    cases bigint NOT NULL,
    deduction_fen bigint,
    unit {_TEXT},
    PRIMARY KEY (run_id, district)
);
CREATE TABLE IF NOT EXISTS sanction_slots (
    run_id bigint NOT NULL,
    slot bigint NOT NULL,
    policy {_TEXT} NOT NULL,
    list {_TEXT} NOT NULL,
    rule {_TEXT} NOT NULL,
    reason {_TEXT},
    citation {_TEXT},
    record_kind {_TEXT},
    PRIMARY KEY (run_id, slot)
);
CREATE TABLE IF NOT EXISTS sanction_chunks (run_id bigint NOT NULL, slot bigint NOT NULL, usccs {_TEXT} NOT NULL);
CREATE INDEX IF NOT EXISTS sanction_chunks_run ON sanction_chunks (run_id);
CREATE TABLE IF NOT EXISTS rejects (
    run_id bigint NOT NULL,
    source {_TEXT} NOT NULL,
    row bigint,
    "column" {_TEXT},
    value {_TEXT},
    reason {_TEXT} NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_run ON rejects (run_id);
CREATE TABLE IF NOT EXISTS assessed_chunks (
    seq bigserial PRIMARY KEY,
    run_id bigint NOT NULL,
    policy {_TEXT} NOT NULL,
    version {_TEXT} NOT NULL,
    rule {_TEXT} NOT NULL,
    kind {_TEXT} NOT NULL,
    rows {_TEXT} NOT NULL,
    unit {_TEXT}
);
CREATE INDEX IF NOT EXISTS assessed_chunks_run ON assessed_chunks (run_id);
CREATE TABLE IF NOT EXISTS list_rules (
    id bigserial PRIMARY KEY,
    list {_TEXT} NOT NULL,
    policy {_TEXT} NOT NULL,
    rule {_TEXT} NOT NULL,
    UNIQUE (list, policy, rule)
);
CREATE TABLE IF NOT EXISTS list_texts (
    id bigserial PRIMARY KEY,
    version {_TEXT} NOT NULL,
    reason {_TEXT} NOT NULL,
    citation {_TEXT} NOT NULL,
    UNIQUE (version, reason, citation)
);
CREATE TABLE IF NOT EXISTS list_state (
    id bigint PRIMARY KEY,
    rule_id bigint NOT NULL REFERENCES list_rules (id),
    uscc {_TEXT} NOT NULL,
    tag {_TEXT} NOT NULL,
    case_id {_TEXT},
    text_id bigint NOT NULL REFERENCES list_texts (id),
    started {_TEXT} NOT NULL,
    planned_end {_TEXT},
    ended {_TEXT},
    exit {_TEXT} CHECK (exit IS NULL OR exit IN ('expired', 'lifted', 'no_longer_justified', 'decision')),
    exit_reason {_TEXT},
    first_run bigint NOT NULL,
    last_run bigint NOT NULL,
    exit_run bigint,
    CHECK ((exit IS NULL) = (ended IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS list_state_open ON list_state (uscc, rule_id, tag) WHERE exit IS NULL;
CREATE INDEX IF NOT EXISTS list_state_key ON list_state (uscc, rule_id, tag);
CREATE INDEX IF NOT EXISTS list_state_ending ON list_state (planned_end) WHERE exit IS NULL AND planned_end IS NOT NULL;
CREATE TABLE IF NOT EXISTS lifts (
    run_id bigint NOT NULL,
    uscc {_TEXT} NOT NULL,
    list {_TEXT} NOT NULL,
    policy {_TEXT} NOT NULL,
    rule {_TEXT} NOT NULL,
    reason {_TEXT} NOT NULL,
    case_id {_TEXT},
    effective {_TEXT} NOT NULL
);
CREATE INDEX IF NOT EXISTS lifts_run ON lifts (run_id);
CREATE TABLE IF NOT EXISTS list_chunks (
    first_id bigint PRIMARY KEY,
    n bigint NOT NULL,
    run_id bigint NOT NULL,
    rule_id bigint NOT NULL REFERENCES list_rules (id),
    text_id bigint NOT NULL REFERENCES list_texts (id),
    started {_TEXT} NOT NULL,
    rows {_TEXT} NOT NULL
);
CREATE TABLE IF NOT EXISTS list_scopes (
    policy {_TEXT} NOT NULL,
    cases bigint NOT NULL,
    last_run bigint NOT NULL,
    PRIMARY KEY (policy, cases)
);
"""

# The views read the JSON chunks as SQLite's do (see sqlite.FINDINGS_VIEW and the others for
# what each element is). ``->>`` gives text in PostgreSQL, so numbers are cast; an element
# that is a plain text (a uscc) is ``#>> '{}'``; ``WITH ORDINALITY`` numbers elements from 1.
_IS_ARRAY = "json_typeof(e.value) = 'array'"
_PLAIN = "CASE WHEN json_typeof(e.value) = 'array' THEN e.value ->> 0 ELSE e.value #>> '{}' END"


def _yuan(integer: str, unit: str) -> str:
    return (f"CASE {unit} WHEN 'fen' THEN round(CAST({integer} AS numeric) / 100, 2) "
            f"ELSE CAST({integer} AS numeric) END")


def _fen(integer: str, unit: str) -> str:
    return f"CASE {unit} WHEN 'fen' THEN CAST({integer} AS bigint) ELSE CAST({integer} AS bigint) * 100 END"


def _element(name: str, layouts: bool) -> str:
    """A finding row's element ``name`` (``e.value``, of slot ``s``): in version 13's layout,
    or (``layouts``, version 14) in the slot's (sqlite.CASE_LAYOUT)."""
    old, new = V13_PLACES[name], CASE_PLACES[name]
    if not layouts or old == new:
        return f"(e.value ->> {old})"
    return f"(e.value ->> CASE WHEN s.layout IS NULL THEN {old} ELSE {new} END)"


def _coded(name: str, codes: dict[int, str], otherwise: str, layouts: bool) -> str:
    """Element ``name``: a text in version 13's layout, a code of ``codes`` in CASE_LAYOUT."""
    old, new = V13_PLACES[name], CASE_PLACES[name]
    if not layouts:
        return f"coalesce(e.value ->> {old}, '{otherwise}')"
    named = " ".join(f"WHEN '{code}' THEN '{text}'" for code, text in codes.items())
    return (f"CASE WHEN s.layout IS NULL THEN coalesce(e.value ->> {old}, '{otherwise}') "
            f"ELSE CASE e.value ->> {new} {named} ELSE '{otherwise}' END END")


def _findings_view(layouts: bool) -> str:
    def at(name):
        return _element(name, layouts)

    return f"""
    SELECT c.run_id AS run_id, e.value ->> 0 AS uscc, s.policy AS policy, s.rule AS rule, s.kind AS kind,
           {_yuan("e.value ->> 1", "s.unit")} AS amount_yuan, coalesce({at("payer")}, e.value ->> 0) AS payer,
           s.citation AS citation,
           {at("case_id")} AS case_id, {_coded("status", STATUS_CODES, "imposed", layouts)} AS status,
           nullif({at("superseded_by")}, '') AS superseded_by,
           nullif(CAST({at("assessed_in")} AS bigint), 0) AS assessed_in_run,
           coalesce(s.record_kind, CASE WHEN {at("case_id")} IS NULL THEN 'enterprise' ELSE 'case' END) AS record_kind,
           coalesce({at("case_id")}, e.value ->> 0) AS record_key,
           coalesce({at("law_note")}, c.law_note) AS law_note,
           CAST(e.value ->> 1 AS bigint) AS amount, coalesce(s.unit, 'yuan') AS unit,
           {_fen("e.value ->> 1", "s.unit")} AS amount_fen
    FROM finding_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_array_elements(CAST(c.rows AS json)) e"""


# version 14 reads the slots' layouts (sqlite.CASE_LAYOUT); earlier versions' migrations make
# the view they made, over the columns the slots had then
FINDINGS_VIEW = _findings_view(layouts=True)

SANCTIONS_VIEW = f"""
    SELECT c.run_id AS run_id, {_PLAIN} AS uscc,
           s.list AS list, s.rule AS rule, s.policy AS policy,
           CASE WHEN {_IS_ARRAY} THEN nullif(e.value ->> 1, '') END AS case_id,
           CASE WHEN {_IS_ARRAY} THEN e.value ->> 2 END AS start,
           CASE WHEN {_IS_ARRAY} THEN e.value ->> 3 END AS planned_end,
           coalesce(s.record_kind, CASE WHEN {_IS_ARRAY} AND nullif(e.value ->> 1, '') IS NOT NULL
                                        THEN 'case' ELSE 'enterprise' END) AS record_kind
    FROM sanction_chunks c JOIN sanction_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_array_elements(CAST(c.usccs AS json)) e"""

_ASSESSED_ROWS = f"""
    SELECT c.run_id AS run_id, e.value ->> 0 AS case_id, e.value ->> 1 AS uscc, c.policy AS policy,
           c.version AS version, c.rule AS rule, c.kind AS kind,
           {_yuan("e.value ->> 2", "c.unit")} AS amount_yuan,
           nullif(e.value ->> 3, '') AS decided, e.value ->> 4 AS reason,
           nullif(CAST(e.value ->> 5 AS bigint), 0) AS supersedes_run,
           {_fen("e.value ->> 2", "c.unit")} AS amount_fen,
           coalesce(c.unit, 'yuan') AS unit, nullif(e.value ->> 6, '') AS act_id
    FROM assessed_chunks c, json_array_elements(CAST(c.rows AS json)) e"""
# version 12: beside them, the imposed findings of the slots marked assessed (sqlite.ASSESSED_VIEW)
_POLICY_AT = "strpos(s.policy, '@') > 0"

def _finding_assessments(layouts: bool) -> str:
    def at(name):
        return _element(name, layouts)

    return f"""
    SELECT c.run_id AS run_id, {at("case_id")} AS case_id, e.value ->> 0 AS uscc,
           CASE WHEN {_POLICY_AT} THEN regexp_replace(s.policy, '@[^@]*$', '') ELSE s.policy END AS policy,
           CASE WHEN {_POLICY_AT} THEN substring(s.policy from '@([^@]*)$') ELSE '' END AS version,
           s.rule AS rule, s.kind AS kind,
           {_yuan("e.value ->> 1", "s.unit")} AS amount_yuan,
           nullif({at("decided")}, '') AS decided, {_coded("reason", REASON_CODES, "first", layouts)} AS reason,
           nullif(CAST({at("supersedes")} AS bigint), 0) AS supersedes_run,
           {_fen("e.value ->> 1", "s.unit")} AS amount_fen,
           coalesce(s.unit, 'yuan') AS unit, nullif({at("act_id")}, '') AS act_id
    FROM finding_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_array_elements(CAST(c.rows AS json)) e
    WHERE s.assessed = 1 AND {at("status")} IS NULL AND {at("case_id")} IS NOT NULL"""


ASSESSED_VIEW = _ASSESSED_ROWS + "\n    UNION ALL" + _finding_assessments(layouts=True)

# an entry of a chunk of list_chunks as the columns of list_state (e: its element, e.n its
# place from 1)
_CHUNK_ENTRY = f"""c.first_id + e.n - 1, c.rule_id, {_PLAIN},
                 CASE WHEN {_IS_ARRAY} THEN e.value ->> 1 ELSE '' END,
                 CASE WHEN {_IS_ARRAY} THEN nullif(e.value ->> 2, '') END, c.text_id,
                 CASE WHEN {_IS_ARRAY} THEN e.value ->> 3 ELSE c.started END,
                 CASE WHEN {_IS_ARRAY} THEN nullif(e.value ->> 4, '') END"""
_CHUNK_ELEMENTS = "list_chunks c, json_array_elements(CAST(c.rows AS json)) WITH ORDINALITY e(value, n)"

LIST_ENTRIES_VIEW = f"""
    SELECT s.id AS id, r.list || '|' || s.uscc || '|' || r.policy || '|' || r.rule || '|' || s.tag AS key,
           r.list AS list, s.uscc AS uscc, r.policy AS policy, t.version AS version, r.rule AS rule,
           s.case_id AS case_id, s.started AS started, s.planned_end AS planned_end, s.ended AS ended,
           s.exit AS exit, s.exit_reason AS exit_reason, t.reason AS reason, t.citation AS citation,
           s.first_run AS first_run,
           CASE WHEN s.exit IS NULL THEN greatest(s.last_run, coalesce(sc.last_run, 0)) ELSE s.last_run END AS last_run,
           s.exit_run AS exit_run
    FROM (SELECT id, rule_id, uscc, tag, case_id, text_id, started, planned_end, ended, exit, exit_reason,
                 first_run, last_run, exit_run FROM list_state
          UNION ALL
          SELECT {_CHUNK_ENTRY}, NULL, NULL, NULL, c.run_id, c.run_id, NULL
          FROM {_CHUNK_ELEMENTS}
          WHERE NOT EXISTS (SELECT 1 FROM list_state x WHERE x.id = c.first_id + e.n - 1)) s
         JOIN list_rules r ON r.id = s.rule_id JOIN list_texts t ON t.id = s.text_id
         LEFT JOIN list_scopes sc ON sc.policy = r.policy
                                 AND sc.cases = CASE WHEN s.case_id IS NULL THEN 0 ELSE 1 END"""

# version 13: what placed each case finding (sqlite.CASE_FACTORS_VIEW); a value is a JSON
# number or null
CASE_FACTORS_VIEW = """
    SELECT c.run_id AS run_id, e.value ->> 0 AS case_id, s.policy AS policy, s.rule AS rule, f.key AS name,
           CAST(f.value #>> '{}' AS bigint) AS value
    FROM factor_chunks c JOIN finding_slots s ON s.run_id = c.run_id AND s.slot = c.slot,
         json_array_elements(CAST(c.rows AS json)) e, json_each(e.value -> 1) f"""

_VIEWS_V10 = [f"CREATE OR REPLACE VIEW {name} AS{body}" for name, body in (
    ("findings", _findings_view(layouts=False)), ("sanctions", SANCTIONS_VIEW), ("assessed", _ASSESSED_ROWS),
    ("list_entries", LIST_ENTRIES_VIEW))]

# version -> its statements, each idempotent (IF NOT EXISTS, OR REPLACE), applied in order to a
# store of a lower version in one transaction. The first PostgreSQL store is SQLite's version 10;
# a later version adds its step here (and SQLite's in sqlite._migrate).
MIGRATIONS: dict[int, list[str]] = {
    10: [s.strip() for s in _TABLES_V10.split(";") if s.strip()] + _VIEWS_V10,
    11: [f"CREATE OR REPLACE VIEW findings AS{_findings_view(layouts=False)}"],  # a null payer is the uscc
    # assessments are the imposed findings of marked slots (sqlite._add_assessed_slots)
    12: ["ALTER TABLE finding_slots ADD COLUMN IF NOT EXISTS assessed bigint", "DROP VIEW IF EXISTS assessed",
         f"CREATE VIEW assessed AS{_ASSESSED_ROWS}\n    UNION ALL{_finding_assessments(layouts=False)}"],
    # what placed each case finding (engine/cases/_factors.py): earlier runs kept none
    13: [f"CREATE TABLE IF NOT EXISTS factor_chunks (run_id bigint NOT NULL, slot bigint NOT NULL, rows {_TEXT} NOT NULL)",
         "CREATE INDEX IF NOT EXISTS factor_chunks_run ON factor_chunks (run_id)",
         f"CREATE OR REPLACE VIEW case_factors AS{CASE_FACTORS_VIEW}"],
    # a case slot's rows in their own layout (sqlite.CASE_LAYOUT); earlier slots keep theirs
    14: ["ALTER TABLE finding_slots ADD COLUMN IF NOT EXISTS layout bigint",
         f"CREATE OR REPLACE VIEW findings AS{FINDINGS_VIEW}", "DROP VIEW IF EXISTS assessed",
         f"CREATE VIEW assessed AS{ASSESSED_VIEW}"],
}


def upgrade(connection: Connection) -> tuple[int | None, int]:
    """Make or bring the store's schema up to :data:`SCHEMA_VERSION`; returns (version before,
    version now). An existing schema holding other tables and no ``meta`` is someone else's
    data: refused, never added to."""
    psycopg = _psycopg()
    url = connection.url
    current = _version(connection)
    if current == SCHEMA_VERSION:  # nothing to do: no DDL, so a role that may only write rows runs
        return current, current
    connection.execute("BEGIN")
    try:
        connection.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(url, "upgrade"),))
        tables = _relations(connection)
        if tables and "meta" not in tables:
            shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
            raise StoreError(f"{url}: schema {url.schema!r} holds tables that are not an ecorules results store "
                             f"({shown}); give another ?schema=")
        if connection.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ?", (url.schema,)).fetchone() is None:
            connection.raw.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(url.schema)))
        connection.execute(f"CREATE TABLE IF NOT EXISTS meta (key {_TEXT} PRIMARY KEY, value {_TEXT} NOT NULL)")
        before = _version(connection)
        if before is not None and before > SCHEMA_VERSION:
            raise StoreError(f"{url}: results schema version {before}, this ecorules writes {SCHEMA_VERSION}")
        for version in sorted(MIGRATIONS):
            if before is None or version > before:
                for statement in MIGRATIONS[version]:
                    connection.execute(statement)
                connection.execute("DELETE FROM meta WHERE key = 'schema_version'")
                connection.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),))
                if before is not None:
                    log.info("%s: results schema upgraded to version %s", url, version)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return before, SCHEMA_VERSION


# -- the run lock -------------------------------------------------------------------------------

@contextlib.contextmanager
def run_lock(target: str | StoreUrl) -> Iterator[None]:
    """Held for the whole of a run: one run at a time per store. A session-level advisory lock
    on a connection of its own: the server releases it when that session ends, so a killed run
    leaves no lock behind. A second run refuses at once, as with SQLite (a nightly job that
    found its store busy is run again rather than queued behind a run of unknown length)."""
    url = target if isinstance(target, StoreUrl) else StoreUrl.parse(target)
    connection = _open(url)
    try:
        held = connection.execute("SELECT pg_try_advisory_lock(?)", (_lock_key(url, "run"),)).fetchone()[0]
        if not held:
            raise StoreError(f"{url}: another run is writing to this store")
        yield
    finally:
        connection.close()  # (ends the session, and the lock with it)


# -- the writer ---------------------------------------------------------------------------------

# Tables loaded with binary COPY, with the type of each column the writer sends.
COPY_TYPES = {
    "finding_chunks": {"run_id": "int8", "slot": "int8", "rows": "text", "law_note": "text"},
    "factor_chunks": {"run_id": "int8", "slot": "int8", "rows": "text"},
    "sanction_chunks": {"run_id": "int8", "slot": "int8", "usccs": "text"},
    "assessed_chunks": {"run_id": "int8", "policy": "text", "version": "text", "rule": "text", "kind": "text",
                        "rows": "text", "unit": "text"},
    "rejects": {"run_id": "int8", "source": "text", "row": "int8", "column": "text", "value": "text", "reason": "text"},
    "lifts": {"run_id": "int8", "uscc": "text", "list": "text", "policy": "text", "rule": "text", "reason": "text",
              "case_id": "text", "effective": "text"},
    "finding_slots": {"run_id": "int8", "slot": "int8", "policy": "text", "rule": "text", "kind": "text",
                      "citation": "text", "record_kind": "text", "unit": "text", "assessed": "int8", "layout": "int8"},
    "sanction_slots": {"run_id": "int8", "slot": "int8", "policy": "text", "list": "text", "rule": "text",
                       "reason": "text", "citation": "text", "record_kind": "text"},
    "list_chunks": {"first_id": "int8", "n": "int8", "run_id": "int8", "rule_id": "int8", "text_id": "int8",
                    "started": "text", "rows": "text"},
}
# (a value ``CAST(? AS TEXT)``: text given as its UTF-8 bytes, sqlite.INSERT_FINDINGS_UTF8)
_INSERT = re.compile(r"^\s*INSERT INTO (\w+) \(([^)]*)\) VALUES \((?:(?:\?|CAST\(\? AS TEXT\)), )*(?:\?|CAST\(\? AS TEXT\))\)\s*$")
_COPY_BUFFER = 4 << 20  # characters held before a COPY: sent while the next batches are read and scored


@functools.lru_cache(maxsize=64)
def _copy_target(statement: str) -> tuple[str, tuple[str, ...]] | None:
    match = _INSERT.match(statement)
    if match is None or match.group(1) not in COPY_TYPES:
        return None
    columns = tuple(c.strip().strip('"') for c in match.group(2).split(","))
    return (match.group(1), columns) if all(c in COPY_TYPES[match.group(1)] for c in columns) else None


def copy_rows(connection: Connection, table: str, columns: tuple[str, ...], rows) -> None:
    """``rows`` into ``table`` by one binary COPY (identifiers quoted by the driver)."""
    sql = _psycopg().sql
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with connection.raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([COPY_TYPES[table][c] for c in columns])
        for row in rows:
            copy.write_row(row)


class RunWriter(sqlite.RunWriter):
    """SQLite's writer (a thread of its own, one transaction) whose inserts into the chunk and
    slot tables are held and sent by binary COPY, a table at a time, before any other
    statement (which may read them) and before the commit."""

    _stages_chunks = False  # one transaction: PostgreSQL has no WAL checkpoint in its COMMIT to spread

    @property
    def _database_errors(self) -> tuple[type[BaseException], ...]:
        return (_psycopg().Error,)

    def _open(self):
        self._held: dict[tuple[str, tuple[str, ...]], list] = {}
        self._held_size = 0
        connection = connect(self.path)
        connection.execute("BEGIN")
        return connection

    def _do(self, connection, action: str, sql: str | None, params) -> None:
        if action in ("one", "many"):
            target = _copy_target(sql)
            if target is not None:
                rows = [params] if action == "one" else params
                if "CAST(? AS TEXT)" in sql:  # text given as UTF-8 bytes: COPY's text dumper takes a str
                    rows = [tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in row) for row in rows]
                self._held.setdefault(target, []).extend(rows)
                self._held_size += sum(len(v) for row in rows for v in row if isinstance(v, str))
                if self._held_size >= _COPY_BUFFER:
                    self._send(connection)
                return
        if action != "rollback":
            self._send(connection)
        super()._do(connection, action, sql, params)

    def _send(self, connection) -> None:
        held, self._held, self._held_size = self._held, {}, 0
        for (table, columns), rows in held.items():
            copy_rows(connection, table, columns, rows)


# -- what is not the same SQL in SQLite (the dialect: see sqlite.py's of the same names) --------

IS_DISTINCT = "IS DISTINCT FROM"
TEMP = "pg_temp"
# a reader's statements in one snapshot: a run committing between two of them would show the
# old run's rows beside the new run's status (store.snapshot)
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
INSERTION_ORDER = "seq"  # of assessed_chunks
# a stored chunk's JSON text as the memory of assessments reads it (engine/cases/_remembered.py): text (encoded there)
TEXT_BYTES = "{}"


def policy_id(column: str) -> str:
    """The policy id of ``id@version`` text."""
    return f"CASE WHEN position('@' in {column}) > 0 THEN substr({column}, 1, position('@' in {column}) - 1) ELSE {column} END"


def policy_version(column: str) -> str:
    return f"CASE WHEN position('@' in {column}) > 0 THEN substr({column}, position('@' in {column}) + 1) ELSE '' END"


def insert_missing(table: str, columns: str, select: str) -> str:
    """Insert the rows of ``select`` that ``table`` lacks (by all of ``columns``, a unique key)."""
    names = [c.strip() for c in columns.split(",")]
    match = " AND ".join(f"t.{c} = n.{c}" for c in names)
    return (f"INSERT INTO {table} ({columns}) SELECT DISTINCT * FROM ({select}) n ({columns}) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})")


def replace_rows(db: Connection, table: str, columns: tuple[str, ...], key: tuple[str, ...], rows: list[tuple]) -> None:
    """Rows of ``table`` replaced by key (SQLite's INSERT OR REPLACE): the old deleted, the new
    inserted, in the caller's transaction. The rows go by one COPY into a temporary table,
    then one DELETE and one INSERT ... SELECT: an INSERT a row (a statement and a round trip
    each) was most of the list state's second run at 800 K entries (bench/lists.py)."""
    if not rows:
        return
    begin_replacing(db, table, columns)
    add_replacing(db, table, columns, rows)
    finish_replacing(db, table, columns, key)


def _staged(table: str):
    return _psycopg().sql.Identifier(f"ecorules_replacing_{table}")


def begin_replacing(db: Connection, table: str, columns: tuple[str, ...]) -> None:
    """Start gathering rows that will replace rows of ``table`` (:func:`finish_replacing`):
    a run's list state rows all at once, not a DELETE and an INSERT per partition."""
    sql = _psycopg().sql
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    with db.raw.cursor() as cursor:
        # (a table left by a statement that failed outside a transaction: none inside one)
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(_staged(table)))
        cursor.execute(sql.SQL("CREATE TEMPORARY TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
            _staged(table), names, sql.Identifier(table)))


def add_replacing(db: Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    sql = _psycopg().sql
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    with db.raw.cursor() as cursor, cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(_staged(table), names)) as copy:
        for row in rows:
            copy.write_row(row)


def finish_replacing(db: Connection, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> None:
    """The gathered rows replace those of ``table`` with their key (a key gathered twice
    fails on the table's primary key)."""
    sql = _psycopg().sql
    staged, target = _staged(table), sql.Identifier(table)
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    match = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in key)
    with db.raw.cursor() as cursor:
        cursor.execute(sql.SQL("DELETE FROM {} t USING {} s WHERE {}").format(target, staged, match))
        cursor.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, names, names, staged))
        cursor.execute(sql.SQL("DROP TABLE {}").format(staged))


# list entry :id as a row of list_state when it is still only a chunk's element
ENTRY_AS_ROW = f"""
    INSERT INTO list_state (id, rule_id, uscc, tag, case_id, text_id, started, planned_end, first_run, last_run)
    SELECT {_CHUNK_ENTRY}, c.run_id, c.run_id
    FROM {_CHUNK_ELEMENTS}
    WHERE c.first_id = (SELECT max(first_id) FROM list_chunks WHERE first_id <= :id) AND c.first_id + e.n - 1 = :id
          AND NOT EXISTS (SELECT 1 FROM list_state WHERE id = :id)"""


def streamed(db: Connection, statement: str, params=(), size: int = 64) -> Iterator[tuple]:
    """The rows of a query ``size`` at a time from a server-side cursor (a client-side one
    holds the whole result: every chunk of the memory of earlier assessments at once, about
    the size of their runs' findings). In a transaction of its own unless one is open (a
    named cursor lives in one)."""
    name = f"ecorules_streamed_{next(_CURSOR_NUMBERS)}"
    transaction = contextlib.nullcontext() if db.in_transaction else db.raw.transaction()
    with transaction, db.raw.cursor(name=name) as cursor:
        cursor.itersize = size
        cursor.execute(_placeholders(statement) if params else statement, tuple(params) or None)
        yield from cursor


def has_relation(connection: Connection, name: str) -> bool:
    return _has_table(connection, name)


def declared_columns(connection: Connection, table: str) -> list[tuple[str, str]]:
    """A table's or view's columns and their types as readers take them (``INTEGER``,
    ``TEXT``, or :data:`sqlite.MONEY` for an exact amount in yuan)."""
    rows = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", (connection.url.schema, table)).fetchall()
    types = {"bigint": "INTEGER", "integer": "INTEGER", "smallint": "INTEGER", "numeric": sqlite.MONEY}
    return [(name, types.get(kind, "TEXT")) for name, kind in rows]


def run_unit(connection: Connection, run_id: int) -> str:
    row = connection.execute("SELECT unit FROM runs WHERE id = ?", (run_id,)).fetchone()
    return (row and row[0]) or "yuan"


def has_units(connection: Connection) -> bool:
    return True  # every PostgreSQL store is version 10


# -- a chunk's text a piece at a time (the list state: engine/_chunk_reader.py) --------------

_ROW_KEYS = {"sanction_chunks": "ctid", "list_chunks": "first_id"}  # sanction_chunks has no key: its rows' place


def sanction_chunk_rows(db: Connection, run_id: int) -> list[tuple[int, str]]:
    """The slot and row (for :func:`text_pieces`: its ctid, which holds within the run's
    transaction, the only one that writes the run's chunks) of each sanction chunk of run
    ``run_id``, in the order of the table."""
    return db.execute("SELECT slot, CAST(ctid AS text) FROM sanction_chunks WHERE run_id = ? ORDER BY ctid",
                      (run_id,)).fetchall()


def text_pieces(db: Connection, table: str, column: str, row: int | str, size: int) -> Iterator[str]:
    """Text ``column`` of row ``row`` of ``table`` (``list_chunks``' first_id, or a ctid of
    :func:`sanction_chunk_rows`), from pieces of ``size`` bytes of its UTF-8, fetched one at a
    time from a cursor (a client-side one holds a whole result: a chunk's text of megabytes
    would come whole). Inside a transaction (a cursor's lifetime; the ctid's too).

    The server reads the stored text once and cuts that one copy into pieces: a ``substr`` of
    the stored text per piece costs about a whole reading each (in a database of several
    bytes per character, ``text_substring`` decompresses, or with ``STORAGE EXTERNAL`` fetches,
    from the text's start and counts characters from there, whatever the storage), so a chunk
    of 5.5 MB read in 8 pieces took ~15 times one reading (bench/lists.py: run 2 of 2 M
    entries 1.4 times the older code's, which read chunks whole). Pieces of ``bytea``, whose
    ``substr`` is a slice, decoded here as SQLite's blob pieces are; ``convert_to`` gives
    UTF-8 whatever the server's encoding."""
    key = _ROW_KEYS[table]
    decoder = codecs.getincrementaldecoder("utf-8")()
    name = f"ecorules_text_pieces_{next(_CURSOR_NUMBERS)}"  # (a generator left unfinished keeps its own open)
    # OFFSET 0: the subquery stays one row, its copy made once, rather than an expression
    # the planner folds into every piece's; greatest(): an empty text is one empty piece,
    # so that no piece at all means no row
    statement = (f"SELECT p.at, substr(t.text, p.at, CAST(%s AS integer)) FROM (SELECT convert_to({column}, 'UTF8') AS text "
                 f"FROM {table} WHERE {key} = CAST(%s AS {'tid' if key == 'ctid' else 'bigint'}) OFFSET 0) t, "
                 "generate_series(1, greatest(octet_length(t.text), 1), CAST(%s AS integer)) p(at)")
    with db.raw.cursor(name=name, binary=True) as cursor:
        cursor.execute(statement, (size, str(row) if key == "ctid" else row, size))
        expected = 1
        while (fetched := cursor.fetchone()) is not None:
            at, piece = fetched
            if at != expected:  # (a plan that reordered them: never seen, but the text would be wrong)
                raise StoreError(f"{table} row {row}: piece at byte {at} came where {expected} was due")
            expected += size
            yield decoder.decode(piece)
    if expected == 1:
        raise StoreError(f"no row {row} in {table}")
    yield decoder.decode(b"", final=True)


_CURSOR_NUMBERS = itertools.count()


__all__ = ["COPY_TYPES", "MIGRATIONS", "RESULT_TABLES", "Connection", "RunWriter", "StoreUrl", "connect", "copy_rows",
           "is_url", "run_lock", "upgrade"]
