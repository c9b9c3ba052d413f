"""Reading registries: formats, encodings, Chinese headers, rejects with file and row, memory."""

from __future__ import annotations

import sqlite3

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from ecorules.engine import _sources
from ecorules.engine._sources import (
    ColumnResolver,
    MissingColumnError,
    Registry,
    SourceError,
    detect_encoding,
    normalize_header,
    read_alias_file,
    typed_columns,
)
from ecorules.rules import load_policies
from nightly_data import make_registry

POLICIES = load_policies().for_domain("enterprise")
# what a registry file holds: the roll-ups are counted over cases, not read
NEEDED = {name: by for name, by in POLICIES.required_facts().items() if POLICIES.facts[name].rollup is None}
LABELS = {name: fact.label for name, fact in POLICIES.facts.items()}


def resolver(extra=None) -> ColumnResolver:
    return ColumnResolver(POLICIES.facts, NEEDED, extra)


def _as_text(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))


def read_all(path, **options):
    options_text = options.pop("as_text", False)
    registry = Registry(path, resolver(options.pop("aliases", None)), **options)
    batches = list(registry.batches())
    tables = [_as_text(b.table) if options_text else b.table for b in batches if b.table.num_rows]
    table = pa.concat_tables(tables) if tables else None
    rows = np.concatenate([b.rows for b in batches]) if batches else np.zeros(0)
    rejects = [r for b in batches for r in b.rejects]
    rows_in = sum(b.rows_in for b in batches)
    return registry, batches, table, rows, rejects, rows_in


def csv_text(rows: list[list[str]]) -> str:
    return "\n".join(",".join(row) for row in rows) + "\n"


HEADER = [LABELS[c] for c in ("uscc", "name", "district", "industrial", "untreated_outfalls",
                              "direct_discharge_cases", "illegal_discharge_cases", "high_pollution", "high_energy")]
GOOD = ["91410100MA44MPDT7X", "郑州某化工有限公司", "金水区", "是", "1", "0", "0", "否", "否"]


def test_gbk_file_with_chinese_headers_is_detected_and_read(tmp_path):
    path = tmp_path / "名录.csv"
    path.write_bytes(csv_text([HEADER, GOOD, GOOD[:2] + ["二七区"] + GOOD[3:]]).encode("gbk"))
    registry, _, table, rows, rejects, rows_in = read_all(path)
    assert registry.encodings == {str(path): "gb18030"}
    assert sorted(table.column_names) == sorted(NEEDED)  # only the needed columns, under the facts' names
    assert table["district"].to_pylist() == ["金水区", "二七区"]
    assert table["industrial"].to_pylist() == ["是", "是"]  # text: the scorer parses it
    assert rows.tolist() == [2, 3] and rejects == [] and rows_in == 2


def test_explicit_encoding_wins_over_detection(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(csv_text([HEADER, GOOD]).encode("gb18030"))
    registry, _, table, *_ = read_all(path, encoding="gbk")
    assert registry.encodings[str(path)] == "gbk"
    assert table["district"].to_pylist() == ["金水区"]


def test_detect_encoding():
    assert detect_encoding("统一社会信用代码".encode()) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbfuscc") == "utf-8"
    assert detect_encoding("统一社会信用代码".encode("gbk")) == "gb18030"
    assert detect_encoding("统一".encode()[:-1]) == "utf-8"  # a character cut by the sample end


def test_utf8_with_bom_and_aliases_and_odd_spacing(tmp_path):
    header = ["社会信用代码", " 单位名称 ", "辖区", "是否工业企业", "未治理到位排污口数", "超标直排生态水系案件数",
              "其他违法排污案件数", "是否高污染", "是否高耗能"]
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text([header, GOOD]).encode())
    _, _, table, rows, rejects, _ = read_all(path)
    assert table["uscc"].to_pylist() == [GOOD[0]] and rows.tolist() == [2] and not rejects


def test_alias_file_adds_headers(tmp_path):
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("uscc: [统一代码]\ndistrict: 区域\n", encoding="utf-8")
    header = ["统一代码", "区域"] + HEADER[3:]
    path = tmp_path / "r.csv"
    path.write_text(csv_text([header, [GOOD[0], GOOD[2]] + GOOD[3:]]), encoding="utf-8")
    _, _, table, *_ = read_all(path, aliases=read_alias_file(aliases))
    assert table["district"].to_pylist() == ["金水区"]


def test_alias_file_naming_an_unknown_fact_is_an_error(tmp_path):
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("usc: [统一代码]\n", encoding="utf-8")
    with pytest.raises(SourceError, match="unknown fact 'usc'"):
        resolver(read_alias_file(aliases))


