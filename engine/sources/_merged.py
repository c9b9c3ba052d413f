"""The merged cells of a worksheet, which calamine (fastexcel) does not expose.

A bureau's sheet often merges a cell down over several rows: one 金水区 over the five
enterprises of the district, as a person reads it. calamine gives the value to the top cell
only, so the rows below would read an empty district and be rejected for a reason the sheet
does not show. ``engine/sources/_excel.py`` asks here where the merged ranges are, and fills
or refuses them.

- .xlsx/.xlsm: the ranges are ``<mergeCell ref="B5:B7"/>`` elements after the sheet's data in
  its XML part; the part is found through the workbook's relationships and scanned as text
  with the standard library. openpyxl would give the same ranges only in its full mode, which
  builds a Python object per cell (its read-only mode drops the merged ranges): minutes for a
  sheet that calamine reads in seconds.
- .xls: xlrd (formatting_info=True) reads the BIFF MERGEDCELLS records; an .xls sheet holds
  at most 65,536 rows, so reading its formatting costs little.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import attrs

from ._types import SourceError

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_OFFICE_RELATION = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PACKAGE = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
_CHUNK = 1 << 22


@attrs.frozen
class MergedRange:
    """Rows and columns from 0, both ends included."""

    first_row: int
    last_row: int
    first_column: int
    last_column: int

    def cells(self) -> str:
        """'B5:B7' as Excel names it."""
        start = f"{column_letters(self.first_column)}{self.first_row + 1}"
        end = f"{column_letters(self.last_column)}{self.last_row + 1}"
        return start if start == end else f"{start}:{end}"


def column_letters(index: int) -> str:
    """0 -> 'A', 27 -> 'AB'."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - ord("A") + 1
    return index - 1


def merged_ranges(path: Path, sheet: str) -> list[MergedRange]:
    """The merged ranges of ``sheet`` (by name) in the workbook at ``path``."""
    if path.suffix.lower() == ".xls":
        return _xls_ranges(path, sheet)
    try:
        with zipfile.ZipFile(path) as book:
            part = _sheet_part(book, sheet)
            if part is None:
                return []
            return _scan(book, part)
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError) as error:
        raise SourceError(f"{path}:{sheet}: cannot read the sheet's merged cells: {error}") from error


def _sheet_part(book: zipfile.ZipFile, sheet: str) -> str | None:
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    relation = next((s.get(_OFFICE_RELATION) for s in workbook.iter(f"{_MAIN}sheet") if s.get("name") == sheet), None)
    if relation is None:
        return None
    relations = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next((r.get("Target") for r in relations.iter(f"{_PACKAGE}Relationship") if r.get("Id") == relation), None)
    if target is None:
        return None
    # a target is relative to xl/, or absolute within the package
    return target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)


def _scan(book: zipfile.ZipFile, part: str) -> list[MergedRange]:
    found = []
    tail = b""
    with book.open(part) as handle:
        while chunk := handle.read(_CHUNK):
            text = tail + chunk
            last = 0
            for match in _MERGE.finditer(text):
                found.append(_range(match))
                last = match.end()
            # an element cut by the chunk's end is read whole with the next chunk
            tail = text[max(last, len(text) - 256):]
    return sorted(set(found), key=lambda r: (r.first_row, r.first_column))


def _range(match: re.Match) -> MergedRange:
    first_column, first_row = _column_index(match.group(1)), int(match.group(2)) - 1
    if match.group(3) is None:
        return MergedRange(first_row, first_row, first_column, first_column)
    return MergedRange(first_row, int(match.group(4)) - 1, first_column, _column_index(match.group(3)))


def _xls_ranges(path: Path, sheet: str) -> list[MergedRange]:
    import xlrd  # only for the old .xls format

    try:
        book = xlrd.open_workbook(str(path), formatting_info=True, on_demand=True)
        try:
            cells = book.sheet_by_name(sheet).merged_cells
        finally:
            book.release_resources()
    except (xlrd.XLRDError, OSError, NotImplementedError) as error:
        raise SourceError(f"{path}:{sheet}: cannot read the sheet's merged cells: {error}") from error
    # xlrd's ranges end one past the last row and column
    return sorted({MergedRange(rlo, rhi - 1, clo, chi - 1) for rlo, rhi, clo, chi in cells},
                  key=lambda r: (r.first_row, r.first_column))


__all__ = ["MergedRange", "column_letters", "merged_ranges"]
