"""Text registries: the encoding decided on the whole file and said why, rows that do not
decode rejected one by one, UTF-16 and tab- or semicolon-separated files."""

from __future__ import annotations

import codecs
import datetime as dt

import numpy as np
import pytest
from ecorules.engine._nightly import run_nightly
from ecorules.engine._scored import reason_class
from ecorules.engine._sources import MissingColumnError, Registry, SourceError
from ecorules.engine.sources import _encoding
from nightly_data import COLUMNS, make_registry
from test_sources import HEADER, LABELS, read_all, resolver

ROWS = make_registry(6, seed=9).to_pylist()


def _line(row: dict, separator: str = ",", labels: bool = False) -> str:
    values = ["true" if v is True else "false" if v is False else str(v) for v in (row[c] for c in COLUMNS)]
    return separator.join(values)


NAMES_HEADER = ",".join(COLUMNS)


def test_a_small_utf8_file_with_one_gbk_row_is_utf8_and_only_that_row_is_rejected(tmp_path):
    """The guess by undecodable characters took GB18030 for the whole file (it decodes nearly
    any bytes) and garbled every row; the file is UTF-8 with one row that is not."""
    lines = [NAMES_HEADER.encode(), _line(ROWS[0]).encode(), _line(ROWS[1]).encode("gbk"), _line(ROWS[2]).encode()]
    path = tmp_path / "r.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    registry, _, table, rows, rejects, rows_in = read_all(path)
    assert registry.encodings == {str(path): "utf-8"}
    assert rows.tolist() == [2, 4] and rows_in == 3
    assert table["district"].to_pylist() == [ROWS[0]["district"], ROWS[2]["district"]]  # not garbled
    assert [(r.row, r.column) for r in rejects] == [(3, "district")]
    assert {r.reason for r in rejects} == {"undecodable bytes: not valid utf-8"}
    (about,) = registry.described()
    assert about["encoding_why"] == ("UTF-8: 2 of 3 lines with non-ASCII text are valid UTF-8; 1 (line 3) is not, "
                                     "and rejected row by row (undecodable bytes)")


def test_a_malformed_line_that_is_not_utf8_is_one_reject_not_the_end_of_the_file(tmp_path):
    """pyarrow decodes a malformed line strictly before handing it to the invalid-row handler:
    one short line holding GBK bytes stopped the whole file (found by tests/fuzz)."""
    lines = [NAMES_HEADER.encode(), _line(ROWS[0]).encode(), b"91410100MA5AH1DH20,\xff\xfe",
             _line(ROWS[1]).encode(), _line(ROWS[2]).encode()]
    path = tmp_path / "r.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    registry, _, table, rows, rejects, rows_in = read_all(path)
    assert registry.encodings == {str(path): "utf-8"}
    assert rows.tolist() == [2, 4, 5] and rows_in == 4
    assert table["district"].to_pylist() == [ROWS[0]["district"], ROWS[1]["district"], ROWS[2]["district"]]
    assert [(r.row, r.column, r.reason) for r in rejects] == [(3, None, "malformed line: 2 fields, expected 9")]
    assert rejects[0].value == "91410100MA5AH1DH20,\\xff\\xfe"  # the bytes as they are in the file


def test_a_gbk_file_is_gb18030_and_a_utf8_line_in_it_is_a_warning(tmp_path):
    lines = [",".join(HEADER).encode("gbk")] + [_line(r).encode("gbk") for r in ROWS[:4]] + [_line(ROWS[4]).encode()]
    path = tmp_path / "r.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    registry, _, table, rows, rejects, rows_in = read_all(path)
    assert registry.encodings == {str(path): "gb18030"} and rows_in == 5
    assert table["district"].to_pylist()[:4] == [r["district"] for r in ROWS[:4]]
    assert registry.described()[0]["encoding_why"].startswith("GB18030 (GBK): 5 of 6 lines with non-ASCII text are not UTF-8")
    (warning,) = registry.warnings
    assert "1 line (line 6) read as GB18030 is valid UTF-8: the text there may read wrongly" in warning


def test_the_whole_file_decides_not_its_first_64_kib(tmp_path):
    """ASCII for the first 100 KB, GBK after: the first bytes alone said UTF-8, and every GBK
    row was rejected."""
    ascii_rows = [_line(dict(ROWS[0], name=f"Zhengzhou Test {i} Co", district="Jinshui")) for i in range(1500)]
    gbk_rows = [_line(r) for r in ROWS] * 10
    path = tmp_path / "r.csv"
    path.write_bytes(("\n".join([NAMES_HEADER, *ascii_rows]) + "\n").encode() + ("\n".join(gbk_rows) + "\n").encode("gbk"))
    assert path.stat().st_size > 100_000
    registry, _, table, _, rejects, rows_in = read_all(path)
    assert registry.encodings == {str(path): "gb18030"} and not rejects and rows_in == 1560
    assert table["district"].to_pylist()[-1] == ROWS[-1]["district"]


def test_a_large_file_is_decided_on_slices_spread_over_it(tmp_path, monkeypatch):
    monkeypatch.setattr(_encoding, "WHOLE_FILE_BYTES", 4096)
    monkeypatch.setattr(_encoding, "SLICE_BYTES", 2048)
    ascii_rows = [_line(dict(ROWS[0], name=f"Test {i}", district="Jinshui")) for i in range(400)]
    path = tmp_path / "r.csv"
    path.write_bytes(("\n".join([NAMES_HEADER, *ascii_rows]) + "\n").encode()
                     + ("\n".join(_line(r) for r in ROWS * 60) + "\n").encode("gbk"))
    decision = _encoding.decide_encoding(path)
    assert decision.encoding == "gb18030" and "sampled lines" in decision.why


