"""A UTF-8 CSV file parsed in slices on every core gives exactly what the serial reader gives:
the same rows with the same line numbers, the same rejects in the same batches' order, the
same rows in; a malformed line that does not decode is read decoded in its slice alone, and the
slices go on after it; where slices cannot be exact (a quoted value open across a cut, a line
longer than a slice) the serial reader takes over."""

from __future__ import annotations

import codecs
import logging
import threading

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import _sources
from ecorules.engine._sources import Registry
from ecorules.engine.sources import _csv_slices
from ecorules.engine.sources._utf8 import (
    malformed_lines_mended,
    private_use_bytes,
    private_use_leads,
)
from test_sources import GOOD, HEADER, resolver

SERIAL = 1 << 40  # a slice size no file reaches: the file is read serially


def read(path, slice_bytes, monkeypatch, batch_rows=4):
    monkeypatch.setattr(_sources, "SLICE_BYTES", slice_bytes)
    batches = list(Registry(path, resolver(), batch_rows=batch_rows).batches())
    tables = [b.table.cast(pa.schema([(n, pa.string()) for n in b.table.column_names]))
              for b in batches if b.table.num_rows]
    return {
        "rows": pa.concat_tables(tables).to_pydict() if tables else {},
        "lines": np.concatenate([b.rows for b in batches]).tolist() if batches else [],
        "rejects": [(r.row, r.column, r.value, r.reason) for b in batches for r in b.rejects],
        "rows_in": sum(b.rows_in for b in batches),
    }


def sliced_and_serial(path, monkeypatch, caplog, slice_bytes):
    with caplog.at_level(logging.INFO, logger="ecorules.sources"):
        sliced = read(path, slice_bytes, monkeypatch)
    serially = [r.getMessage() for r in caplog.records if "read serially" in r.getMessage()]
    caplog.clear()
    assert sliced == read(path, SERIAL, monkeypatch)
    assert sliced["rows_in"] == len(sliced["lines"]) + len(sliced["rejects"])
    return sliced, serially


def row(i: int, **change) -> list[str]:
    out = GOOD[:4] + [str(i % 7)] + GOOD[5:]
    for index, value in change.items():
        out[int(index[1:])] = value
    return out


def lines_of(kind: str, i: int) -> str:
    """One line (or a few) of a kind a registry export may hold."""
    if kind == "good":
        return ",".join(row(i))
    if kind == "short":
        return ",".join(row(i)[:4])
    if kind == "long":
        return ",".join(row(i) + ["extra"])
    if kind == "quoted":  # quoted fields, a comma and a doubled quote inside one
        return ",".join(f'"{v}"' for v in row(i, c1=f'郑州"{i}"号,有限公司'.replace('"', '""')))
    if kind == "empty":
        return ""
    if kind == "blank":
        return "   "
    if kind == "bad utf-8 cell":  # passes the parser; the row is rejected for its bytes
        return ",".join(row(i, c2="\udcff金水区"))
    if kind == "bad utf-8 short":  # malformed and undecodable: pyarrow stops at it
        return ",".join(row(i, c1="郑州\udce4\udcb8某厂")[:3])
    if kind == "bad utf-8 long":  # a byte cut from a character, in a field too many
        return ",".join([*row(i), "\udce9\udc87"])
    raise AssertionError(kind)


KINDS = ["good"] * 6 + ["short", "long", "quoted", "quoted", "empty", "blank", "bad utf-8 cell"]


def write(path, lines: list[str], *, crlf=False, bom=False, separator=",", end=True):
    newline = "\r\n" if crlf else "\n"
    text = newline.join([separator.join(HEADER), *(line.replace(",", separator) if separator != "," else line
                                                   for line in lines)]) + (newline if end else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", "surrogateescape"))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("slice_bytes", [300, 1000, 4096])
def test_slices_give_what_the_serial_reader_gives(tmp_path, monkeypatch, caplog, seed, slice_bytes):
    rng = np.random.default_rng(seed)
    kinds = [KINDS[k] for k in rng.integers(0, len(KINDS), 400)]
    path = tmp_path / "r.csv"
    write(path, [lines_of(kind, i) for i, kind in enumerate(kinds)], crlf=seed % 2 == 1, bom=seed % 3 == 0,
          end=seed != 4)
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, slice_bytes)
    assert not serially  # the slices were used, not the serial fallback
    reasons = {reason.split(":")[0] for *_, reason in sliced["rejects"]}
    assert reasons == {"malformed line", "undecodable bytes"}
    assert len(sliced["lines"]) > 200


