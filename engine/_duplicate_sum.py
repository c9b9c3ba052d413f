"""``ecorules run --duplicates sum``: the rows of one key are parts of one enterprise.

A registry put together from several offices' lists may carry an enterprise once per office,
each row with the cases that office found. Summing them is right only for counts, so:

- every row is checked on its own first (as the scorer would); one bad row rejects all the
  rows of its key, the others naming it: a part missing would lower the sum silently;
- the whole-number facts (``integer``: the registry's are all counts, 个 and 例) are added,
  and the sum is held to the fact's ``min``/``max`` like any value;
- every other fact the policies read (district, booleans, enums, text, dates, decimals)
  must be the same on every row: two rows saying 金水区 and 二七区, or industrial true and
  false, are not parts of one thing to add up. All the rows of the key are then rejects
  saying which fact differs and how, and nothing is guessed.

The merged enterprise is scored once, as the row of its first part; its other rows count as
scored with it (``rows in = rows scored + rows rejected`` still holds row by row).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import attrs
import numpy as np
import pyarrow as pa
from ecorules.rules import Fact, Kind, RecordError
from ecorules.rules._records import coerce

from ._sources import Batch, Reject


@attrs.frozen
class _Part:
    source: str
    row: int
    values: dict  # column -> the value the batch held
    headers: Mapping[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name, name)


def _where(parts: list[_Part]) -> str:
    """"rows 2, 5 of registry.csv", or each row with its file when they are in several."""
    sources = dict.fromkeys(part.source for part in parts)
    if len(sources) == 1:
        return f"rows {', '.join(str(part.row) for part in parts)} of {parts[0].source}"
    return ", ".join(f"row {part.row} of {part.source}" for part in parts)


def _shown(value) -> str:
    return "" if value is None else str(value)


class Summing:
    """The rows of repeated keys, kept aside batch by batch, merged at the end."""

    def __init__(self, key, facts: Mapping[str, Fact]):
        self.key, self.facts = key, facts  # key: the RecordKey of engine/_duplicates.py
        self.groups: dict[str, list[_Part]] = {}  # key -> its rows, in file order

    def keep(self, key: str, batch: Batch, row: int) -> None:
        values = {name: batch.table[name][row].as_py() for name in batch.table.column_names}
        self.groups.setdefault(key, []).append(_Part(batch.source, int(batch.rows[row]), values, batch.headers))

    def finish(self) -> tuple[list[Batch], Counter]:
        """Batches of the merged enterprises (with the rows rejected instead as their rejects),
        one per file, so that each file's rows are counted under it; and, per file, the rows
        merged into another (scored with it)."""
        if not self.groups:
            return [], Counter()
        by_source: dict[str, tuple[list, list, list]] = {}  # file -> merged records, their first parts, rejects
        merged_away: Counter = Counter()
        for key, parts in self.groups.items():
            merged, problems = self._merge(key, parts)
            if problems:
                for reject in problems:
                    by_source.setdefault(reject.source, ([], [], []))[2].append(reject)
                continue
            records, firsts, _ = by_source.setdefault(parts[0].source, ([], [], []))
            records.append(merged)
            firsts.append(parts[0])
            merged_away.update(part.source for part in parts[1:])
        names = list(next(iter(self.groups.values()))[0].values)
        batches = []
        for source, (records, firsts, rejects) in by_source.items():
            if records:
                table = pa.table({name: pa.array([record[name] for record in records]) for name in names})
            else:
                table = pa.table({name: pa.array([], pa.string()) for name in names})
            headers = (firsts[0] if firsts else self._part_of(source)).headers
            rows = np.array([part.row for part in firsts], np.int64)
            batches.append(Batch(table, source, rows, headers, rejects, len(records) + len(rejects)))
        return batches, merged_away

    def _part_of(self, source: str) -> _Part:
        return next(part for parts in self.groups.values() for part in parts if part.source == source)

    def _merge(self, key: str, parts: list[_Part]) -> tuple[dict | None, list[Reject]]:
        merged = {}
        name_of_key, shown = self.key.name, self.key.shown(key)
        for name in parts[0].values:
            fact = self.facts.get(name)
            if fact is None or name in self.key.names:
                merged[name] = parts[0].values[name]
                continue
            checked = []
            for part in parts:
                try:
                    checked.append(coerce(fact, part.values[name]))
                except RecordError as error:
                    return None, self._all_rejected(key, parts, part, name, error.message)
            if fact.type.kind is Kind.INTEGER:
                present = [value for value in checked if value is not None]
                if present and len(present) != len(checked):
                    return None, self._disagree(key, parts, name, checked, "one row gives it, another leaves it empty")
                total = sum(present) if present else None
                if total is not None:
                    try:
                        coerce(fact, total)
                    except RecordError as error:
                        return None, [
                            Reject(part.source, part.row, part.header(name), _shown(part.values[name]),
                                   f"duplicate {name_of_key} {shown} (--duplicates sum): {name} of {_where(parts)} "
                                   f"adds up to {total}, which {error.message.split(' ', 1)[1]}")
                            for part in parts
                        ]
                merged[name] = total
            elif len(set(map(repr, checked))) > 1:
                shown = ", ".join(repr(value) for value in dict.fromkeys(checked))
                return None, self._disagree(key, parts, name, checked, f"they say {shown}")
            else:
                merged[name] = checked[0]
        return merged, []

    def _disagree(self, key: str, parts: list[_Part], name: str, checked: list, how: str) -> list[Reject]:
        reason = (f"duplicate {self.key.name} {self.key.shown(key)} (--duplicates sum): {_where(parts)} differ in {name} "
                  f"({how}); only counts are added, every other fact must be the same")
        return [Reject(part.source, part.row, part.header(name), _shown(part.values[name]), reason) for part in parts]

    def _all_rejected(self, key: str, parts: list[_Part], bad: _Part, name: str, message: str) -> list[Reject]:
        out = []
        for part in parts:
            if part is bad:
                out.append(Reject(part.source, part.row, part.header(name), _shown(part.values[name]), message))
            else:
                out.append(Reject(part.source, part.row, part.header(self.key.names[0]), self.key.value(key),
                                  f"duplicate {self.key.name} {self.key.shown(key)} (--duplicates sum): not summed, since row "
                                  f"{bad.row} of {bad.source} is rejected ({name}: {message})"))
        return out


__all__ = ["Summing"]
