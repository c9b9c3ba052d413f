"""The registry as the diff reads it: the nightly run's reader, plus the columns a reader needs.

``engine/_sources.py`` streams CSV (UTF-8, GBK or UTF-16), Parquet, Excel, SQLite or a folder of them, maps
Chinese headers to fact names, and keeps only the columns the policies need. The diff needs
those of *both* policy sets, and also the enterprise's name and district to show people, when
the registry has them: a registry without a name column is still a registry.

Rows the reader cannot even read (a malformed CSV line, undecodable bytes) never reach the
scorers; :class:`RegistryStream` counts them, so that rows in = compared + rejected + unreadable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from ecorules.rules import Fact

from .._sources import ColumnResolver, MissingColumnError, Registry, SourceError
from .._unset_rollups import unset_rollups, with_unset
from ..sources._pg_url import as_location

log = logging.getLogger("ecorules.diff")

SHOWN = ("name", "district")  # read when present, for people; never required by the diff


class RegistryStream:
    """Iterate to get Arrow tables of the needed columns; ``unreadable`` counts dropped rows."""

    def __init__(self, path: str | Path, facts: Mapping[str, Fact], needed: Mapping[str, list[str]], **reading: Any):
        self.path = as_location(path)
        self.reading = reading  # encoding, table, sheet, recurse: as Registry takes them
        self.unreadable = 0
        self.unset = unset_rollups(facts, needed)  # no case table in a diff: counted over nothing
        needed = {name: by for name, by in needed.items() if name not in self.unset}
        wanted = dict(needed)
        for name in SHOWN:
            if name in facts:
                wanted.setdefault(name, [])
        self.registry = self._open(facts, wanted, needed)

    def _open(self, facts, wanted, needed) -> Registry:
        """Open with the shown columns; if the file lacks one the policies do not need, without."""
        while True:
            try:
                registry = Registry(self.path, ColumnResolver(facts, wanted), **self.reading)  # resolves the headers
                for warning in registry.warnings:
                    log.warning("%s", warning)
                return registry
            except MissingColumnError as error:
                if error.fact in needed or error.fact not in wanted:
                    raise
                del wanted[error.fact]

    def __iter__(self) -> Iterator[pa.Table]:
        for batch in self.registry.batches():
            self.unreadable += batch.rows_in - batch.table.num_rows
            yield with_unset(batch.table, self.unset)


def registry_batches(path: str | Path, facts: Mapping[str, Fact], needed: Mapping[str, list[str]],
                     **reading: Any) -> RegistryStream:
    """The registry at ``path`` with the ``needed`` columns (fact -> policies needing it),
    read with ``reading`` (encoding, table, sheet, recurse) as ``ecorules run`` reads it."""
    return RegistryStream(path, facts, needed, **reading)


__all__ = ["RegistryStream", "SourceError", "registry_batches"]
