"""bench/_spread.py: the interval a bench states for its median ratio (issue 11, point 15's
"with a margin" rests on it), and bench/nightly.py's one-row copy and turned order."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench_module(name: str, monkeypatch):
    """A module of bench/, which is not a package: its folder on sys.path only while the test
    runs. Left there, bench/distributed.py answered every later ``import distributed`` of the
    test run in place of Dask's."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module(name)


@pytest.fixture
def spread(monkeypatch):
    return _bench_module("_spread", monkeypatch)


def _coverage(n: int, k: int) -> float:
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


def test_five_rounds_give_their_range_at_94_percent(spread):
    low, high, cover = spread.median_interval([0.83, 0.76, 0.85, 0.79, 0.81])
    assert (low, high) == (0.76, 0.85)
    assert cover == pytest.approx(_coverage(5, 1)) == pytest.approx(30 / 32)


def test_nine_rounds_drop_the_extremes_and_cover_at_least_90_percent(spread):
    values = [0.90, 0.70, 0.82, 0.84, 0.81, 0.86, 0.83, 0.85, 0.80]
    low, high, cover = spread.median_interval(values)
    assert (low, high) == (0.80, 0.86)  # the 2nd and the 8th of nine
    assert cover == pytest.approx(_coverage(9, 2)) and cover >= 0.9
    assert _coverage(9, 3) < 0.9  # the next narrower one would not


def test_too_few_rounds_say_how_little_they_cover(spread):
    assert spread.median_interval([0.8, 0.9, 0.7]) == (0.7, 0.9, pytest.approx(0.75))
    assert spread.median_interval([0.8]) == (0.8, 0.8, 0.0)
    with pytest.raises(ValueError):
        spread.median_interval([])


def test_described_counts_the_rounds_above_the_target(spread):
    text = spread.described([0.83, 0.76, 0.85, 0.79, 0.81], 0.8)
    assert text.startswith("0.810 (middle half 0.790-0.830, all 0.760-0.850; median within 0.760-0.850 at 94%")
    assert text.endswith("3 of 5 rounds >= 0.8)")
    assert spread.quartiles([0.5]) == (0.5, 0.5)


def test_the_one_row_copy_is_the_header_and_first_row(tmp_path, monkeypatch):
    nightly = _bench_module("nightly", monkeypatch)

    clean = tmp_path / "twin-clean-3.csv"
    clean.write_bytes(b"uscc,name\nA,x\nB,y\nC,z\n")
    one = nightly._one_row_copy(clean)
    assert one.read_bytes() == b"uscc,name\nA,x\n"
    assert nightly._one_row_copy(clean) == one  # kept beside the twins, written once


def test_twins_run_in_turned_order(monkeypatch, tmp_path):
    import argparse

    nightly = _bench_module("nightly", monkeypatch)

    order = []

    def fake_run(path, out, threads, program=None, pythonpath=""):
        order.append(path.name)
        return {"run": 1.0, "cpu": 1.0, "rejected": 0}

    monkeypatch.setattr(nightly, "ecorules_run", fake_run)
    clean, bad = tmp_path / "twin-clean-1.csv", tmp_path / "twin-bad-1.csv"
    clean.write_bytes(b"h\n1\n")
    bad.write_bytes(b"h\n2\n")
    args = argparse.Namespace(build=[], baseline=None, dir=tmp_path, threads=1)
    for round_number in (1, 2):
        nightly._twins("csv", (clean, bad), {}, {}, args, round_number)
    assert order == ["twin-one-row.csv", "twin-clean-1.csv", "twin-bad-1.csv",
                     "twin-one-row.csv", "twin-bad-1.csv", "twin-clean-1.csv"]