def test_missing_column_names_the_column_and_the_policy(tmp_path):
    path = tmp_path / "r.csv"
    header = [h for h in HEADER if h != LABELS["high_energy"]]
    path.write_text(csv_text([header, GOOD[:-1]]), encoding="utf-8")
    with pytest.raises(MissingColumnError) as caught:
        Registry(path, resolver())
    message = str(caught.value)
    assert "'high_energy'" in message and "zhengzhou.green_credit@2012" in message
    assert "是否高耗能" in message and str(path) in message


def test_two_columns_for_one_fact_is_an_error(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(csv_text([HEADER + ["信用代码"], GOOD + [GOOD[0]]]), encoding="utf-8")
    with pytest.raises(SourceError, match="both give 'uscc'"):
        Registry(path, resolver())


def test_malformed_lines_are_rejects_with_their_line_numbers(tmp_path):
    lines = [HEADER, GOOD, GOOD[:4], GOOD, GOOD + ["x"], GOOD]
    path = tmp_path / "r.csv"
    path.write_text(csv_text(lines), encoding="utf-8")
    _, _, table, rows, rejects, rows_in = read_all(path, batch_rows=1)
    assert rows.tolist() == [2, 4, 6]
    assert [(r.row, r.reason) for r in rejects] == [
        (3, "malformed line: 4 fields, expected 9"),
        (5, "malformed line: 10 fields, expected 9"),
    ]
    assert rejects[0].value == ",".join(GOOD[:4]) and rejects[0].column is None
    assert rows_in == 5 and table.num_rows == 3


def test_a_line_longer_than_a_parse_block_is_read_not_fatal(tmp_path):
    """A 3 MB line stopped the run with pyarrow's "straddling object ... increase block
    size?": the file is read again with blocks that hold it, and the rows before it are not
    handed out twice; malformed lines around it keep their numbers."""
    long_name = GOOD[:2] + ["长" * 1_000_000] + GOOD[3:]  # in the district column, which is read
    lines = [HEADER] + [GOOD[:4] + [str(i)] + GOOD[5:] for i in range(2, 300)] + [long_name, GOOD[:3], GOOD]
    path = tmp_path / "r.csv"
    path.write_text(csv_text(lines), encoding="utf-8")
    _, _, table, rows, rejects, rows_in = read_all(path, batch_rows=100)
    assert rows.tolist() == [*range(2, 301), 302]
    assert [(r.row, r.reason) for r in rejects] == [(301, "malformed line: 3 fields, expected 9")]
    assert rows_in == 301 and table["district"][298].as_py() == "长" * 1_000_000


def test_line_numbers_stay_right_across_many_batches(tmp_path):
    rng = np.random.default_rng(3)
    bad = set(rng.choice(np.arange(3, 3000), 40, replace=False).tolist())
    lines = [HEADER] + [GOOD[:3] if line in bad else GOOD[:4] + [str(line)] + GOOD[5:] for line in range(2, 3001)]
    path = tmp_path / "r.csv"
    path.write_text(csv_text(lines), encoding="utf-8")
    _, batches, table, rows, rejects, rows_in = read_all(path, batch_rows=50)
    assert len(batches) > 10
    # each good row carries its own line number in the outfalls column
    assert rows.tolist() == [int(v) for v in table["untreated_outfalls"].to_pylist()]
    assert sorted(r.row for r in rejects) == sorted(bad)
    assert rows_in == 2999


def test_an_undecodable_malformed_line_far_in_the_file_reads_it_again_decoded(tmp_path):
    """UTF-8 passes through pyarrow with its undecodable cells; a malformed line that does not
    decode stops pyarrow, and the file is read again decoded, without handing out a row
    twice: every line is a row or a reject once, with its own line number."""
    rng = np.random.default_rng(5)
    bad = set(rng.choice(np.arange(3, 3000), 30, replace=False).tolist())
    undecodable = sorted(rng.choice(sorted(set(range(3, 3001)) - bad), 6, replace=False).tolist())
    body = []
    for line in range(2, 3001):
        row = GOOD[:4] + [str(line)] + GOOD[5:]
        text = ",".join(GOOD[:3] if line in bad else row).encode()
        if line in undecodable:
            text = text.replace("金水".encode(), b"\xff\xfe")
        if line == 2500:  # a field too many, and a byte that does not decode in it
            text += b",\xff"
        body.append(text)
    path = tmp_path / "r.csv"
    path.write_bytes(b"\n".join([",".join(HEADER).encode(), *body]) + b"\n")
    _, batches, table, rows, rejects, rows_in = read_all(path, batch_rows=64)
    assert len(batches) > 5 and rows_in == 2999
    assert rows.tolist() == [int(v) for v in table["untreated_outfalls"].to_pylist()]
    by_line = {r.row: r.reason for r in rejects}
    assert len(by_line) == len(rejects) == len(bad) + len(undecodable) + 1
    assert by_line[2500] == "malformed line: 10 fields, expected 9"
    assert {line for line, reason in by_line.items() if reason.startswith("undecodable")} == set(undecodable)
    assert sorted([*rows.tolist(), *by_line]) == list(range(2, 3001))


def test_undecodable_bytes_utf8_reject_the_row_and_name_the_column(tmp_path):
    path = tmp_path / "r.csv"
    good = csv_text([HEADER, GOOD]).encode()
    bad_row = ",".join(GOOD[:2]).encode() + b",\xff\xfe\xe9\x87" + ("," + ",".join(GOOD[3:]) + "\n").encode()
    path.write_bytes(good + bad_row + csv_text([GOOD]).encode())
    _, _, table, rows, rejects, rows_in = read_all(path)
    assert rows.tolist() == [2, 4] and rows_in == 3
    (reject,) = rejects
    assert (reject.row, reject.column) == (3, "所属区县")
    assert reject.reason == "undecodable bytes: not valid utf-8"
    assert reject.value == "\\xff\\xfe\\xe9\\x87"


def test_undecodable_bytes_gbk(tmp_path):
    path = tmp_path / "r.csv"
    rows_text = csv_text([HEADER, GOOD]).encode("gbk")
    bad = ",".join(GOOD[:2]).encode("gbk") + b",\x81\x20" + ("," + ",".join(GOOD[3:]) + "\n").encode("gbk")
    path.write_bytes(rows_text + bad)
    _, _, table, rows, rejects, _ = read_all(path)
    assert rows.tolist() == [2]
    assert [(r.row, r.column, r.reason) for r in rejects] == [(3, "所属区县", "undecodable bytes: not valid gb18030")]


def test_header_that_does_not_decode_asks_for_an_encoding(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(",".join(HEADER).encode("gbk") + b"\n")
    with pytest.raises(SourceError, match="--encoding"):
        Registry(path, resolver(), encoding="utf-8")


def test_unreadable_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        Registry(tmp_path / "nope.csv", resolver())
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty file"):
        Registry(empty, resolver())
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match="cannot read as Parquet"):
        Registry(junk, resolver())
    junk = tmp_path / "r.xlsx"
    junk.write_bytes(b"x")
    with pytest.raises(SourceError, match="cannot read as an Excel workbook"):
        Registry(junk, resolver())
    with pytest.raises(SourceError, match="unknown format"):
        other = tmp_path / "r.docx"
        other.write_bytes(b"x")
        Registry(other, resolver())


def test_header_only_csv_gives_no_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(",".join(HEADER) + "\n", encoding="utf-8")
    *_, rejects, rows_in = read_all(path)
    assert rows_in == 0 and rejects == []


def test_parquet_streams_in_batches_with_row_numbers(tmp_path):
    table = make_registry(1000, seed=1)
    path = tmp_path / "r.parquet"
    pq.write_table(table, path, row_group_size=300)
    registry, batches, read, rows, rejects, rows_in = read_all(path, batch_rows=128)
    assert registry.estimated_rows == 1000 and rows_in == 1000 and not rejects
    assert max(b.table.num_rows for b in batches) <= 128
    assert rows.tolist() == list(range(1, 1001))
    assert read["uscc"].to_pylist() == table["uscc"].to_pylist()
    assert read["untreated_outfalls"].type == pa.int64()  # typed columns stay typed


def test_sqlite_table_source_with_mixed_types(tmp_path):
    db = tmp_path / "registry.sqlite"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE 名录 (" + ", ".join(f'"{h}"' for h in HEADER) + ")")
    connection.execute("CREATE TABLE other (x)")
    connection.executemany(f"INSERT INTO 名录 VALUES ({', '.join('?' * 9)})", [
        [GOOD[0], GOOD[1], GOOD[2], 1, 2, 0, 0, 0, 0],
        [GOOD[0], GOOD[1], b"\xff", "true", "3", 0.5, 0, 0, 0],
    ])
    connection.commit()
    connection.close()
    with pytest.raises(SourceError, match="holds 2 tables"):
        Registry(db, resolver())
    for spec, options in ((f"{db}:名录", {}), (db, {"table": "名录"})):
        _, _, table, rows, rejects, rows_in = read_all(spec, **options)
        assert rows_in == 2 and rows.tolist() == [1]
        assert [(r.row, r.column, r.reason) for r in rejects] == [(2, "所属区县", "undecodable bytes: not valid utf-8")]
        assert table["industrial"].to_pylist() == [True]  # SQLite's 0/1 booleans, read as text
        assert table["untreated_outfalls"].to_pylist() == [2]
        assert table["direct_discharge_cases"].to_pylist() == [0]


def test_folder_of_files_in_name_order(tmp_path):
    folder = tmp_path / "registry"
    folder.mkdir()
    table = make_registry(30, seed=2)
    pq.write_table(table.slice(0, 10), folder / "a.parquet")
    pacsv.write_csv(table.slice(10, 10), folder / "b.csv")
    chinese = table.slice(20, 10).rename_columns([LABELS[c] for c in table.column_names])
    (folder / "c.csv").write_bytes(_csv_bytes(chinese).decode().encode("gbk"))
    (folder / ".hidden.csv").write_text("junk", encoding="utf-8")
    (folder / "notes.md").write_text("not a registry", encoding="utf-8")
    _, batches, read, rows, rejects, rows_in = read_all(folder, as_text=True)
    assert [b.source for b in batches] == [str(folder / n) for n in ("a.parquet", "b.csv", "c.csv")]
    assert rows_in == 30 and not rejects
    assert read["uscc"].to_pylist() == table["uscc"].to_pylist()


def _csv_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return sink.getvalue().to_pybytes()


def test_normalize_header():
    assert normalize_header("\ufeff 统一社会信用代码\u3000") == "统一社会信用代码"
    assert normalize_header("USCC") == "uscc"
    assert normalize_header("信用代码(18位)") == normalize_header("信用代码(18位)")


@pytest.mark.slow
def test_memory_stays_flat_while_streaming_a_large_csv(tmp_path):
    path = tmp_path / "big.csv"
    chunk = make_registry(100_000, seed=5)
    with pacsv.CSVWriter(path, chunk.schema) as writer:
        for _ in range(20):  # 2 M rows, ~150 MB
            writer.write_table(chunk)
    process = psutil.Process()
    registry = Registry(path, resolver(), batch_rows=100_000)
    rss = []
    for batch in registry.batches():
        assert batch.table.num_rows <= 200_000
        rss.append(process.memory_info().rss)
    assert len(rss) >= 10
    assert max(rss[3:]) - rss[3] < 64 * 2**20  # flat after the first batches


def test_typed_columns_only_when_every_value_reads_the_same_as_the_record_rules():
    facts = POLICIES.facts
    clean = pa.table({"untreated_outfalls": ["0", "12", "-3", "007"], "industrial": ["true", "FALSE", "1", "0"],
                      "district": ["1", "2", "3", "4"]})
    typed = typed_columns(clean, facts)
    assert typed["untreated_outfalls"].to_pylist() == [0, 12, -3, 7]  # -3: the scorer rejects it (min 0)
    assert typed["industrial"].to_pylist() == [True, False, True, False]
    assert typed["district"].type == pa.string()  # an enum stays text
    for odd in (" 1", "+1", "", "1.0", "1e3", "99999999999999999999"):
        column = typed_columns(pa.table({"untreated_outfalls": ["1", odd]}), facts)["untreated_outfalls"]
        assert column.type == pa.string(), odd
    for odd in ("是", "yes", "t", " true", ""):
        column = typed_columns(pa.table({"industrial": ["true", odd]}), facts)["industrial"]
        assert column.type == pa.string(), odd


def test_casts_skipped_only_where_arrow_would_refuse_them():
    """typed_columns does not try a cast that is bound to fail (_sources._uncastable): every
    column it skips is one Arrow refuses as integers and as booleans, whatever the cell
    ('1.5', '三', a full-width or Arabic-Indic digit, an undecodable byte passed through), and
    a column of ASCII cells without '.' is still tried."""
    from ecorules.engine._sources import _uncastable

    cells = ["1.5", "三", "１", "٣", "也许", "0.", ".", "true.", "1\u00a0"]
    for cell in cells:
        column = pa.array(["1", "0", cell])
        assert _uncastable(column), cell
        for target in (pa.int64(), pa.bool_()):
            with pytest.raises(pa.ArrowInvalid):
                pc.cast(column, target)
    raw = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(np.array([0, 1, 3], np.int32)),
                                                 pa.py_buffer(b"1\xff1")])
    assert _uncastable(raw)
    for target in (pa.int64(), pa.bool_()):
        with pytest.raises(pa.ArrowInvalid):
            pc.cast(raw, target)
    assert not any(_uncastable(pa.array(["1", cell, None])) for cell in ("-3", "+1", " 1", "", "0x1", "TRUE", "1e3"))
    assert not _uncastable(pa.array(["1", "2"]).slice(2))
    typed = typed_columns(pa.table({"untreated_outfalls": ["1", "1.5"], "industrial": ["true", "是"]}), POLICIES.facts)
    assert typed["untreated_outfalls"].type == pa.string() and typed["industrial"].type == pa.string()


