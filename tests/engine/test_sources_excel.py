"""Excel registries: sheets, a title and merged cells above the header, Excel's cell types
landing as the fact catalogue's types with the same rejects as CSV."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecorules.engine._cli import main as cli
from ecorules.engine._nightly import run_nightly
from ecorules.engine._sources import ColumnResolver, MissingColumnError, Registry, SourceError
from ecorules.rules import load_policies
from nightly_data import make_registry
from test_sources import HEADER, LABELS, read_all, resolver
from workbooks import csv_as_xlsx, csv_rows, typed_cells, write_xls, write_xlsx

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROWS = make_registry(4, seed=5).to_pylist()  # valid USCCs


def _cells(row: dict, **changed) -> list:
    """A row as staff type it into Excel: numbers, booleans, text."""
    row = {**row, **changed}
    return [row["uscc"], row["name"], row["district"], row["industrial"], float(row["untreated_outfalls"]),
            float(row["direct_discharge_cases"]), float(row["illegal_discharge_cases"]),
            row["high_pollution"], row["high_energy"]]


def _text(cell) -> str:
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return "" if cell is None else str(cell)


def test_the_example_registry_and_case_table_as_workbooks_score_as_their_csv(tmp_path):
    """Typed cells (3.0 for 3, dates as date-times, TRUE) and a title above the header: the
    run gives the same figures as the CSV files they were made from."""
    registry = csv_as_xlsx(EXAMPLES / "registry.csv", tmp_path / "名录.xlsx", title="郑州市企业环境监管名录")
    cases = csv_as_xlsx(EXAMPLES / "cases.csv", tmp_path / "案件.xlsx", sheet="案件")
    as_of = dt.date(2025, 6, 30)
    from_csv = run_nightly(EXAMPLES / "registry.csv", tmp_path / "csv.sqlite", as_of=as_of, cases=EXAMPLES / "cases.csv")
    from_excel = run_nightly(registry, tmp_path / "xlsx.sqlite", as_of=as_of, cases=cases)
    assert from_excel.status == "done" and from_excel.rows_rejected == 0
    for field in ("rows_in", "rows_scored", "total_yuan", "findings", "districts", "lists", "tables"):
        assert getattr(from_excel, field) == getattr(from_csv, field), field
    assert from_csv.total_yuan == 150_271_250  # the README's figure, so the comparison is not of two empties
    about, of_cases = from_excel.sources  # the registry's workbook, then the case table's
    assert about["source"] == f"{registry}:名录" and about["format"] == "excel" and about["rows_in"] == 50
    assert of_cases["source"] == f"{cases}:案件" and of_cases["rows_in"] == from_csv.tables["cases"]["rows_in"]
    assert "row 1 above the header skipped" in about["notes"]


def test_excel_values_are_rejected_as_the_same_text_in_csv(tmp_path):
    """2.5 outfalls, a word in a count, a bad district: the same rejects, row and column as
    in a CSV file of the same values; 3.0 is 3 and TRUE is true."""
    rows = [HEADER,
            _cells(ROWS[0]),
            _cells(ROWS[1], untreated_outfalls=2.5),
            _cells(ROWS[2], district="郑州"),
            [*_cells(ROWS[3])[:5], "三", *_cells(ROWS[3])[6:]]]
    book = write_xlsx(tmp_path / "r.xlsx", rows)
    text = tmp_path / "r.csv"
    text.write_text("\n".join(",".join(_text(c) for c in row) for row in rows) + "\n", encoding="utf-8")
    runs = {path.suffix: run_nightly(path, tmp_path / f"{path.suffix[1:]}.sqlite", as_of=dt.date(2012, 4, 14))
            for path in (book, text)}
    assert runs[".xlsx"].rows_rejected == 3 and runs[".xlsx"].rows_scored == 1

    def rejects(suffix):
        import sqlite3

        db = sqlite3.connect(tmp_path / f"{suffix}.sqlite")
        return sorted(db.execute("SELECT row, column, value, reason FROM rejects").fetchall())

    assert rejects("xlsx") == rejects("csv")
    assert [r[:2] for r in rejects("xlsx")] == [(3, "未治理到位排污口数"), (4, "所属区县"), (5, "超标直排生态水系案件数")]


def test_a_header_of_two_rows_with_merged_cells_is_read_as_one(tmp_path):
    """是否 merged across 工业企业 / 高污染 / 高耗能, the other labels merged down over both rows."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["统一社会信用代码", "企业名称", "所属区县", "是否", None, None, "未治理到位排污口数",
                  "超标直排生态水系案件数", "其他违法排污案件数"])
    sheet.append([None, None, None, "工业企业", "高污染", "高耗能"])
    for column in "ABCGHI":
        sheet.merge_cells(f"{column}1:{column}2")
    sheet.merge_cells("D1:F1")
    row = ROWS[0]
    sheet.append([row["uscc"], row["name"], row["district"], True, False, True, 2, 0, 0])
    book.save(tmp_path / "r.xlsx")
    registry, _, table, rows, rejects, rows_in = read_all(tmp_path / "r.xlsx")
    assert rows.tolist() == [3] and rejects == [] and rows_in == 1
    assert table["high_pollution"].to_pylist() == [False] and table["high_energy"].to_pylist() == [True]
    assert table["untreated_outfalls"].to_pylist() == [2]
    assert "header of two rows (1-2, merged cells) read as one" in registry.described()[0]["notes"]


