"""``ecorules run --engine spark --out-format hive --out-database DB``: a run's results also as
tables of Spark's catalogue (Hive's metastore on a cluster), one partition per run.

    DB.findings        uscc, policy, rule, kind, amount_yuan, payer, citation, case_id, status,
                       superseded_by, assessed_in_run, record_kind, record_key, law_note, run_id
    DB.list_entries    uscc, list, rule, policy, case_id, start, planned_end, record_kind, run_id
    DB.rejects         source, row, column, value, reason, run_id
    DB.district_totals district, deduction_yuan, cases, run_id

The rows are the store's, read back once the store has committed the run (the store's views of
``ecorules export``): the registry's, the case table's and the other kinds' findings alike, so
the tables hold what the store holds and nothing a failed run wrote. Amounts are
decimal(22, 2) yuan whatever the policies' unit: a table outlives a policy set, and its schema
must not change from one night to the next. A run's partition is dropped before it is
written, so a run written again (a reuse, a retry after a failed write) replaces it, and a run
the store replaces (``--force``) or deletes leaves no partition behind.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pyarrow as pa

from . import _store_rows

log = logging.getLogger("ecorules.distributed")

_SPARK = {"text": "string", "int": "bigint", "money": "decimal(22,2)", "date": "date"}
# table of the catalogue -> (the store's view, its columns and how each is typed)
TABLES = {
    "findings": ("findings", {"uscc": "text", "policy": "text", "rule": "text", "kind": "text", "amount_yuan": "money",
                              "payer": "text", "citation": "text", "case_id": "text", "status": "text",
                              "superseded_by": "text", "assessed_in_run": "int", "record_kind": "text",
                              "record_key": "text", "law_note": "text"}),
    "list_entries": ("sanctions", {"uscc": "text", "list": "text", "rule": "text", "policy": "text",
                                   "case_id": "text", "start": "date", "planned_end": "date", "record_kind": "text"}),
    "rejects": ("rejects", {"source": "text", "row": "int", "column": "text", "value": "text", "reason": "text"}),
    "district_totals": ("district_totals", {"district": "text", "deduction_yuan": "money", "cases": "int"}),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class HiveOutError(ValueError):
    """A database name Spark cannot take, or a table of that name that is not ours."""


def database_name(text: str) -> str:
    """``--out-database DB`` (or ``hive:DB``): a plain identifier, checked before a run starts
    (it is written into SQL statements, so it must be one)."""
    name = text[len("hive:"):] if text.startswith("hive:") else text
    if not _NAME.fullmatch(name):
        raise HiveOutError(f"--out-database {text!r}: a database of Spark's catalogue is a plain name "
                           "(letters, digits, _)")
    return name


@dataclass(frozen=True)
class HiveOut:
    spark: object  # the run's SparkSession
    database: str

    def table(self, name: str) -> str:
        return f"`{self.database}`.`{name}`"

    def ensure_tables(self) -> None:
        """The database and its four tables, made if missing; a table there already must have
        our columns (else a run would write rows under another table's names)."""
        if (self.spark.conf.get("spark.sql.catalogImplementation", None) or "in-memory") != "hive":
            # a local session without a metastore: the tables' names die with the process (their
            # files stay in the warehouse dir); said, so that nobody looks for them tomorrow
            log.warning("--out-format hive: this Spark session's catalogue is in memory (no Hive metastore: "
                        "spark.sql.catalogImplementation is not hive), so the tables of %s last only as long "
                        "as the session; their files are under %s", self.database,
                        self.spark.conf.get("spark.sql.warehouse.dir", None))
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        for name, (_view, columns) in TABLES.items():
            ddl = ", ".join(f"`{c}` {_SPARK[k]}" for c, k in columns.items())
            self.spark.sql(f"CREATE TABLE IF NOT EXISTS {self.table(name)} ({ddl}, `run_id` bigint) "
                           "USING parquet PARTITIONED BY (`run_id`)")
            have = [(f.name, f.dataType.simpleString()) for f in self.spark.table(f"{self.database}.{name}").schema]
            want = [*((c, _SPARK[k]) for c, k in columns.items()), ("run_id", "bigint")]
            if have != want:
                raise HiveOutError(f"{self.database}.{name} has columns {have}, not those ecorules writes ({want}): "
                                   "give another --out-database")

    def drop(self, run_id: int) -> None:
        """The run's partition of every table gone (data files too: the tables are managed)."""
        for name in TABLES:
            if self.spark.catalog.tableExists(f"{self.database}.{name}"):
                self.spark.sql(f"ALTER TABLE {self.table(name)} DROP IF EXISTS PARTITION (`run_id` = {int(run_id)})")

    def write_run(self, target, run_id: int) -> dict[str, int]:
        """The run's rows of the store at ``target`` as the run's partitions; the rows written
        per table. A failure leaves no partition of the run (a reader would see part of it)."""
        self.ensure_tables()
        self.drop(run_id)
        written = {}
        connection = _store_rows.connect(target)
        try:
            for name, (view, columns) in TABLES.items():
                written[name] = self._write_table(connection, name, view, columns, run_id)
        except BaseException:
            self.drop(run_id)
            raise
        finally:
            connection.close()
        log.info("results also as tables of Spark's catalogue in %s (run_id=%s): %s", self.database, run_id,
                 ", ".join(f"{n} {k:,}" for n, k in written.items()))
        return written

    def _write_table(self, connection, name: str, view: str, columns: dict[str, str], run_id: int) -> int:
        rows = 0
        for table in _store_rows.run_rows(connection, view, columns, run_id):
            frame = _frame(self.spark, table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.int64())))
            frame.write.insertInto(f"{self.database}.{name}")  # appended to the partition dropped before
            rows += table.num_rows
        return rows


def _frame(spark, table: pa.Table):
    """An Arrow table as a Spark frame: directly on pyspark >= 4, through pandas on 3.5 (the
    Arrow path either way: ``spark.sql.execution.arrow.pyspark.enabled``)."""
    from pyspark.sql.types import _parse_datatype_string

    ddl = ", ".join(f"`{f.name}` {_ddl(f.type)}" for f in table.schema)
    try:
        return spark.createDataFrame(table, schema=_parse_datatype_string(ddl))
    except TypeError:  # pyspark 3.5 takes pandas, not Arrow
        return spark.createDataFrame(table.to_pandas(types_mapper=None), schema=ddl)


def _ddl(kind: pa.DataType) -> str:
    return next(_SPARK[name] for name, arrow in _store_rows.ARROW.items() if arrow == kind)


__all__ = ["TABLES", "HiveOut", "HiveOutError", "database_name"]