@pytest.mark.slow
def test_parquet_memory_does_not_grow_with_the_file(tmp_path):
    """pyarrow's default pre_buffer kept every row group read: 65 MiB more per 5 M rows."""
    path = tmp_path / "big.parquet"
    chunk = make_registry(50_000, seed=6)
    with pq.ParquetWriter(path, chunk.schema) as writer:
        for _ in range(40):  # 2 M rows in 40 row groups
            writer.write_table(chunk)
    held = [pa.total_allocated_bytes() for _batch in Registry(path, resolver(), batch_rows=50_000).batches()]
    assert len(held) == 40
    assert max(held[5:]) - held[5] < 8 * 2**20


def test_parquet_enum_columns_read_as_dictionaries_and_still_checked_for_utf8(tmp_path):
    table = make_registry(6, seed=1)
    path = tmp_path / "r.parquet"
    pq.write_table(table, path)
    _, _, read, _, rejects, _ = read_all(path)
    assert pa.types.is_dictionary(read["district"].type) and not rejects
    assert read["district"].to_pylist() == table["district"].to_pylist()
    assert read["uscc"].type == pa.string()  # one text per row: no dictionary
    texts = [v.encode() for v in table["district"].to_pylist()]
    texts[1] = b"\xff\xfe\xe9\x87"
    column = table.schema.get_field_index("district")
    bad = table.set_column(column, "district", pa.array(texts, pa.binary()).view(pa.string()))
    pq.write_table(bad, path)
    _, _, read, rows, rejects, rows_in = read_all(path)
    assert rows.tolist() == [1, 3, 4, 5, 6] and rows_in == 6
    assert [(r.row, r.column, r.reason, r.value) for r in rejects] == [
        (2, "district", "undecodable bytes: not valid utf-8", "\\xff\\xfe\\xe9\\x87")
    ]
    assert read["district"].to_pylist() == [t.decode() for i, t in enumerate(texts) if i != 1]