def _slices_read_decoded(monkeypatch) -> list[bool]:
    """Whether each parse of a slice was of the slice read again decoded (appended as parsed)."""
    decoded = []
    parse = _csv_slices._read

    def counted(data, options):
        decoded.append(isinstance(data, bytes))  # the slice as read again, decoded
        return parse(data, options)

    monkeypatch.setattr(_csv_slices, "_read", counted)
    return decoded


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("slice_bytes", [300, 1000, 4096])
def test_slices_resume_after_a_slice_read_decoded(tmp_path, monkeypatch, caplog, seed, slice_bytes):
    """Malformed lines that do not decode in many slices (in some, beside rows with undecodable
    cells, whose bytes must come out as they are): the file gives what the serial reader, which
    decodes all of it, gives."""
    rng = np.random.default_rng(100 + seed)
    kinds = [*KINDS, "bad utf-8 short", "bad utf-8 long"]
    drawn = [kinds[k] for k in rng.integers(0, len(kinds), 400)]
    path = tmp_path / "r.csv"
    write(path, [lines_of(kind, i) for i, kind in enumerate(drawn)], crlf=seed % 2 == 1, bom=seed % 3 == 0,
          end=seed != 4)
    decoded = _slices_read_decoded(monkeypatch)
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, slice_bytes)
    assert not serially  # none read serially
    assert sum(decoded) >= 2  # several slices read decoded, each once
    undecodable = [r for r in sliced["rejects"] if r[1] is not None and r[3].startswith("undecodable bytes")]
    assert undecodable and all("\\x" in r[2] for r in undecodable)
    assert any("\\xe4\\xb8" in r[2] for r in sliced["rejects"] if r[1] is None)  # a malformed line's bytes


def test_undecodable_lines_first_and_last_in_slices(tmp_path, monkeypatch, caplog):
    """Lines of one length, so that slices of 5 lines' bytes hold exactly 5: malformed lines
    that do not decode, and rows with undecodable cells, first and last in slices, several in
    one slice, and the file's last line."""
    lines = [lines_of("good", i).encode() for i in range(60)]
    width = max(map(len, lines)) + 8
    damaged = {0: b"\xff", 4: b"\xe9\x87", 5: b"\xff\xfe", 9: b"\x80", 10: b"\xe4", 11: b"\xc0", 59: b"\xf8"}
    cells = {14: b"\xff", 15: b"\xfe", 19: b"\x81"}  # a cell that does not decode: rejected by its column
    body = []
    for i, line in enumerate(lines):
        fields = line.split(b",")
        if i in damaged:  # a field too many, holding the bytes
            fields.append(damaged[i])
        if i in cells:
            fields[2] += cells[i]
        line = b",".join(fields)
        fields = line.split(b",")
        fields[1] += b" " * (width - len(line))  # every line `width` bytes (the name padded)
        body.append(b",".join(fields) + b"\n")
    path = tmp_path / "r.csv"
    path.write_bytes(",".join(HEADER).encode() + b"\n" + b"".join(body))
    decoded = _slices_read_decoded(monkeypatch)
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, 5 * (width + 1))
    assert not serially and len(decoded) >= 12 and any(decoded)
    malformed = {r[0]: r[2] for r in sliced["rejects"] if r[1] is None}
    assert sorted(malformed) == [i + 2 for i in damaged]
    for i, raw in damaged.items():
        assert malformed[i + 2].endswith("," + "".join(f"\\x{b:02x}" for b in raw))
    assert sorted(r[0] for r in sliced["rejects"] if r[1] is not None) == [i + 2 for i in cells]
    assert sliced["rows_in"] == 60


