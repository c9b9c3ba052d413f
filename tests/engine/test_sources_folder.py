"""A folder as the registry: every supported file in its subfolders, system files and notes
skipped with a notice, another format never skipped silently, each file's rows in the summary."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from pathlib import Path

import ecorules.policies as shipped_policies
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from ecorules.engine._cli_diff import diff as diff_command
from ecorules.engine._nightly import run_nightly
from ecorules.engine._sources import Registry, SourceError, fingerprint
from nightly_data import make_registry
from test_sources import read_all, resolver
from workbooks import write_xlsx

TABLE = make_registry(30, seed=4)


def _folder(tmp_path):
    folder = tmp_path / "名录"
    (folder / "二七区" / "2024").mkdir(parents=True)
    pacsv.write_csv(TABLE.slice(0, 10), folder / "a.csv")
    pq.write_table(TABLE.slice(10, 10), folder / "二七区" / "b.parquet")
    rows = TABLE.slice(20, 10).to_pylist()
    write_xlsx(folder / "二七区" / "2024" / "c.xlsx", [list(rows[0])] + [list(r.values()) for r in rows])
    for junk in ("Thumbs.db", ".DS_Store", "desktop.ini", "~$c.xlsx", "README.txt"):
        (folder / junk).write_bytes(b"not a registry")
    (folder / "二七区" / "附件.pdf").write_bytes(b"PK")
    (folder / ".git").mkdir()
    return folder


def test_a_folder_is_read_with_its_subfolders_and_system_files_are_skipped_with_a_notice(tmp_path, caplog):
    folder = _folder(tmp_path)
    caplog.set_level(logging.INFO, logger="ecorules.sources")
    registry, batches, table, _, rejects, rows_in = read_all(folder, as_text=True)
    assert [b.source for b in batches if b.rows_in] == [  # in the order of their paths
        str(folder / "a.csv"), f"{folder / '二七区' / '2024' / 'c.xlsx'}:名录", str(folder / "二七区" / "b.parquet")]
    assert rows_in == 30 and not rejects
    assert sorted(table["uscc"].to_pylist()) == sorted(TABLE["uscc"].to_pylist())
    notices = {record.getMessage() for record in caplog.records}
    for name, why in (("Thumbs.db", "a file of the operating system"), (".DS_Store", "a file of the operating system"),
                      ("desktop.ini", "a file of the operating system"), ("~$c.xlsx", "an Office lock file"),
                      ("README.txt", "a note for people"), (".git", "a hidden folder")):
        assert any(m.startswith(f"{folder / name}: skipped, {why}") for m in notices), name
    # a file of another format may be data: a warning that reaches the run's summary
    assert registry.warnings == [f"{folder / '二七区' / '附件.pdf'}: not read, not a registry format "
                                 "(read are .csv, .txt, .tsv, .parquet, .pq, .sqlite, .sqlite3, .db, .xlsx, .xlsm, .xls)"]


def test_no_recurse_reads_the_folder_alone_and_says_what_it_left(tmp_path):
    folder = _folder(tmp_path)
    registry, _, _, _, _, rows_in = read_all(folder, recurse=False)
    assert rows_in == 10 and [r.label for r in registry.readers] == [str(folder / "a.csv")]
    assert f"{folder / '二七区'}: not read, a subfolder (--no-recurse)" in registry.warnings


def test_a_folder_without_registry_files_is_an_error_naming_what_it_holds(tmp_path):
    (tmp_path / "Thumbs.db").write_bytes(b"x")
    with pytest.raises(SourceError, match=r"the folder holds no \.csv.*\(skipped: Thumbs\.db\)"):
        Registry(tmp_path, resolver())


def test_files_of_one_name_in_two_subfolders_are_two_files_to_the_fingerprint(tmp_path):
    for name, (first, second) in (("x", (0, 10)), ("y", (10, 0))):
        for sub, start in (("一", first), ("二", second)):
            (tmp_path / name / sub).mkdir(parents=True)
            pacsv.write_csv(TABLE.slice(start, 10), tmp_path / name / sub / "a.csv")
    prints = {name: fingerprint(Registry(tmp_path / name, resolver()).files, tmp_path / name) for name in "xy"}
    assert prints["x"] != prints["y"]


def test_the_run_summary_lists_each_file_with_its_rows(tmp_path):
    folder = _folder(tmp_path)
    summary = run_nightly(folder, tmp_path / "o.sqlite", as_of=dt.date(2012, 4, 14))
    assert summary.rows_in == 30 and summary.rows_rejected == 0
    assert [(s["format"], s["rows_in"], s["rows_rejected"]) for s in summary.sources] == [
        ("csv", 10, 0), ("excel", 10, 0), ("parquet", 10, 0)]
    assert any("附件.pdf: not read" in w for w in summary.warnings)
    text = summary.render_text()
    assert f"  {folder / 'a.csv'}: 10 rows, 0 rejected" in text
    # the summary is stored with the run: a rerun that reuses it says the same
    again = run_nightly(folder, tmp_path / "o.sqlite", as_of=dt.date(2012, 4, 14))
    assert again.reused and again.sources == summary.sources


def test_diff_reads_every_source_run_reads(tmp_path):
    """`diff --registry` refused a folder and DB:TABLE at the option (a file that exists) and
    had no way to name a sheet: it now takes --registry and its options as `run` does."""
    folder = _folder(tmp_path)
    db = tmp_path / "registry.sqlite"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE 名录 (" + ", ".join(f'"{c}"' for c in TABLE.column_names) + ")")
    connection.executemany(f"INSERT INTO 名录 VALUES ({', '.join('?' * TABLE.num_columns)})",
                           [tuple(r.values()) for r in TABLE.to_pylist()])
    connection.execute("CREATE TABLE other (x)")
    connection.commit()
    connection.close()
    rows = TABLE.to_pylist()
    book = write_xlsx(tmp_path / "r.xlsx", [list(rows[0])] + [list(r.values()) for r in rows], sheet="企业",
                      other_sheets={"草稿": [list(rows[0])]})
    base = Path(shipped_policies.__file__).parent  # the shipped set, under both names
    documents = {}
    for name, options in (("folder", [str(folder)]), ("table", [f"{db}:名录"]),
                          ("table option", [str(db), "--table", "名录"]), ("sheet", [str(book), "--sheet", "企业"])):
        result = CliRunner().invoke(diff_command, [
            "--base", str(base), "--proposed", str(base), "--as-of", "2012-04-14", "--format", "json",
            "--registry", *options])
        assert result.exit_code == 0, (name, result.output)
        documents[name] = json.loads(result.stdout)
    read = {name: (d["rows"], d["totals"]) for name, d in documents.items()}
    assert read["folder"][0]["in"] == read["folder"][0]["compared"] == 30
    assert read["folder"][1]["before_yuan"] > 0
    assert all(figures == read["folder"] for figures in read.values()), read


EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def _split_in_a_subfolder(example: Path, folder: Path) -> int:
    """``example`` as a folder: its first data row in ``folder``, the others in a subfolder;
    returns the rows of the subfolder."""
    header, *rows = example.read_text(encoding="utf-8").splitlines()
    (folder / "后补").mkdir(parents=True)
    (folder / "a.csv").write_text("\n".join([header, rows[0]]) + "\n", encoding="utf-8")
    (folder / "后补" / "b.csv").write_text("\n".join([header, *rows[1:]]) + "\n", encoding="utf-8")
    return len(rows) - 1


@pytest.mark.parametrize("recurse", [True, False])
def test_no_recurse_reaches_the_case_and_records_folders(tmp_path, recurse):
    """--no-recurse was applied to the registry alone: a --cases or --records folder was read
    with its subfolders all the same."""
    cases, districts = tmp_path / "案件", tmp_path / "考核"
    in_sub_cases = _split_in_a_subfolder(EXAMPLES / "cases.csv", cases)
    in_sub_districts = _split_in_a_subfolder(EXAMPLES / "districts.csv", districts)
    summary = run_nightly(EXAMPLES / "registry.csv", tmp_path / "o.sqlite", as_of=dt.date(2025, 6, 30), cases=cases,
                          tables={"district": districts}, recurse=recurse, progress=False)
    assert summary.tables["cases"]["rows_in"] == (1 + in_sub_cases if recurse else 1)
    assert summary.tables["district"]["rows_in"] == (1 + in_sub_districts if recurse else 1)
    left = {w for w in summary.warnings if "a subfolder (--no-recurse)" in w}
    assert left == (set() if recurse else {f"{districts / '后补'}: not read, a subfolder (--no-recurse)",
                                           f"{cases / '后补'}: not read, a subfolder (--no-recurse)"})
