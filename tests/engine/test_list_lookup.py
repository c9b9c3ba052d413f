"""The list state compares keys a bucket at a time (engine/_lists._index_in): same answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.engine import _lists
from ecorules.engine._lists import lists_as_of
from ecorules.engine._nightly import run_nightly
from nightly_data import usccs

HEADER = "uscc,name,district,industrial,untreated_outfalls,direct_discharge_cases,illegal_discharge_cases,high_pollution,high_energy"


def test_a_lookup_by_buckets_finds_what_one_lookup_finds(monkeypatch):
    rng = np.random.default_rng(2)
    codes = usccs(rng, 300).tolist() + ["金水区", "二七", "x"]  # keys of other kinds are shorter
    keys = pa.array([f"{codes[i]}\x1f{rng.integers(1, 4)}\x1f" for i in rng.integers(0, len(codes), 500)])
    value_set = pa.concat_arrays([keys.slice(100, 250), keys])  # repeats, and keys before their first
    expected = pc.index_in(keys, value_set=value_set).to_numpy(zero_copy_only=False)
    monkeypatch.setattr(_lists, "KEYS_PER_LOOKUP", 40)
    got = _lists._index_in(keys, value_set)
    assert got.tolist() == np.where(np.isnan(expected.astype(float)), -1, expected).astype(np.int64).tolist()


def test_entries_kept_and_ended_alike_when_compared_by_buckets(tmp_path, monkeypatch):
    codes = usccs(np.random.default_rng(6), 60).tolist()

    def registry(path, listed):  # listed(k): whether row k's facts put it on the lists
        lines = [f"{c},示例,金水区,true,{k % 3},{k % 2 if listed(k) else 0},{k % 4 if listed(k) else 0},"
                 f"{'true' if listed(k) and k % 5 else 'false'},false" for k, c in enumerate(codes)]
        path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
        return path

    first = registry(tmp_path / "first.csv", lambda k: k < 45)
    second = registry(tmp_path / "second.csv", lambda k: k >= 20)  # some no longer justified, others new
    states = []
    for per_lookup in (_lists.KEYS_PER_LOOKUP, 7):
        monkeypatch.setattr(_lists, "KEYS_PER_LOOKUP", per_lookup)
        db = tmp_path / f"out-{per_lookup}.sqlite"
        run_nightly(first, db, as_of=dt.date(2012, 4, 14), progress=False)
        summary = run_nightly(second, db, as_of=dt.date(2012, 5, 14), progress=False)
        states.append((summary.lists, lists_as_of(db, dt.date(2012, 5, 14))))
    assert states[0] == states[1]
    report = states[0][1]
    assert report["on_list"] and report["ended"]  # the second run kept, entered and ended entries
