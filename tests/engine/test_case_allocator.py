"""The case stage's allocator setting (engine/cases/_memory.py) is the CLI's alone.

glibc's thresholds belong to the whole process: a host system embedding run_nightly must find
its allocator as it left it, while `ecorules run`, which owns its process, may tune it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecorules.engine._cli import main
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases import _memory

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


class RecordingLibc:
    def __init__(self):
        self.calls: list[tuple] = []

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch):
    recording = RecordingLibc()
    monkeypatch.setattr(_memory, "_glibc", lambda: recording)
    return recording


def test_the_library_leaves_the_process_allocator_alone(libc, tmp_path):
    summary = run_nightly(EXAMPLES / "registry.csv", tmp_path / "r.sqlite", as_of=dt.date(2025, 6, 30),
                          cases=EXAMPLES / "cases.csv")
    assert summary.tables["cases"]["rows_scored"] == 7
    assert libc.calls == []


def test_the_cli_tunes_it_for_the_case_stage_and_sets_the_defaults_again(libc, tmp_path):
    result = CliRunner().invoke(main, [
        "run", "--registry", str(EXAMPLES / "registry.csv"), "--cases", str(EXAMPLES / "cases.csv"),
        "--out", str(tmp_path / "r.sqlite"), "--as-of", "2025-06-30",
    ])
    assert result.exit_code == 0, result.output
    assert libc.calls[0] == ("mallopt", _memory._M_MMAP_THRESHOLD, _memory._LARGEST_HEAP_BLOCK)
    assert libc.calls[-3:] == [
        ("mallopt", _memory._M_MMAP_THRESHOLD, _memory._DEFAULT_THRESHOLD),
        ("mallopt", _memory._M_TRIM_THRESHOLD, _memory._DEFAULT_THRESHOLD),
        ("malloc_trim", 0),
    ]
