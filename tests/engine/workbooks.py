"""Excel workbooks for the reader's tests, written with openpyxl (.xlsx) and xlwt (.xls).

``typed_cells`` turns CSV text into the cell types Excel itself would store when staff type
the same values: numbers as floats (Excel has no integers), dates as date-times, TRUE/FALSE
as booleans. Not a test module itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

import openpyxl

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def typed_cell(text: str):
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    if _DATE.match(text):
        return dt.datetime.fromisoformat(text)
    if _NUMBER.match(text) and len(text.lstrip("-").replace(".", "")) <= 15:
        return float(text)
    return text


def typed_cells(rows: Sequence[Sequence[str]]) -> list[list]:
    """The header as text, every other row typed as Excel would store it."""
    return [list(rows[0])] + [[typed_cell(cell) for cell in row] for row in rows[1:]]


def write_xlsx(path: Path, rows: Sequence[Sequence], *, sheet: str = "名录", title: str | None = None,
               other_sheets: dict[str, Sequence[Sequence]] | None = None) -> Path:
    """One sheet of ``rows`` (a title merged across above them if given), plus other sheets."""
    book = openpyxl.Workbook()
    work = book.active
    work.title = sheet
    if title is not None:
        work.append([title])
        work.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(len(rows[0]), 2))
    for row in rows:
        work.append(list(row))
    for name, more in (other_sheets or {}).items():
        extra = book.create_sheet(name)
        for row in more:
            extra.append(list(row))
    book.save(path)
    return path


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.reader(handle)]


def csv_as_xlsx(source: Path, target: Path, **options) -> Path:
    return write_xlsx(target, typed_cells(csv_rows(source)), **options)


def write_xls(path: Path, rows: Sequence[Sequence], sheet: str = "名录") -> Path:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    work = book.add_sheet(sheet)
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                work.write(r, c, value, date_style)
            elif value is not None:
                work.write(r, c, value)
    book.save(str(path))
    return path