def test_a_sheet_without_the_header_is_refused_saying_where_it_looked(tmp_path):
    rows = [["郑州市企业名录"], [h for h in HEADER if h != LABELS["high_energy"]], _cells(ROWS[0])[:-1]]
    write_xlsx(tmp_path / "r.xlsx", rows)
    with pytest.raises(MissingColumnError) as caught:
        Registry(tmp_path / "r.xlsx", resolver())
    message = str(caught.value)
    assert caught.value.fact == "high_energy" and "是否高耗能" in message
    assert "looked for the header in rows 1-3 of sheet '名录'" in message


def test_a_csv_pasted_into_one_column_names_the_separator(tmp_path):
    write_xlsx(tmp_path / "r.xlsx", [[";".join(HEADER)], [";".join(_text(c) for c in _cells(ROWS[0]))]])
    with pytest.raises(MissingColumnError, match="the header was read as one column .*: is the separator ';'"):
        Registry(tmp_path / "r.xlsx", resolver())


def test_the_sheet_is_chosen_by_name_or_position_or_as_the_only_one_with_the_columns(tmp_path):
    data = [HEADER, _cells(ROWS[0])]
    notes = [["说明"], ["本表由环保局导出"]]
    write_xlsx(tmp_path / "one.xlsx", data, sheet="2024", other_sheets={"说明": notes})
    registry = Registry(tmp_path / "one.xlsx", resolver())
    assert registry.readers[0].sheet == "2024"
    assert "the only one with the registry's columns" in registry.described()[0]["notes"]

    write_xlsx(tmp_path / "two.xlsx", data, sheet="2023", other_sheets={"2024": [HEADER, _cells(ROWS[1])]})
    with pytest.raises(SourceError, match=r"2 sheets have the registry's columns \(2023, 2024\): choose one with --sheet"):
        Registry(tmp_path / "two.xlsx", resolver())
    for sheet in ("2024", "2"):  # a name, or a position from 1
        _, _, table, rows, *_ = read_all(tmp_path / "two.xlsx", sheet=sheet)
        assert table["uscc"].to_pylist() == [ROWS[1]["uscc"]]
    _, _, table, *_ = read_all(f"{tmp_path / 'two.xlsx'}:2023")  # file:sheet, as file:table for SQLite
    assert table["uscc"].to_pylist() == [ROWS[0]["uscc"]]
    with pytest.raises(SourceError, match=r"no sheet '2025' \(sheets: 2023, 2024; --sheet takes a name or a position"):
        Registry(tmp_path / "two.xlsx", resolver(), sheet="2025")


def test_excel_errors_and_numbers_too_long_for_excel_are_rejects(tmp_path):
    """#N/A in a cell names the error; a USCC column Excel turned into numbers lost digits."""
    numeric = "914101006149101212"
    rows = [HEADER, _cells(ROWS[0], district="#N/A"), _cells(ROWS[1])]
    write_xlsx(tmp_path / "errors.xlsx", rows)
    _, _, table, rows_read, rejects, rows_in = read_all(tmp_path / "errors.xlsx")
    assert rows_in == 2 and rows_read.tolist() == [3]
    assert [(r.row, r.column, r.reason) for r in rejects] == [(2, "所属区县", "Excel error #N/A in the cell")]

    write_xlsx(tmp_path / "numbers.xlsx", [HEADER, _cells(ROWS[0], uscc=float(numeric))])
    _, _, table, rows_read, rejects, rows_in = read_all(tmp_path / "numbers.xlsx")
    (reject,) = rejects
    assert (reject.row, reject.column) == (2, "统一社会信用代码") and rows_in == 1 and table is None
    assert "a number of 18 digits in Excel, which keeps only 15" in reject.reason
    write_xlsx(tmp_path / "text.xlsx", [HEADER, _cells(ROWS[0], uscc=numeric)])  # typed as text: kept
    _, _, table, _, rejects, _ = read_all(tmp_path / "text.xlsx")
    assert rejects == [] and table["uscc"].to_pylist() == [numeric]


def test_an_old_xls_workbook_is_read_with_its_types(tmp_path):
    rows = [HEADER, _cells(ROWS[0]), [*_cells(ROWS[1])[:4], 3, *_cells(ROWS[1])[5:]]]
    write_xls(tmp_path / "名录.xls", rows)
    _, _, table, rows_read, rejects, rows_in = read_all(tmp_path / "名录.xls")
    assert rows_in == 2 and not rejects and rows_read.tolist() == [2, 3]
    assert table["uscc"].to_pylist() == [ROWS[0]["uscc"], ROWS[1]["uscc"]]
    assert table["untreated_outfalls"].to_pylist() == [ROWS[0]["untreated_outfalls"], 3]


