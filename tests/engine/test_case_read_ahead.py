"""The case stage's input side in threads of its own (engine/cases/_spill.py, _stage._tables):
the spill reads and groups the next batches while this thread codes and writes, and the next
partition is loaded and checked while this one is judged. An error in either thread is
raised in the run, the spill is removed and no thread of it outlives the run."""

from __future__ import annotations

import tempfile
import threading

import pytest
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases import _spill, _stage, _write
from test_case_parts import AS_OF, DATA, _plain_tables


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _spills(tmp_path, monkeypatch):
    spills = tmp_path / "spills"
    spills.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spills))
    return spills


def test_the_next_partition_is_loaded_while_this_one_is_judged(tmp_path, monkeypatch):
    _plain_tables(tmp_path)
    loading = []  # (partition, thread name) as each load begins
    began = [threading.Event() for _ in range(4096)]
    original_load, original_partition = _spill.SpilledCases.load, _write.CaseWriter.partition

    def load(self, buckets):
        loading.append(threading.current_thread().name)
        began[len(loading) - 1].set()
        return original_load(self, buckets)

    seen_ahead = []

    def partition(self, results, buckets=None):
        # the first partition is not handed over until the second's load has begun: without
        # a thread reading ahead it never would (the wait then times out)
        if not seen_ahead:
            seen_ahead.append(began[1].wait(timeout=30))
        original_partition(self, results, buckets)

    monkeypatch.setattr(_spill, "PARTITION_ROWS", 40)
    monkeypatch.setattr(_spill.SpilledCases, "load", load)
    monkeypatch.setattr(_write.CaseWriter, "partition", partition)
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "out.sqlite", policies=DATA, as_of=AS_OF,
                          cases=tmp_path / "cases.csv", threads=2)
    assert summary.status == "done" and len(loading) > 3
    assert seen_ahead == [True]
    assert all(name.startswith("ecorules-case-partition") for name in loading)
    assert not _threads("ecorules-case-partition")


def test_an_error_in_the_spills_reading_thread_is_raised_and_the_spill_removed(tmp_path, monkeypatch):
    _plain_tables(tmp_path)
    spills = _spills(tmp_path, monkeypatch)
    original = _spill.linked_checked
    calls = []

    def fails_on_the_third_batch(fact, column):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise RuntimeError("a batch that cannot be read")
        return original(fact, column)

    monkeypatch.setattr(_spill, "linked_checked", fails_on_the_third_batch)
    with pytest.raises(RuntimeError, match="a batch that cannot be read"):
        run_nightly(tmp_path / "enterprises.csv", tmp_path / "out.sqlite", policies=DATA, as_of=AS_OF,
                    cases=tmp_path / "cases.csv", threads=2, batch_rows=256)
    # (the keys are put in the registry's form in the thread reading the batches, _spill._hashed)
    assert len(calls) == 3 and set(calls) == {"ecorules-case-read"}
    assert not list(spills.iterdir())
    assert not _threads("ecorules-case-spill") and not _threads("ecorules-case-read")


def test_an_error_checking_a_partition_ahead_is_raised_in_its_turn_and_the_spill_removed(tmp_path, monkeypatch):
    _plain_tables(tmp_path)
    spills = _spills(tmp_path, monkeypatch)
    original_check, original_partition = _stage.check_values, _write.CaseWriter.partition
    checked, written = [], []

    def fails_on_the_third(cases, plan, duplicates=None):
        checked.append(cases.n)
        if len(checked) == 3:
            raise RuntimeError("a partition that cannot be checked")
        return original_check(cases, plan, duplicates)

    def partition(self, results, buckets=None):
        written.append(results.rows_in)
        original_partition(self, results, buckets)

    monkeypatch.setattr(_spill, "PARTITION_ROWS", 40)
    monkeypatch.setattr(_stage, "check_values", fails_on_the_third)
    monkeypatch.setattr(_write.CaseWriter, "partition", partition)
    with pytest.raises(RuntimeError, match="a partition that cannot be checked"):
        run_nightly(tmp_path / "enterprises.csv", tmp_path / "out.sqlite", policies=DATA, as_of=AS_OF,
                    cases=tmp_path / "cases.csv", threads=2)
    assert len(written) == 2  # the partitions before it were judged and handed over, in order
    assert not list(spills.iterdir())
    assert not _threads("ecorules-case-partition")


def test_partitions_after_the_first_are_linked_and_their_windows_ordered_while_the_one_before_is_judged(
        tmp_path, monkeypatch):
    from ecorules.engine.cases import _rollups
    from test_case_parts import _stored

    _plain_tables(tmp_path)
    monkeypatch.setattr(_spill, "PARTITION_ROWS", 40)
    original_window, original_link = _rollups._window, _stage.link
    windows, links = [], []

    def window(*given):
        windows.append(threading.current_thread().name)
        return original_window(*given)

    def link(*given, **options):
        links.append(threading.current_thread().name)
        return original_link(*given, **options)

    monkeypatch.setattr(_rollups, "_window", window)
    monkeypatch.setattr(_stage, "link", link)
    summary = run_nightly(tmp_path / "enterprises.csv", tmp_path / "ahead.sqlite", policies=DATA, as_of=AS_OF,
                          cases=tmp_path / "cases.csv", threads=2)
    # the first partition is loaded before the enterprises are read: linked by the judging thread
    assert links[0] == "MainThread" and len(links) > 10
    assert all(name.startswith("ecorules-case-partition") for name in links[1:])
    # a partition's windows ordered ahead are used unless a case was rejected since (a check
    # the kernel found failing): the judging thread orders only those again
    ahead = [name for name in windows if name.startswith("ecorules-case-partition")]
    assert len(ahead) >= len(links) - 1 and windows.count("MainThread") < len(links) // 2

    # the same results as linking and ordering every partition in the judging thread
    monkeypatch.setattr(_stage.CaseStage, "_ahead", lambda self, cases, side: None)
    again = run_nightly(tmp_path / "enterprises.csv", tmp_path / "judged.sqlite", policies=DATA, as_of=AS_OF,
                        cases=tmp_path / "cases.csv", threads=2)
    assert _stored(tmp_path / "ahead.sqlite", summary.run_id) == _stored(tmp_path / "judged.sqlite", again.run_id)
    assert (summary.rows_scored, summary.rows_rejected, summary.findings) == (
        again.rows_scored, again.rows_rejected, again.findings)