def test_undecodable_bytes_in_a_quoted_value_over_lines(tmp_path, monkeypatch, caplog):
    """A quoted value holding a line end, with bytes that do not decode, in a row with a field
    too many (one malformed row over two lines) and in a good row (its cell rejected)."""
    lines = [lines_of("good", i) for i in range(80)]
    lines[20] = ",".join([*row(20, c2='"金水\n\udcff某区"'), "extra"])
    lines[50] = ",".join(row(50, c2='"金水\udcfe\n某区"'))
    lines[51] = ",".join([*row(51), "\udcff"])  # and a plain one just after
    path = tmp_path / "r.csv"
    write(path, lines)
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, 1000)
    assert not serially
    by_line = {r[0]: r for r in sliced["rejects"]}
    assert set(by_line) == {22, 52, 53}  # rows are numbered as records, as the serial reader does
    assert by_line[22][1] is None and "\\xff" in by_line[22][2] and "10 fields" in by_line[22][3]
    assert by_line[52][1] == HEADER[2] and by_line[52][2] == "金水\\xfe\n某区"
    assert by_line[53][1] is None and by_line[53][2].endswith(",\\xff")


def test_slices_with_a_tab_separator(tmp_path, monkeypatch, caplog):
    path = tmp_path / "r.tsv.csv"
    write(path, [lines_of(k, i) for i, k in enumerate(["good", "short", "good", "long"] * 60)], separator="\t")
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, 500)
    assert not serially and len(sliced["rejects"]) == 120


def test_a_quoted_value_open_across_a_cut_is_read_serially(tmp_path, monkeypatch, caplog):
    lines = [lines_of("good", i) for i in range(100)]
    lines[30] = ",".join(row(30, c2='"金水\n某区"'))  # a line end inside a quoted value
    path = tmp_path / "r.csv"
    write(path, lines)
    cut_at = path.read_bytes().index(b"\n\xe6\x9f\x90") + 1  # just after the quoted line end
    header_line = path.read_bytes().index(b"\n") + 1
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, cut_at - header_line)
    assert serially and "quoted value is open" in serially[0]
    assert "金水\n某区" in sliced["rows"]["district"] and not sliced["rejects"]


def test_a_line_longer_than_a_slice_is_read_serially(tmp_path, monkeypatch, caplog):
    lines = [lines_of("good", i) for i in range(60)]
    lines[40] = ",".join(row(40, c2="长" * 400))
    path = tmp_path / "r.csv"
    write(path, lines)
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, 800)
    assert serially and "longer than a slice" in serially[0]
    assert sliced["lines"][39:41] == [41, 42]


def test_an_undecodable_malformed_line_is_read_decoded_in_its_slice_alone(tmp_path, monkeypatch, caplog):
    lines = [lines_of(k, i) for i, k in enumerate(["good", "short"] * 100)]
    lines[150] = ",".join(row(150, c2="\udcff")[:3])  # malformed and undecodable: pyarrow stops
    path = tmp_path / "r.csv"
    write(path, lines)
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, 1000)
    assert not serially
    # the serial reader failed when it opened the file, after reporting the malformed lines
    # before: they are reported once, and the lines after them keep their numbers
    assert sliced["lines"] == list(range(2, 152, 2)) + list(range(154, 202, 2))
    assert [r[0] for r in sliced["rejects"]] == sorted([*range(3, 202, 2), 152])
    assert (152, None, "91410100MA44MPDT7X,郑州某化工有限公司,\\xff", "malformed line: 3 fields, expected 9") \
        in sliced["rejects"]


def test_the_sentinel_counts_the_rows_of_a_slice_without_its_empty_lines():
    data = b"a,b\n\n\r\nc\n\"x\ny\",z\n" + b",,\n"
    options = _sources_options()
    parsed = _csv_slices._parse(memoryview(data), ",,", options, threading.Event())
    assert parsed.rows_counted == 3 and parsed.malformed == [(2, "c", 1)]
    assert parsed.table.num_rows == 2
    with pytest.raises(_csv_slices.SlicesFailed, match="open across"):
        _csv_slices._parse(memoryview(b'a,"b\n' + b",,\n"), ",,", options, threading.Event())


def _sources_options():
    import pyarrow.csv as pacsv

    def options(on_invalid, block_size):
        return (pacsv.ReadOptions(column_names=["x", "y"], use_threads=False, block_size=block_size),
                pacsv.ParseOptions(invalid_row_handler=on_invalid),
                pacsv.ConvertOptions(column_types={"x": pa.string(), "y": pa.string()}))
    return options


