"""Excel workbooks (.xlsx, .xlsm, .xls) as registries, read by fastexcel (calamine) into Arrow.

A bureau's registry is most often a workbook. Three things differ from a CSV export, and each
is handled here so that the scorer sees what a CSV file of the same sheet would give it:

- **Where the header is.** Above it there may be a title (郑州市重点排污单位名录, merged
  across the columns) or a note; the header itself may be two rows, a group label merged over
  sub-labels (排污口 over 未治理 / 已治理) beside labels merged down over both rows. The first
  :data:`HEADER_SCAN` rows are searched for a row, or a pair of rows read as one, that names
  every needed column. What was skipped is logged and said in the summary; a sheet where no
  such row is found is refused with the columns missing and where the header was looked for.
- **Cell types.** Excel stores every number as a float (3 is 3.0) and dates as date-times.
  Every needed cell is read as the text it shows: 3.0 is "3", 0.1 is "0.1", TRUE is "true",
  a date at midnight "2024-03-01"; then the same conversion and checks as CSV text apply, so
  3.5 in a count is rejected as in a CSV file. A number of 16 or more digits where text is
  expected (a USCC typed into a number cell) has lost its digits in Excel: its row is a reject
  that says so. A cell holding an Excel error (#N/A, #DIV/0!) is a reject naming the error.
- **Merged data cells.** A value merged down over several rows (one 金水区 over the
  district's enterprises) is given by calamine to the top cell only: each cell of the range
  is read as that value, and the summary says which ranges (engine/sources/_merged.py finds
  them). A number merged over rows, or a range from the header into the data, is refused.
- **Which sheet.** ``--sheet`` names it (or gives its position, from 1); without it, a
  workbook of one sheet is read, else the one sheet whose header names the needed columns.

Rows are the sheet's row numbers as Excel shows them; empty rows are skipped as a CSV
reader skips empty lines. A sheet is read whole (calamine has no streaming reader); Excel
itself stops at 1,048,576 rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules import Kind
from ecorules.rules._arrow import bools, fill_null, from_numbers

from .._sources import ColumnResolver, normalize_header, typed_columns
from ._merged import MergedRange, merged_ranges
from ._separator import one_column_hint
from ._types import Batch, MissingColumnError, Reject, SourceError

log = logging.getLogger("ecorules.sources")

HEADER_SCAN = 10  # rows searched for the header
_EXACT_DIGITS = 15  # Excel keeps 15 significant digits of a number
_ERRORS = {"NA": "#N/A", "Div0": "#DIV/0!", "Value": "#VALUE!", "Ref": "#REF!", "Name": "#NAME?",
           "Num": "#NUM!", "Null": "#NULL!", "GettingData": "#GETTING_DATA"}
_TEXT_KINDS = (Kind.STRING, Kind.ENUM)


def _fastexcel():
    import fastexcel  # imported on first use: a CSV or Parquet run never pays for it

    # its dtype guess warns of every empty column of a sheet; the cells read here are typed
    # by the fact catalogue, never by that guess
    logging.getLogger("fastexcel.types.dtype").setLevel(logging.ERROR)
    return fastexcel


def _cells(batch: pa.RecordBatch) -> list[list[str | None]]:
    """The rows of a string-typed batch, as lists of cells."""
    columns = [column.to_pylist() for column in batch.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _facts_found(resolver: ColumnResolver, headers: Sequence[str]) -> int:
    return len({resolver.table.get(normalize_header(h)) for h in headers} & set(resolver.needed))


def _two_rows(upper: Sequence[str | None], lower: Sequence[str | None], resolver: ColumnResolver) -> list[str]:
    """One header from two: a label merged down over both rows is in the upper row only; a
    group label merged across is in its first column only, so it is carried right over the
    sub-labels beneath it. A sub-label is taken alone if it names a fact, else with its group."""
    headers = []
    group = None
    for top, bottom in zip(upper, lower, strict=True):
        if top is not None:
            group = top
        if bottom is None:
            headers.append(top or "")
            continue
        alone = resolver.table.get(normalize_header(bottom))
        headers.append(bottom if alone is not None or group is None else f"{group}{bottom}")
    return headers


class ExcelFile:
    """One sheet of a workbook, read batch by batch like a CSV file."""

    def __init__(self, path: Path, sheet: str | None, resolver: ColumnResolver, *, batch_rows: int):
        self.path, self.batch_rows, self.facts = path, batch_rows, resolver.facts
        fastexcel = _fastexcel()
        try:
            self.workbook = fastexcel.read_excel(str(path))
            names = list(self.workbook.sheet_names)
        except (fastexcel.FastExcelError, OSError) as error:
            raise SourceError(f"{path}: cannot read as an Excel workbook: {str(error).splitlines()[0]}") from error
        if not names:
            raise SourceError(f"{path}: the workbook has no sheet")
        self.notes: list[str] = []  # how the sheet was read, for the summary
        if sheet is not None:
            self.sheet = self._named(names, sheet)
            found = self._header(self.sheet, resolver)
        else:
            self.sheet, found = self._choose(names, resolver)
        self.label = f"{path}:{self.sheet}"
        self.header_at, height, self.headers, self.columns, self.estimated_rows = found
        self.data_start = self.header_at + height  # 0-based index of the first data row
        if self.header_at:
            above = "row 1" if self.header_at == 1 else f"rows 1-{self.header_at}"
            self.notes.append(f"{above} above the header skipped (a title)")
        if height == 2:
            self.notes.append(f"header of two rows ({self.header_at + 1}-{self.header_at + 2}, merged cells) read as one")
        self._merges = self._merged_plan()
        for note in self.notes:
            log.info("%s: %s", self.label, note)

    def _named(self, names: list[str], sheet: str) -> str:
        if sheet in names:
            return sheet
        if sheet.strip().isdigit() and 1 <= int(sheet) <= len(names):
            return names[int(sheet) - 1]
        raise SourceError(f"{self.path}: no sheet {sheet!r} (sheets: {', '.join(names)}; "
                          "--sheet takes a name or a position from 1)")

    def _choose(self, names: list[str], resolver: ColumnResolver):
        if len(names) == 1:
            return names[0], self._header(names[0], resolver)
        fitting, first_error = [], None
        for name in names:
            try:
                fitting.append((name, self._header(name, resolver)))
            except SourceError as error:
                first_error = first_error or error
        if len(fitting) == 1:
            self.notes.append(f"sheet {fitting[0][0]!r} chosen: of {len(names)} sheets, the only one "
                              "with the registry's columns")
            return fitting[0]
        if not fitting:
            raise SourceError(f"{first_error} (no sheet of {', '.join(names)} has the registry's columns; "
                              "choose one with --sheet)") from first_error
        raise SourceError(f"{self.path}: {len(fitting)} sheets have the registry's columns "
                          f"({', '.join(n for n, _ in fitting)}): choose one with --sheet")

    def _load(self, sheet: str, **options):
        fastexcel = _fastexcel()
        try:
            return self.workbook.load_sheet(sheet, header_row=None, **options)
        except fastexcel.FastExcelError as error:
            raise SourceError(f"{self.path}:{sheet}: cannot read the sheet: {str(error).splitlines()[0]}") from error

    def _header(self, sheet: str, resolver: ColumnResolver):
        """(row index, rows, headers, fact -> column index, estimated rows) of the header found."""
        loaded = self._load(sheet, skip_rows=0, n_rows=HEADER_SCAN, dtypes="string")
        rows = _cells(loaded.to_arrow())
        label = f"{self.path}:{sheet}"
        if not rows:
            raise SourceError(f"{label}: the sheet is empty, expected a header row")
        best: tuple[int, SourceError | None, list[str]] = (-1, None, [])
        for at, row in enumerate(rows):
            candidates = [(1, [cell or "" for cell in row])]
            if at + 1 < len(rows):
                candidates.append((2, _two_rows(row, rows[at + 1], resolver)))
            for height, headers in candidates:
                try:
                    columns = resolver.resolve(label, headers)
                except SourceError as error:
                    found = _facts_found(resolver, headers)
                    if found > best[0]:
                        best = (found, error, headers)
                    continue
                if height == 1 and len(candidates) == 2 and self._merged_below(columns, rows[at + 1]):
                    continue  # the row below holds sub-labels of a two-row header, not data
                if height == 2 and self._resolves(resolver, label, [cell or "" for cell in rows[at + 1]]):
                    break  # a title above a one-row header: the next row is the header
                return at, height, headers, columns, max(0, loaded.total_height - at - height)
        _, error, headers = best
        where = one_column_hint(headers) + (f" (looked for the header in rows 1-{len(rows)} of sheet {sheet!r}: a title above it is "
                 "skipped, and a header of two rows with merged cells is read as one)")
        if isinstance(error, MissingColumnError):
            raise MissingColumnError(error.source, error.fact, error.policies, error.accepted, where)
        raise SourceError(f"{error}{where}")

    @staticmethod
    def _resolves(resolver: ColumnResolver, label: str, headers: list[str]) -> bool:
        try:
            resolver.resolve(label, headers)
            return True
        except SourceError:
            return False

    @staticmethod
    def _merged_below(columns: dict[str, int], below: Sequence[str | None]) -> bool:
        """The row under a header is empty in every needed column but not everywhere: the
        lower half of a two-row header whose needed labels are merged down over both rows."""
        return all(below[i] is None for i in columns.values()) and any(cell is not None for cell in below)

    def batches(self) -> Iterator[Batch]:
        loaded = self._load(self.sheet, skip_rows=self.data_start, dtypes="string")
        data, errors = loaded.to_arrow_with_errors()
        data = self._merged_filled(data)
        self._native = None
        n = data.num_rows
        blank = np.ones(n, bool)
        for column in data.columns:
            blank &= bools(pc.is_null(column))
        headers = {name: self.headers[i] for name, i in self.columns.items()}
        by_index = {i: name for name, i in self.columns.items()}
        bad: dict[int, list[Reject]] = {}  # data row index -> its rejects
        for cell in errors.errors if errors is not None else ():
            index, column = cell.offset_position
            if column in by_index:
                bad.setdefault(index, []).append(self._reject(index, headers[by_index[column]], None,
                                                              f"Excel error {_error_code(cell.detail)} in the cell"))
        columns = {}
        for name, i in self.columns.items():
            column = data.column(i)
            fact = self.facts.get(name)
            if fact is not None and fact.type.kind is Kind.DATE:
                # a date-time cell at midnight is the date it shows
                column = pc.replace_substring_regex(column, r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1")
            if fact is not None and fact.type.kind in _TEXT_KINDS:
                for index, value in self._lost_numbers(column, i):
                    bad.setdefault(index, []).append(self._reject(
                        index, headers[name], value,
                        f"a number of {len(value.lstrip('-'))} digits in Excel, which keeps only {_EXACT_DIGITS}: "
                        "the text is lost; format the column as text (文本) and enter it again"))
            # an empty cell reads as a CSV file's empty field (rules._arrow.fill_null: pyarrow's
            # conversion of a Python "" imports pandas, ~0.5 s of every run that reads a workbook)
            columns[name] = fill_null(column, "")
        table = pa.table(columns) if columns else pa.table({})
        keep_rows = np.flatnonzero(~blank)
        for start in range(0, keep_rows.size, self.batch_rows):
            indices = keep_rows[start:start + self.batch_rows]
            rejects = [r for i in indices.tolist() if i in bad for r in bad[i]]
            good = indices[[i not in bad for i in indices.tolist()]] if bad else indices
            part = typed_columns(table.take(from_numbers(good)), self.facts)
            rows = (good + self.data_start + 1).astype(np.int64)
            yield Batch(part, self.label, rows, headers, rejects, indices.size)

    def described(self) -> dict[str, str]:
        """How the sheet was read, for the run's summary."""
        return {"format": "excel", "sheet": self.sheet, **({"notes": "; ".join(self.notes)} if self.notes else {})}

    def _merged_plan(self) -> list[tuple[MergedRange, list[int]]]:
        """The ranges merged over several data rows in needed columns, with those columns:
        each such cell is read as the range's value, as a person reads the sheet (calamine
        gives it to the top cell only, and the rows below would be rejected for an empty cell
        the sheet does not show). Refused, naming the cells: a number merged over several
        rows (a total, or every row's value? the sheet does not say), and a range merged
        from the header down into the data."""
        needed = {i: name for name, i in self.columns.items()}
        plan, refused = [], []
        for merged in merged_ranges(self.path, self.sheet):
            if merged.last_row < self.data_start or merged.first_row == merged.last_row:
                continue  # the header's and the title's merges, and merges across one row
            hit = [c for c in range(merged.first_column, merged.last_column + 1) if c in needed]
            if not hit:
                continue
            if merged.first_row < self.data_start:
                refused.append(f"{merged.cells()} (merged from the header into the data)")
            elif any(self.facts[needed[c]].type.kind in (Kind.INTEGER, Kind.DECIMAL)
                     for c in hit if needed[c] in self.facts):
                refused.append(f"{merged.cells()} (a number merged over several rows: a total, or every row's?)")
            else:
                plan.append((merged, hit))
        if refused:
            shown = "; ".join(refused[:10]) + (f"; and {len(refused) - 10} more" if len(refused) > 10 else "")
            raise SourceError(f"{self.path}:{self.sheet}: merged cells in the data rows: {shown}. Unmerge them and "
                              "write each row's value")
        if plan:
            cells = [f"{merged.cells()}" for merged, _ in plan]
            self.notes.append("merged data cells read as the value of their top cell on every row: "
                              + ", ".join(cells[:10]) + (f" and {len(cells) - 10} more" if len(cells) > 10 else ""))
        return plan

    def _merged_filled(self, data: pa.RecordBatch) -> pa.RecordBatch:
        """``data`` with the merged cells of :meth:`_merged_plan` holding their range's value."""
        columns: dict[int, list] = {}
        for merged, hit in self._merges:
            top = merged.first_row - self.data_start
            if top >= data.num_rows:
                continue
            value = data.column(merged.first_column)[top].as_py()
            for c in hit:
                cells = columns.setdefault(c, data.column(c).to_pylist())
                for index in range(top, min(merged.last_row - self.data_start + 1, len(cells))):
                    cells[index] = value
        if not columns:
            return data
        arrays = [pa.array(columns[i], pa.string()) if i in columns else data.column(i) for i in range(data.num_columns)]
        return pa.RecordBatch.from_arrays(arrays, names=data.schema.names)

    def _reject(self, index: int, column: str, value: str | None, reason: str) -> Reject:
        return Reject(self.label, self.data_start + index + 1, column, value, reason)

    def _lost_numbers(self, column: pa.Array, position: int) -> list[tuple[int, str]]:
        """(row index, text) of the cells that were numbers too long for Excel's 15 digits.

        A text cell of 16 digits is not one: only a cell whose value is a number, which the
        sheet read with calamine's own types tells, when the column holds numbers only.
        """
        long_digits = np.flatnonzero(bools(pc.match_substring_regex(column, r"^-?\d{16,}$")))  # (bools: a null is False)
        if not long_digits.size:
            return []
        if self._native is None:  # the sheet with calamine's own cell types, loaded once
            self._native = self._load(self.sheet, skip_rows=self.data_start, schema_sample_rows=None).to_arrow()
        native = self._native.column(position)
        if not pa.types.is_floating(native.type):
            return []
        values = column.to_pylist()
        return [(int(i), values[i]) for i in long_digits.tolist()]


def _error_code(detail: str) -> str:
    """'#N/A' from fastexcel's "Expected string but got 'Error(NA)'"."""
    match = re.search(r"Error\((\w+)\)", detail)
    if match is None:
        return detail
    return _ERRORS.get(match.group(1), f"#{match.group(1).upper()}")


__all__ = ["HEADER_SCAN", "ExcelFile"]
