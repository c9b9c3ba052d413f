"""一例一次 read a partition at a time (engine/cases/_remembered.py): the memory of earlier
runs sorted into the spilled case table's buckets gives, over tiny partitions, what the whole
memory gives over one partition, night after night, and a partition holds only its own.

The world of test_assessed_once (the test policies of tests/data/cases, decision dates, acts):
day 1 assesses, day 2 finds everything already assessed, day 3 lists a new case, cases moved
to another enterprise (their uscc corrected: another partition), other decision dates,
--reassess of some, day 4 --reassess of all.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from ecorules.engine._nightly import run_nightly
from ecorules.engine.cases import _assessed, _spill
from test_assessed_once import A, B, C, D, make_world, write_cases

TINY = 40  # rows of a partition: a dozen partitions of the world's 402 rows


def _days(world: dict) -> list[tuple[dt.date, pa.Table, dict]]:
    """(as_of, case table, options) of four nights (see the module)."""
    table = world["table"]
    rows = table.to_pylist()
    usccs = sorted({r["uscc"] for r in rows})
    changed = [dict(r) for r in rows]
    for k in range(3, 60, 6):  # moved: another enterprise's case now, same case_id and decision date
        changed[k]["uscc"] = usccs[(usccs.index(changed[k]["uscc"]) + 7) % len(usccs)]
    for k in range(100, 160, 5):  # a new decision
        changed[k]["decided"] = "2025-09-09"
    new = dict(rows[10], case_id="NEW-1", act_id=None)
    third = pa.Table.from_pylist([*changed, new], schema=table.schema)
    some = [rows[k]["case_id"] for k in range(200, 260, 4)]
    return [(A, table, {}), (B, table, {}), (C, third, {"reassess": some}), (D, third, {"reassess": True})]


def _nights(world: dict, db, partition_rows: int, monkeypatch, entered: list | None = None) -> list[tuple]:
    found = []
    with monkeypatch.context() as patch:
        patch.setattr(_spill, "PARTITION_ROWS", partition_rows)
        if entered is not None:
            enter = _assessed.Assessments.enter

            def counted(self, buckets=None):
                enter(self, buckets)
                entered.append((buckets, sum(len(r.case_ids) for r in self.remembered.values())))

            patch.setattr(_assessed.Assessments, "enter", counted)
        for as_of, table, options in _days(world):
            write_cases(table, world["cases"])
            summary = run_nightly(world["registry"], db, policies=world["policies"], as_of=as_of, cases=world["cases"],
                                  threads=1, **options)
            assert summary.status == "done"
            found.append((summary.already_assessed, summary.total_yuan, summary.findings,
                          sorted((d["district"], d["deduction_yuan"], d["cases"]) for d in summary.districts),
                          sorted(summary.warnings)))
    return found


def _stored(db) -> dict[str, list]:
    """The case findings and the memory of every run, as readers see them."""
    from ecorules.engine import store

    connection = store.connect(db, readonly=True) if store.is_url(str(db)) else sqlite3.connect(db)
    try:
        findings = connection.execute(
            "SELECT run_id, case_id, uscc, policy, rule, kind, amount_yuan, status, superseded_by, assessed_in_run, "
            "payer, law_note FROM findings WHERE case_id IS NOT NULL").fetchall()
        memory = connection.execute("SELECT * FROM assessed").fetchall()
    finally:
        connection.close()
    def plain(row) -> tuple:  # (PostgreSQL's amounts are Decimals)
        return tuple(int(v) if isinstance(v, Decimal) and v == int(v) else v for v in row)

    return {"findings": sorted(map(plain, findings), key=repr), "memory": sorted(map(plain, memory), key=repr)}


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path, enterprises=80, cases=400)


def test_tiny_partitions_remember_what_one_partition_remembers_night_after_night(world, monkeypatch):
    whole = _nights(world, world["folder"] / "whole.sqlite", 1 << 30, monkeypatch)
    entered: list = []
    parted = _nights(world, world["folder"] / "parted.sqlite", TINY, monkeypatch, entered)
    assert parted == whole
    assert _stored(world["folder"] / "parted.sqlite") == _stored(world["folder"] / "whole.sqlite")
    already = [night[0] for night in whole]
    assert already[0] == 0 and already[1] > 300 and 0 < already[2] < already[1] and already[3] == 0
    # a partition holds its own cases' assessments, not the memory's
    later = [n for _, n in entered if n]
    assert len(later) > 10 and all(buckets is not None for buckets, _ in entered)
    assert max(later) < already[1] / 4  # (read whole: every partition would hold them all)


def test_a_moved_case_is_already_assessed_in_its_new_partition(world, monkeypatch):
    db = world["folder"] / "parted.sqlite"
    _nights(world, db, TINY, monkeypatch)
    connection = sqlite3.connect(db)
    try:
        runs = [r for (r,) in connection.execute("SELECT id FROM runs ORDER BY id")]
        moved = world["table"].to_pylist()
        statuses = dict(connection.execute(
            "SELECT case_id || '/' || rule || '/' || kind, status FROM findings WHERE run_id = ? AND case_id IS NOT NULL",
            (runs[2],)).fetchall())
    finally:
        connection.close()
    count = _spill.bucket_count(len(moved) + 1, TINY)
    usccs = sorted({r["uscc"] for r in moved})
    crossed = 0
    for k in range(3, 60, 6):
        before = moved[k]["uscc"]
        after = usccs[(usccs.index(before) + 7) % len(usccs)]
        mine = {key: status for key, status in statuses.items() if key.startswith(moved[k]["case_id"] + "/")}
        buckets = _spill.buckets_of(pa.array([before, after]), count)
        crossed += int(buckets[0] != buckets[1])
        # imposed on day 1 (none of them reassessed): reported, never assessed again
        assert "imposed" not in mine.values()
    assert crossed >= 3


def test_postgresql_reads_the_memory_a_partition_at_a_time_as_sqlite(world, postgres_db, monkeypatch):
    from test_store_postgres import in_schema

    pg = in_schema(postgres_db, "ecorules")
    on_sqlite = _nights(world, world["folder"] / "parted.sqlite", TINY, monkeypatch)
    on_postgres = _nights(world, pg, TINY, monkeypatch)
    assert on_postgres == on_sqlite
    ids = {"sqlite": _stored(world["folder"] / "parted.sqlite"), "postgres": _stored(pg)}
    assert ids["postgres"] == ids["sqlite"]
    assert np.count_nonzero([f[7] == "already_assessed" for f in ids["postgres"]["findings"]]) > 300


def test_a_table_of_one_bucket_meets_the_memory_whole_unrouted(world, monkeypatch):
    """One bucket is one partition: the memory is read whole for it, never routed (no case_id
    buckets, no join with the table's case_ids), and it remembers what tiny partitions do."""
    routed: list[bool] = []
    enter = _assessed.Assessments.enter

    def seen(self, buckets=None):
        routed.append(self.source.routed)
        enter(self, buckets)

    with monkeypatch.context() as patch:
        patch.setattr(_assessed.Assessments, "enter", seen)
        whole = _nights(world, world["folder"] / "whole.sqlite", 1 << 30, monkeypatch)
    assert routed and not any(routed)
    parted = _nights(world, world["folder"] / "parted.sqlite", TINY, monkeypatch)
    assert whole == parted
    assert _stored(world["folder"] / "whole.sqlite") == _stored(world["folder"] / "parted.sqlite")


def test_a_memory_far_larger_than_a_table_of_one_bucket_is_routed(world, monkeypatch):
    """A table of one bucket against a memory of more than ``_WHOLE_PER_CASE`` assessments a
    case (here: any) is routed as any table's, holding what it needs, and remembers what the
    memory read whole does."""
    from ecorules.engine.cases import _remembered

    routed: list[bool] = []
    enter = _assessed.Assessments.enter

    def seen(self, buckets=None):
        routed.append(self.source.routed)
        enter(self, buckets)

    whole = _nights(world, world["folder"] / "whole.sqlite", 1 << 30, monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(_remembered, "_WHOLE_PER_CASE", 0)
        patch.setattr(_remembered, "_WHOLE_LEAST", 0)
        patch.setattr(_assessed.Assessments, "enter", seen)
        routed_nights = _nights(world, world["folder"] / "routed.sqlite", 1 << 30, monkeypatch)
    assert routed_nights == whole
    assert _stored(world["folder"] / "routed.sqlite") == _stored(world["folder"] / "whole.sqlite")
    assert routed[0] is False and routed[1:] and all(routed[1:])  # (the first night remembers nothing)