@pytest.mark.parametrize("seed", range(12))
def test_undecodable_cells_found_from_the_bytes_at_once_as_one_by_one(seed):
    """A column's values checked at once (their bytes together) find the same undecodable
    cells as a decode of each value: characters cut between two values, bytes that never
    begin a character, sliced arrays; a column of valid values is told valid at once."""
    rng = np.random.default_rng(seed)
    pieces = [b"91410100", "金水区".encode(), "郑".encode()[:1], "郑".encode()[1:], b"\xff", b"", b"\xe9\x87",
              "\U0001f600".encode(), b"\x80", "是".encode()]
    weights = np.array([8, 8, 1, 1, 1, 2, 1, 2, 1, 4], float)
    if seed % 3 == 0:
        weights[[2, 3, 4, 6, 8]] = 0  # valid values only
    values = [b"".join(pieces[k] for k in rng.choice(len(pieces), rng.integers(0, 4), p=weights / weights.sum()))
              for _ in range(400)]
    column = pa.array(values, pa.large_binary() if seed % 2 else pa.binary()).view(
        pa.large_string() if seed % 2 else pa.string())
    column = column.slice(seed, 400 - 2 * seed)

    def undecodable(value: bytes) -> bool:
        try:
            value.decode("utf-8")
            return False
        except UnicodeDecodeError:
            return True

    want = [i for i, value in enumerate(values[seed: 400 - seed]) if undecodable(value)]
    assert _sources._undecodable_rows(pa.chunked_array([column]), True).tolist() == want
    assert _sources._all_valid_utf8(column) == (not want)
    if seed % 3 == 0:
        assert not want  # the at-once check was what told it
    # all the bytes together are valid UTF-8, but two values each hold a part of 郑
    cut = pa.array([b"\xe9\x83", b"\x91\xe5\xb7\x9e", "金水区".encode()], pa.binary()).view(pa.string())
    assert _sources._undecodable_rows(pa.chunked_array([cut]), True).tolist() == [0, 1]