def test_case_dates_in_an_excel_case_table(tmp_path):
    """A date-time at midnight is the date it shows; one with a time of day stays as text, for
    the case table's checks to reject as they would the same text in a CSV file."""
    policies = load_policies()
    rows = csv_rows(EXAMPLES / "cases.csv")[:3]
    cells = typed_cells(rows)
    cells[2][4] = dt.datetime(2024, 3, 1, 10, 30)  # 违法行为发生日 with a time of day
    write_xlsx(tmp_path / "案件.xlsx", cells)
    needed = {"case_id": [], "act_date": []}
    resolver_ = ColumnResolver(policies.facts, needed)
    batches = list(Registry(tmp_path / "案件.xlsx", resolver_).batches())
    table = batches[0].table
    assert isinstance(cells[1][4], dt.datetime)
    assert table["act_date"].to_pylist() == ["2024-03-01", "2024-03-01 10:30:00"]


def test_run_and_cases_take_sheet_options(tmp_path):
    registry = csv_as_xlsx(EXAMPLES / "registry.csv", tmp_path / "名录.xlsx", sheet="企业",
                           other_sheets={"旧": typed_cells(csv_rows(EXAMPLES / "registry.csv"))[:3]})
    cases = csv_as_xlsx(EXAMPLES / "cases.csv", tmp_path / "案件.xlsx", sheet="案件",
                        other_sheets={"草稿": typed_cells(csv_rows(EXAMPLES / "cases.csv"))[:2]})
    result = CliRunner().invoke(cli, [
        "run", "--registry", str(registry), "--sheet", "1", "--cases", str(cases), "--cases-sheet", "案件",
        "--out", str(tmp_path / "o.sqlite"), "--as-of", "2025-06-30", "--format", "json",
        "--allow-unset-parameters",  # the red restriction's term is for legal staff to set
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["total_yuan"] == 150_271_250 and summary["tables"]["cases"]["rows_in"] == 7
    assert summary["sources"][0]["sheet"] == "企业"
    result = CliRunner().invoke(cli, [
        "run", "--registry", str(registry), "--sheet", "1", "--cases", str(cases), "--cases-sheet", "案件",
        "--cases-table", "x", "--out", str(tmp_path / "o.sqlite"),
    ])
    assert result.exit_code == 2 and "not both" in result.output


def _merged_district_book(path: Path, also: str | None = None) -> Path:
    """The district (column C) merged down over the three enterprises of rows 2-4, as a person
    lays out a registry; ``also``: another range merged (e.g. a count)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for k, row in enumerate(ROWS[:3]):
        cells = _cells(row, district="金水区")
        if k:
            cells[2] = None  # what Excel keeps under a merged cell
        sheet.append(cells)
    sheet.append(_cells(ROWS[3]))
    sheet.merge_cells("C2:C4")
    if also:
        sheet.merge_cells(also)
    book.save(path)
    return path


def test_a_data_cell_merged_down_is_read_on_every_row_it_covers(tmp_path):
    """calamine gives a merged cell's value to its top cell only: the two enterprises below
    read an empty district and were rejected for a cell the sheet shows filled."""
    registry, _, table, rows, rejects, rows_in = read_all(_merged_district_book(tmp_path / "r.xlsx"))
    assert rejects == [] and rows_in == 4 and rows.tolist() == [2, 3, 4, 5]
    assert table["district"].to_pylist() == ["金水区", "金水区", "金水区", ROWS[3]["district"]]
    assert "merged data cells read as the value of their top cell on every row: C2:C4" in registry.described()[0]["notes"]


def test_a_number_merged_down_refuses_the_sheet_naming_the_cells(tmp_path):
    """A count merged over several rows is a total or every row's value: not guessed."""
    with pytest.raises(SourceError, match=r"r\.xlsx:Sheet: merged cells in the data rows: E3:E4 \(a number merged"):
        read_all(_merged_district_book(tmp_path / "r.xlsx", also="E3:E4"))


def test_a_data_cell_merged_down_in_an_old_xls_workbook(tmp_path):
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("名录")
    for c, label in enumerate(HEADER):
        sheet.write(0, c, label)
    for r, row in enumerate(ROWS[:3], start=1):
        for c, value in enumerate(_cells(row)):
            if c != 2:
                sheet.write(r, c, value)
    sheet.write_merge(1, 3, 2, 2, "二七区")
    book.save(str(tmp_path / "名录.xls"))
    _, _, table, _, rejects, rows_in = read_all(tmp_path / "名录.xls")
    assert rows_in == 3 and not rejects and table["district"].to_pylist() == ["二七区"] * 3


def test_reading_a_workbook_does_not_import_pandas(tmp_path):
    """pyarrow converts a Python "" given to a compute function through code that imports
    pandas (~0.5 s on its first call): the empty cells are filled without it."""
    book = csv_as_xlsx(EXAMPLES / "registry.csv", tmp_path / "registry.xlsx")
    code = f"""
import sys
from ecorules.engine._sources import Registry
from ecorules.rules import load_policies
from test_sources import resolver
rows = 0
for batch in Registry({str(book)!r}, resolver()).batches():
    rows += batch.table.num_rows
print(rows, "pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent)
    rows, imported = done.stdout.split()
    assert int(rows) > 0 and imported == "False"
