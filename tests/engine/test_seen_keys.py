"""The USCCs met so far (engine/_seen_keys.py): a filter that never lets a key met pass as new, and
exact decisions from the keys on disk, in the kernel as in numpy."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine import _seen_keys
from ecorules.engine._duplicates import canonical_keys
from ecorules.engine._nightly import run_nightly
from ecorules.engine._seen_keys import KeyFilter, SeenUsccs, key_mix, uscc_codes
from ecorules.rules import load_policies
from ecorules.rules._uscc import check_character, org_check_character
from nightly_data import usccs

FACT = load_policies().facts["uscc"]
HEADER = "uscc,name,district,industrial,untreated_outfalls,direct_discharge_cases,illegal_discharge_cases,high_pollution,high_energy"


def code(first16: str) -> str:
    first17 = first16 + org_check_character(first16[8:16])
    return first17 + check_character(first17)


def in_python(batches: list[list[int]]) -> list[list[bool]]:
    met, out = set(), []
    for values in batches:
        flags = []
        for value in values:
            flags.append(value in met)
            met.add(value)
        out.append(flags)
    return out


@pytest.mark.parametrize("kernel", [True, False])
def test_the_key_filter_holds_every_key_met_before_and_lets_most_new_ones_pass(kernel):
    rng = np.random.default_rng(3)
    batches = [rng.integers(0, 5000, 900).tolist() for _ in range(40)]  # many repeats, within and across batches
    keys = KeyFilter(1 << 12, kernel=kernel)
    heads = np.full(900, 36, np.uint16)  # the set of codes starting 91
    flags = [keys.add(heads, np.array(values, np.uint64))[1].tolist() for values in batches]
    for got, met in zip(flags, in_python(batches), strict=True):
        assert all(maybe for maybe, was in zip(got, met, strict=True) if was)  # never a key met passes as new
    new = [maybe for got, met in zip(flags, in_python(batches), strict=True) for maybe, was in zip(got, met, strict=True)
           if not was]
    assert sum(new) < 0.05 * len(new)  # and the false positives are few
    other = KeyFilter(1 << 12, kernel=not kernel)
    for values in batches:
        mixed, _ = other.add(heads, np.array(values, np.uint64))
        assert mixed.tolist() == key_mix(heads, np.array(values, np.uint64)).tolist()
    assert other.words.tolist() == keys.words.tolist()  # the kernel and numpy set the same bits


def test_the_filter_is_as_large_at_30_million_rows_as_at_10_million():
    assert SeenUsccs(10_000_000).nbytes == SeenUsccs(30_000_000).nbytes == 64 * 2**20
    assert SeenUsccs(10_000).nbytes < SeenUsccs(1_000_000).nbytes < 64 * 2**20


@pytest.mark.parametrize("kernel", [True, False])
def test_codes_of_valid_usccs_are_exact_where_a_digest_would_not_be(kernel):
    # codes that differ only in positions 1-2 (the set number) or in one body character
    keys = [code("9141010012345678"), code("9241010012345678"), code("5141010012345678"),
            code("9141010012345679"), code("0000000000000000"), code("9141010012345678")]
    column, valid = canonical_keys(FACT, pa.array([*keys, "not a code", None]))
    rows = np.arange(2, 10, dtype=np.int64)
    seen = SeenUsccs(4, kernel=kernel)
    held, mixed, places = seen.add(column, valid, "a.csv", rows)
    assert held.tolist() == [5]
    held, mixed, places = seen.add(column, valid, "b.csv", rows)
    assert held.tolist() == [0, 1, 2, 3, 4, 5]
    # the first row of each key, from the spill: all in a.csv, the sixth row's code first on its first row
    assert [seen.place(int(p)) for p in seen.first_places(mixed, places)] == [
        ("a.csv", 2), ("a.csv", 3), ("a.csv", 4), ("a.csv", 5), ("a.csv", 6), ("a.csv", 2)]
    seen.close()
    at, heads, values = uscc_codes(column, valid, kernel)
    assert at.tolist() == [0, 1, 2, 3, 4, 5]
    assert len(set(zip(heads.tolist(), values.tolist(), strict=True))) == 5
    assert uscc_codes(column, valid, not kernel)[2].tolist() == values.tolist()


def _folder_run(tmp_path: Path, name: str, monkeypatch=None, words: int | None = None):
    """A run over a folder of two files whose USCCs repeat within and across them, with the
    filter of ``words`` words (2: nearly every row is held, as if by false positives)."""
    first, second, other = usccs(np.random.default_rng(8), 3).tolist()
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)

    def line(uscc: str) -> str:
        return f"{uscc},郑州示例有限公司,金水区,true,1,0,0,false,false"

    (folder / "a.csv").write_text("\n".join([HEADER, line(first), line(other), line(second)]) + "\n", encoding="utf-8")
    (folder / "b.csv").write_text("\n".join([HEADER, line(second), line(first), line(first)]) + "\n", encoding="utf-8")
    if words is not None:
        monkeypatch.setattr(_seen_keys, "filter_words", lambda rows: words)
    out = tmp_path / f"{name}.sqlite"
    summary = run_nightly(folder, out, as_of=dt.date(2012, 4, 14), progress=False, batch_rows=2)
    connection = sqlite3.connect(out)
    rejects = connection.execute('SELECT source, row, reason FROM rejects ORDER BY source, row').fetchall()
    findings = connection.execute("SELECT uscc, amount_yuan FROM findings ORDER BY uscc").fetchall()
    connection.close()
    return folder, (first, second, other), summary, rejects, findings


@pytest.mark.parametrize("words", [None, 2])
def test_later_rows_in_other_files_of_a_folder_name_their_first_row(tmp_path, monkeypatch, words):
    # with a filter of 2 words, rows held by false positives are scored at the end, exactly
    folder, (first, second, other), summary, rejects, findings = _folder_run(tmp_path, "out", monkeypatch, words)
    a, b = str(folder / "a.csv"), str(folder / "b.csv")
    assert rejects == [
        (b, 2, f"duplicate uscc '{second}': first at row 4 of {a} (one enterprise, one row)"),
        (b, 3, f"duplicate uscc '{first}': first at row 2 of {a} (one enterprise, one row)"),
        (b, 4, f"duplicate uscc '{first}': first at row 2 of {a} (one enterprise, one row)"),
    ]
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (6, 3, 3)
    assert {s["source"]: (s["rows_in"], s["rows_rejected"]) for s in summary.sources} == {a: (3, 0), b: (3, 3)}
    assert sorted(findings) == sorted((code, 1_000_000) for code in (first, second, other))


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_first_places_are_exact_whether_a_batch_kept_its_places_as_a_run_or_wrote_them(monkeypatch, chunk):
    # batches of one file and of another: clean ones (one set, rows one after another: only
    # their first place is kept), ones with a bad code or a skipped line between rows, and
    # ones mixing sets (codes starting 91 and 51): their places are written
    monkeypatch.setattr(_seen_keys, "_READ_RECORDS", chunk)
    rng = np.random.default_rng(21)
    unique = usccs(rng, 60).tolist()
    unique += [code("51" + text[2:16]) for text in unique[:10]]  # another set, same bodies
    seen = SeenUsccs(words=1 << 13)
    first: dict[str, tuple[str, int]] = {}
    for number, (source, shape) in enumerate([("a.csv", "clean"), ("a.csv", "hole"), ("b.csv", "clean"),
                                              ("b.csv", "sets"), ("a.csv", "skipped"), ("b.csv", "clean")]):
        codes = [unique[k] for k in rng.integers(0, 60, 12).tolist()]
        if shape == "sets":
            codes[3] = unique[60 + number]
        if shape == "hole":
            codes[5] = "91410100MA00000000"  # a wrong check character: not valid, not met
        rows = np.arange(12, dtype=np.int64) + 2 + 12 * number
        if shape == "skipped":
            rows[6:] += 1  # a malformed line between two rows
        column, valid = canonical_keys(FACT, pa.array(codes))
        seen.add(column, valid, source, rows)
        for row in np.flatnonzero(valid).tolist():
            first.setdefault(codes[row], (source, int(rows[row])))
    # every key met asked for (held or not: first_places reads the spill for any key)
    column, valid = canonical_keys(FACT, pa.array(list(first)))
    _, heads, values = uscc_codes(column, valid)
    places = heads.astype(np.uint64) << np.uint64(_seen_keys._SET_SHIFT)  # (only a place's set is read)
    firsts = seen.first_places(key_mix(heads, values), places)
    written = seen.spill[1].seek(0, 2) // 8
    seen.close()
    assert [seen.place(int(p)) for p in firsts] == list(first.values())
    assert written == 11 + 12 + 12  # the hole's, the sets' and the skipped line's batches; none of the clean ones