def test_utf16_with_a_bom_tab_separated_is_excels_unicode_text(tmp_path):
    path = tmp_path / "名录.txt"
    text = "\r\n".join(["\t".join(HEADER)] + [_line(r, "\t") for r in ROWS[:3]]) + "\r\n"
    path.write_bytes(text.encode("utf-16"))
    registry, _, table, rows, rejects, rows_in = read_all(path)
    assert rows.tolist() == [2, 3, 4] and not rejects and rows_in == 3
    assert table["district"].to_pylist() == [r["district"] for r in ROWS[:3]]
    about = registry.described()[0]
    assert (about["encoding"], about["separator"]) == ("utf-16", "tab")
    assert "byte-order mark" in about["encoding_why"]


def test_utf16_without_a_bom_asks_for_the_encoding(tmp_path):
    path = tmp_path / "r.txt"
    path.write_bytes("\t".join(HEADER).encode("utf-16-le"))
    with pytest.raises(SourceError, match="UTF-16 without a byte-order mark: give --encoding utf-16-le"):
        Registry(path, resolver())


def test_semicolon_separated_files_are_read(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("\n".join([";".join(HEADER)] + [_line(r, ";") for r in ROWS[:2]]) + "\n", encoding="utf-8")
    registry, _, table, rows, rejects, _ = read_all(path)
    assert registry.described()[0]["separator"] == "semicolon"
    assert table["uscc"].to_pylist() == [r["uscc"] for r in ROWS[:2]] and not rejects


def test_a_header_read_as_one_column_names_the_separator(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('"' + ";".join(HEADER) + '"\n', encoding="utf-8")
    with pytest.raises(MissingColumnError, match="the header was read as one column .*: is the separator ';'"):
        Registry(path, resolver())


def test_reason_classes_keep_encoding_names_and_mask_values():
    assert reason_class("undecodable bytes: not valid gb18030") == "undecodable bytes: not valid gb18030"
    assert reason_class("undecodable bytes: not valid utf-8") == "undecodable bytes: not valid utf-8"
    assert reason_class("malformed line: 4 fields, expected 9") == "malformed line: N fields, expected N"
    assert reason_class("value -5 is below 0") == "value N is below N"


def test_the_text_summary_prints_reasons_as_rejects_say_them(tmp_path):
    path = tmp_path / "r.csv"
    good = [_line(r).encode("gbk") for r in ROWS[:3]]
    bad = _line(ROWS[3]).encode("gbk").replace(ROWS[3]["district"].encode("gbk"), b"\x81\x20")
    path.write_bytes(b"\n".join([",".join(HEADER).encode("gbk"), *good, bad]) + b"\n")
    summary = run_nightly(path, tmp_path / "o.sqlite", as_of=dt.date(2012, 4, 14))
    text = summary.render_text()
    assert f"{LABELS['district']}: undecodable bytes: not valid gb18030" in text
    assert "files read:" in text and "GB18030 (GBK): 5 of 5 lines" in text
    (about,) = summary.sources
    assert (about["rows_in"], about["rows_rejected"], about["encoding"]) == (4, 1, "gb18030")


def _lines_one_by_one(evidence: bytes, complete: bool) -> tuple[list[int], list[int]]:
    """The rule _numbered_lines keeps, as it was written first: each line decoded alone, the
    last not final when the evidence may end inside it."""
    lines = evidence.split(b"\n")
    non_ascii, invalid = [], []
    for number, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        non_ascii.append(number)
        try:
            codecs.utf_8_decode(line, "strict", complete or number < len(lines))
        except UnicodeDecodeError:
            invalid.append(number)
    return non_ascii, invalid


@pytest.mark.parametrize("seed", range(40))
def test_lines_that_do_not_decode_are_found_in_one_decode_as_line_by_line(seed):
    """Mixed UTF-8 and GBK lines, lines cut inside a character (at their end, before the line
    end, or at the end of the evidence), a stray continuation byte, empty and ASCII lines."""
    rng = np.random.default_rng(seed)
    pieces = [b"", b"abc,1", "金水区".encode(), "金水区".encode("gbk"), "郑".encode()[:2], b"\x80", b"\xff\xfe",
              "中原".encode() + b"\xe4", "二七区,1".encode(), "\U0001f600".encode()[:3]]
    lines = [b"".join(pieces[k] for k in rng.integers(0, len(pieces), rng.integers(1, 4)))
             for _ in range(rng.integers(1, 30))]
    evidence = b"\n".join(lines) + (b"\n" if seed % 3 == 0 else b"")
    for complete in (True, False):
        assert _encoding._numbered_lines(evidence, complete) == _lines_one_by_one(evidence, complete)


def test_a_utf8_file_with_undecodable_lines_is_decided_by_counting_lines():
    lines = [_line(r).encode() for r in ROWS] * 3 + [_line(ROWS[0]).encode("gbk"), _line(ROWS[1]).encode()[:-1] + b"\xe4"]
    decision = _encoding.weigh(b"\n".join(lines) + b"\n", complete=True)
    assert decision.encoding == "utf-8" and decision.undecodable == 2
    assert "18 of 20 lines with non-ASCII text are valid UTF-8; 2 (lines 19, 20) are not" in decision.why
