"""``ecorules run --engine spark --cases hive:DB.TABLE``: a case table that is a table of Spark's
catalogue, read by Spark's executors.

Its needed columns (found by the facts' headers, labels and aliases as a file's are; a missing
one named before the run starts) are read where the table lies and numbered as a registry
table's rows are (spark.py's ``_numbered``: each file of the table and the 1-based row in it,
or ``hive:NAME`` and the row's place in Spark's reading order for a table without files).
``ecorules run`` judges them on the executors (``_spark_cases.py``); :func:`read_catalogue_cases`
gives the whole table to a driver that judges it itself, as a local run does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._sources import ColumnResolver
from ..cases._stage import CaseStage
from ..cases._table import CaseTable
from ._partition import ROW, SOURCE

CATALOGUE = "hive:"


def catalogue_cases(cases) -> str | None:
    """The table a ``hive:DB.TABLE`` case table names, or None for a path or URL."""
    text = str(cases)
    return text[len(CATALOGUE):] if text.startswith(CATALOGUE) else None


def read_catalogue_cases(spark, name: str, plan, aliases=None) -> CaseTable:
    """The needed columns of every row of the catalogue table ``name``, in the order of its
    files and rows, as ``engine/cases/_table.py``'s ``read_cases`` gives a file's."""
    from pyspark.sql import functions as F

    from .spark import _numbered

    df = spark.table(name)
    headers = [c for c in df.columns if c not in (SOURCE, ROW)]
    resolver = ColumnResolver(plan.facts, plan.needed(), aliases, optional=plan.optional_columns)
    found = resolver.resolve(f"{CATALOGUE}{name}", headers)  # raises naming a missing fact
    picked = _numbered(df.select(*[F.col(f"`{headers[i]}`") for i in found.values()]), name)
    ordered = picked.orderBy(SOURCE, ROW)
    arrow = ordered.toArrow() if hasattr(ordered, "toArrow") else ordered._collect_as_arrow()  # pyspark 4 | 3.5
    if not isinstance(arrow, pa.Table):
        arrow = pa.Table.from_batches(arrow, schema=arrow[0].schema) if arrow else None
    if arrow is None:  # an empty table on pyspark 3.5: no batches at all
        arrow = pa.table({**{fact: pa.array([], pa.string()) for fact in found}, SOURCE: pa.array([], pa.string()),
                          ROW: pa.array([], pa.int64())})
    columns = {fact: _plain(arrow[headers[i]] if headers[i] in arrow.column_names else arrow[fact])
               for fact, i in found.items()}
    n = arrow.num_rows
    for fact in plan.optional_columns:  # a column the table may leave out: all empty
        columns.setdefault(fact, pa.nulls(n, pa.string()))
    table = pa.table({fact: columns[fact] for fact in plan.case_columns})
    encoded = pc.dictionary_encode(arrow[SOURCE].combine_chunks())
    sources = encoded.dictionary.to_pylist()  # in first-seen order: the rows are in source order
    return CaseTable(table.combine_chunks(), sources or [f"{CATALOGUE}{name}"],
                     np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int32),
                     np.asarray(arrow[ROW].to_numpy(), np.int64), {fact: headers[i] for fact, i in found.items()}, n,
                     described=[{"source": f"{CATALOGUE}{name}", "format": "table of Spark's catalogue"}])


def _plain(column: pa.ChunkedArray) -> pa.Array:
    """Spark's Arrow column as a file's reader gives it: large strings as strings."""
    column = column.combine_chunks()
    if pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    return column


class CatalogueCaseStage(CaseStage):
    """The case stage of a ``hive:DB.TABLE`` case table: no files to list; read and
    fingerprinted by Spark (``spark`` makes the run's session when first needed)."""

    def __init__(self, plan, name: str, spark, **options):
        self.name, self._spark_of = name, spark
        super().__init__(plan, f"{CATALOGUE}{name}", **options)

    def _listed(self):
        return [], []

    def check_columns(self) -> None:
        """Raises MissingColumnError, naming the fact, where the table lacks a needed column."""
        headers = [c for c in self._spark_of().table(self.name).columns if c not in (SOURCE, ROW)]
        ColumnResolver(self.plan.facts, self.plan.needed(), self.aliases,
                       optional=self.plan.optional_columns).resolve(f"{CATALOGUE}{self.name}", headers)

    def read(self) -> CaseTable:
        return read_catalogue_cases(self._spark_of(), self.name, self.plan, self.aliases)

    def fingerprint(self) -> str:
        from .spark import table_fingerprint

        return table_fingerprint(self._spark_of(), self.name)

    def stat_fingerprint(self) -> str:
        from .spark import table_stat

        return table_stat(self._spark_of(), self.name)


__all__ = ["CatalogueCaseStage", "catalogue_cases", "read_catalogue_cases"]
