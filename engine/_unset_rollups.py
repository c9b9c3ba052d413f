"""Roll-ups over records a run is not given: unset, where the catalogue allows it; and the
columns a registry may leave out (``may_be_absent``), empty where it does.

A roll-up (a count over an enterprise's cases) is computed from the child records. A run
or a diff over the registry alone has none to count: a roll-up declared ``optional: true``
is then an empty column (rules read it through is_set/value_or); one that is not optional
cannot be scored without its records, which is said before anything is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
from ecorules.rules import EcorulesError, Fact


class RollupWithoutRecordsError(EcorulesError):
    """A rule reads a roll-up over records the run is not given."""


def unset_rollups(facts: Mapping[str, Fact], needed: Mapping[str, Iterable[str]]) -> list[str]:
    """The roll-ups among the ``needed`` facts (fact -> policies needing it): not read from
    the registry, but left empty; raises for one that may not be empty."""
    names = [name for name in needed if getattr(facts.get(name), "rollup", None) is not None]
    for name in names:
        fact = facts[name]
        if not fact.optional:
            raise RollupWithoutRecordsError(
                f"{name!r} ({fact.label or name}) is counted over the {fact.rollup.over} records, needed by "
                f"{', '.join(dict.fromkeys(needed[name]))}: give them (ecorules run --cases), or declare the roll-up "
                "'optional: true' so that it is unset without them")
    return names


def with_absent(table: pa.Table, names: Iterable[str]) -> pa.Table:
    """``table`` with an empty (text) column for each of ``names`` it lacks: the facts a
    registry may leave out (``may_be_absent``), which every record then has empty, as a
    single record without the field has (rules/_records.coerce_record)."""
    for name in names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table


def may_be_absent(facts: Mapping[str, Fact], names: Iterable[str]) -> list[str]:
    """Of ``names``, the facts a registry may leave out."""
    return [name for name in names if getattr(facts.get(name), "may_be_absent", False)]


def with_unset(table: pa.Table, names: Iterable[str]) -> pa.Table:
    """``table`` with an empty column for each of ``names``."""
    for name in names:
        table = table.append_column(name, pa.nulls(table.num_rows, pa.int64()))
    return table


__all__ = ["RollupWithoutRecordsError", "may_be_absent", "unset_rollups", "with_absent", "with_unset"]