def test_a_file_with_carriage_returns_only_is_read_serially(tmp_path, monkeypatch, caplog):
    """pyarrow ends a row at a lone \\r too; slices are cut only after \\n, so such a file
    (old Mac exports) is not cut at all."""
    path = tmp_path / "r.csv"
    path.write_bytes("\r".join([",".join(HEADER)] + [lines_of(k, i) for i, k in enumerate(["good", "short"] * 30)])
                     .encode() + b"\r")
    sliced, serially = sliced_and_serial(path, monkeypatch, caplog, 1000)
    assert serially and "header line" in serially[0]
    assert sliced["lines"][:3] == [2, 4, 6] and len(sliced["rejects"]) == 30


@pytest.mark.parametrize("seed", range(10))
def test_undecodable_bytes_become_what_the_serial_readers_decoder_gives(seed):
    """The slice's bytes, its undecodable ones as private-use characters, equal decoding the
    slice as the serial reader does (engine/_sources.py's codec) and encoding it again: text
    with broken characters, then bytes drawn at random, whose every byte value and the
    sequences Python's decoder refuses (overlong, surrogates, past U+10FFFF, cut short at the
    end) the C scan must judge alike."""
    rng = np.random.default_rng(seed)
    pieces = [b"abc,", "金水区".encode(), b"\xff", "郑".encode()[:2], b"\n", "\U0001f600".encode()[:3], b"\x80\x80",
              b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xf5\x80", b"12345678"]
    samples = [b"".join(pieces[k] for k in rng.integers(0, len(pieces), 40)),
               rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
               rng.integers(0x80, 0xF6, 400, dtype=np.uint8).tobytes(), b"", "金".encode()[:1]]
    for data in samples:
        want = codecs.decode(data, "utf-8", _sources._UNDECODABLE).encode("utf-8")
        got = private_use_bytes(memoryview(data))
        assert got == (None if want == data else want)


def test_private_use_leads_are_where_undecodable_bytes_were_written():
    """The cells of a slice read decoded that hold an undecodable byte are found by memchr:
    each private-use character written for a byte (EF 9E/9F ..) is found, at its position,
    and nothing else is: not other characters beginning EF (full-width forms, EF BC ..)."""
    data = "，金水区".encode() + b"\xff,ab" + "！".encode() + b"\x80\n" + b"x" * 40 + b"\xfe"
    written = private_use_bytes(memoryview(data))
    leads = private_use_leads(memoryview(written))
    assert leads == [i for i in range(len(written) - 1) if written[i] == 0xEF and 0x9C <= written[i + 1] <= 0x9F]
    assert [written[i: i + 3].decode() for i in leads] == ["\uf7ff", "\uf780", "\uf7fe"]
    assert private_use_leads(memoryview("，！ＡＢ".encode())) is None and private_use_leads(memoryview(b"")) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("large", [False, True])
def test_private_use_restored_gives_each_undecodable_byte_back(seed, large):
    """Each cell of a decoded slice's column holds, after _restored, the bytes it held in the
    file: every private-use character of an undecodable byte (U+F780-U+F7FF) turned back into
    its byte, the rest as it was (other characters beginning EF, the private-use characters
    U+F700-U+F77F no byte stands for), nulls and an array's offset kept; a column without
    such a character is the same array. The reference is Python's surrogateescape round trip."""
    rng = np.random.default_rng(seed)
    pieces = ["a", "金水区", "\uf7ff", "\uf780", "\uf7c1", "\uf700", "\uf77f", "，", "！", "", "1,5"]
    cells = ["".join(pieces[k] for k in rng.integers(0, len(pieces), rng.integers(0, 5))) for _ in range(300)]
    cells = [None if rng.random() < 0.05 else cell for cell in cells]
    column = pa.array(cells, pa.large_string() if large else pa.string()).slice(7, 250)
    got = _csv_slices._restored(column)
    as_bytes = {0xF700 + byte: 0xDC00 + byte for byte in range(0x80, 0x100)}
    want = [None if cell is None else cell.translate(as_bytes).encode("utf-8", "surrogateescape")
            for cell in cells[7:257]]
    got.validate(full=False)
    assert got.cast(pa.large_binary() if large else pa.binary()).to_pylist() == want
    clean = pa.array(["，金", None, "\uf700x", "b"]).slice(1)
    assert _csv_slices._restored(clean) is clean


def _mended_reference(data: bytes, fields: int) -> bytes:
    """Each line with another count of fields than ``fields`` (not empty) as private_use_bytes
    writes it, every other line as it is."""
    lines = data.split(b"\n")
    return b"\n".join((private_use_bytes(memoryview(line)) or line)
                      if line and line.count(b",") + 1 != fields else line for line in lines)


@pytest.mark.parametrize("seed", range(8))
def test_only_malformed_lines_have_their_undecodable_bytes_written(seed):
    """malformed_lines_mended writes the undecodable bytes of the malformed lines alone (the
    lines pyarrow decodes for its handler, and fails on), with the same characters as the
    whole slice decoded: a well-formed line with an undecodable cell keeps its bytes; lines
    of any length (the scan goes sixteen bytes at a time: lines of 0-40 separators, separators
    at every position of a block), CRLF line ends, an empty last line, no line end at the end."""
    rng = np.random.default_rng(seed)
    kinds = ["good", "short", "long", "empty", "blank", "bad utf-8 cell", "bad utf-8 short", "bad utf-8 long"]
    lines = [lines_of(kinds[k], i) for i, k in enumerate(rng.integers(0, len(kinds), 300))]
    lines += [",".join(["x" * int(rng.integers(0, 9))] * int(rng.integers(1, 42))) + "\udcff" for _ in range(60)]
    rng.shuffle(lines)
    newline = "\r\n" if seed % 2 else "\n"
    data = (newline.join(lines) + (newline if seed % 3 else "")).encode("utf-8", "surrogateescape")
    known, mended = malformed_lines_mended(memoryview(data), ord(","), 9)
    want = _mended_reference(data, 9)
    assert known and mended == (None if want == data else want)
    assert mended is not None  # a short line with an undecodable byte was drawn
    assert malformed_lines_mended(memoryview(data.replace(b"\xff", b"")), ord(","), 0) == (False, None)


@pytest.mark.parametrize("size", [15, 16, 17, 31, 32, 33, 47, 70])
def test_the_scan_finds_line_ends_quotes_and_crs_at_every_place_of_a_block(size):
    """The scan takes sixteen bytes at once (then the last few one by one): a line end, a
    separator, a quote or a lone CR is found wherever it falls, first or last of a block, in
    the tail, or after the malformed lines; a CR ending a line (or the slice) is a line end."""
    short = b"a,b\xff"  # malformed (2 fields of 3) and undecodable: mended wherever it lies
    for at in range(size + 1):
        text = b"x" * at + b"\n" + short + b"\n" + b"y,z" * 3
        data = text[:size] if at + 1 + len(short) > size else text
        known, mended = malformed_lines_mended(memoryview(data), ord(","), 3)
        want = _mended_reference(data, 3)
        assert known and mended == (None if want == data else want), (at, data)
        for odd in (b'"', b"\rz"):
            spoiled = data[:at] + odd + data[at:]
            assert malformed_lines_mended(memoryview(spoiled), ord(","), 3) == (False, None), (at, spoiled)
        ended = data[:at] + b"\r\n" + data[at:]
        assert malformed_lines_mended(memoryview(ended), ord(","), 3)[0], (at, ended)
    assert malformed_lines_mended(memoryview(b"a,b\xff\r"), ord(","), 3) == (True, b"a,b\xef\x9f\xbf\r")


def test_lines_the_separators_cannot_tell_are_left_to_the_whole_slice_decoded():
    """A quote (a separator or a line end inside a quoted value) or a CR that does not end a
    line (pyarrow ends a row there): the count cannot tell the fields, so the slice is read
    decoded whole; a CR before a line end, or last, is a line end."""
    short = ",".join(row(1)[:3]).encode() + b"\xff"
    assert malformed_lines_mended(memoryview(b'"a,b"\n' + short), ord(","), 9) == (False, None)
    assert malformed_lines_mended(memoryview(b"a\rb\n" + short), ord(","), 9) == (False, None)
    known, mended = malformed_lines_mended(memoryview(short + b"\r\n" + short + b"\r"), ord(","), 9)
    assert known and mended.count("\uf7ff".encode()) == 2
    assert malformed_lines_mended(memoryview(b""), ord(","), 9) == (True, None)
    assert malformed_lines_mended(memoryview(b"a,b\n\n"), ord(","), 9) == (True, None)
