"""The memory of assessments read from a chunk's JSON in C (engine/cases/_memory_rows.pyx) gives
the rows json.loads gave (``_remembered._table``), and leaves to it every chunk it does not read."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from ecorules.engine.cases import _remembered
from ecorules.engine.cases._memory_rows import assessment_columns

CASE, V13, CHUNK = _remembered._CASE_PLACES, _remembered._V13_PLACES, _remembered._CHUNK_PLACES
USCC = "91410100532690858K"

# rows of a case slot (store version 14's layout): imposed ones (assessments), superseded and
# already assessed ones (status 1, 2: not), one without a case (not), texts to be unescaped
CASE_ROWS = [
    [USCC, 300000, "C1", None, "A0"],
    [USCC, 100000, "C2", None, None, None, 1, "test.fines@1 art83 (C9)"],
    [USCC, 0, "C3", None, None, None, 2, None, 1],
    [USCC, 50000, "C4", "二七区", "A\"1\\", "2024-03-01"],
    [USCC, 50000, None],
    [USCC, 7, "C5", None, None, "", None, None, None, None, 4, 2],
    [USCC, -3, "案件\u00e9\U0001f600\n\t/", None, "", None, None],
    [USCC, 8, "C6", None, None, None, 0],
    [USCC, 9, "", "x"],
]
V13_ROWS = [
    [USCC, 300000, None, "C1", None, None, 0, None, "A0", "2024-01-02"],
    [USCC, 100000, None, "C2", "superseded", "x"],
    [USCC, 1, None, "C3"],
]
CHUNK_ROWS = [
    ["C1", USCC, 300000, "2024-01-02", "first", 0, "A0"],
    ["C2", USCC, 0, "", "withdrawn", 4, ""],
    ["C3", USCC, 5, "", "new decision", 2],
]


def _both(text: str | bytes, at, source: int, fine: bool, unit: str = "yuan"):
    args = (at, 3, 7, source, 10, "2", unit, fine)
    read = _remembered._chunk_table(text, *args)
    parsed = _remembered._table(json.loads(text), *args)
    return read, parsed


@pytest.mark.parametrize("fine", [True, False])
@pytest.mark.parametrize(("rows", "at", "source"), [(CASE_ROWS, CASE, 0), (V13_ROWS, V13, 0), (CHUNK_ROWS, CHUNK, 1)])
@pytest.mark.parametrize("spaced", [False, True])
@pytest.mark.parametrize("ascii_only", [False, True])
def test_a_chunk_reads_as_json_reads_it(rows, at, source, fine, spaced, ascii_only):
    # (PostgreSQL's json functions and json.dumps put spaces after commas; the engine's writer none)
    text = json.dumps(rows, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
    if spaced:
        text = " \n" + text.replace("[", "[ ").replace("]", " ]\r\n") + "\t"
    places = (at.case_id, at.decided, *((at.uscc, at.act_id) if fine else ()), *((4,) if source == 1 else ()))
    assert assessment_columns(text.encode(), places, at.amount if fine else -1, at.case_id,
                              -1 if at.status is None else at.status) is not None  # (not json's reading)
    read, parsed = _both(text, at, source, fine)
    assert read.equals(parsed)
    assert read.num_rows == {0: 5 if at is CASE else 2, 1: 3}[source]


def test_fen_and_an_empty_chunk():
    read, parsed = _both(json.dumps(CHUNK_ROWS), CHUNK, 1, True, unit="fen")
    assert read.equals(parsed) and read["fen"].to_pylist() == [300000, 0, 5]
    for empty in ("[]", " [ ] ", json.dumps([[USCC, 0, "C1", None, None, None, 2]])):
        assert _remembered._chunk_table(empty, CASE, 3, 7, 0, 10, "2", "yuan", True) is None


@pytest.mark.parametrize("text", [
    f'[["{USCC}",1.5,"C1"]]',  # an amount that is not an integer
    f'[["{USCC}",true,"C1"]]',
    f'[["{USCC}",1,"C1",{{"a":1}}]]',
    f'[["{USCC}",1,"C1",null,[1]]]',
    f'[["{USCC}",1,"C1"]',  # cut short
    f'[["{USCC}",1,"C1"]] x',
    f'[["{USCC}",1,"C1\\ud800"]]',  # a lone surrogate
    f'[["{USCC}",99999999999999999999,"C1"]]',  # beyond int64
])
def test_what_the_reader_does_not_read_is_json_s(text):
    at = CASE
    assert assessment_columns(text.encode(), (at.case_id, at.decided, at.uscc, at.act_id), at.amount, at.case_id,
                              at.status) is None
    try:
        parsed = _remembered._table(json.loads(text), at, 3, 7, 0, 10, "2", "yuan", True)
    except (ValueError, TypeError, OverflowError) as error:
        with pytest.raises(type(error)):
            _remembered._chunk_table(text, at, 3, 7, 0, 10, "2", "yuan", True)
    else:
        read = _remembered._chunk_table(text, at, 3, 7, 0, 10, "2", "yuan", True)
        assert read.equals(parsed)


def test_many_rows_of_one_chunk():
    rows = [[USCC, i, f"C{i}", None, f"A{i % 7}" if i % 3 else None, "2024-01-02" if i % 5 else None,
             2 if i % 11 == 0 else None] for i in range(262_144)]
    read, parsed = _both(json.dumps(rows, separators=(",", ":")), CASE, 0, True)
    assert read.equals(parsed) and read.num_rows == 262_144 - len(range(0, 262_144, 11))
    assert isinstance(read["case_id"].chunk(0), pa.StringArray)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("repeated", [True, False])
def test_the_buckets_listing_a_case_are_those_a_join_finds(seed, repeated):
    """``_remembered._listing`` (case_ids coded as route codes them, the memory's first)
    against Arrow's join: a table that repeats case_ids (sorted pairs) and one that does not
    (looked up by code)."""
    import numpy as np
    from ecorules.fastcalc._cases import TextCodes

    rng = np.random.default_rng(seed)
    ids = [f"C{i}" for i in range(40)] + [""]
    pick = lambda n: [None if rng.random() < 0.05 else ids[rng.integers(len(ids))] for _ in range(n)]  # noqa: E731
    case_ids = pa.array(pick(int(rng.integers(0, 120))), pa.string())
    if repeated:
        listed_ids = pa.array(pick(int(rng.integers(1, 200))), pa.string())
    else:
        listed_ids = pa.array([None, *rng.permutation(ids)[:int(rng.integers(1, len(ids)))].tolist()], pa.string())
    listed = pa.table({"case_id": listed_ids, "bucket": pa.array(rng.integers(0, 9, len(listed_ids)), pa.int32())})
    coder = TextCodes()
    case_code = _remembered._coded(coder, case_ids)
    remembered = len(coder)
    listed_code = _remembered._coded(coder, listed_ids)
    listed_code[listed_code >= remembered] = -1
    at, bucket = _remembered._listing(case_code, listed_code, np.asarray(listed["bucket"], np.int64))
    index = pa.table({"case_id": case_ids, "at": pa.array(np.arange(len(case_ids)))})
    joined = index.join(listed.group_by(["case_id", "bucket"]).aggregate([]), "case_id", join_type="inner")
    assert sorted(zip(at.tolist(), bucket.tolist(), strict=True)) == sorted(
        zip(joined["at"].to_pylist(), joined["bucket"].to_pylist(), strict=True))
    assert len(set(zip(at.tolist(), bucket.tolist(), strict=True))) == len(at)
    assert at.tolist() == sorted(at.tolist())


def test_night_after_night_the_memory_is_what_json_read(tmp_path, monkeypatch):
    """The nights of test_assessed_partitions (a second night finding everything assessed, a
    forced rerun of it, a third with moved cases, new decisions and --reassess of some, a
    fourth reassessing all: withdrawals in assessed_chunks), over tiny partitions: the same
    summaries, stored rows and memory per partition as with every chunk parsed by json."""
    from ecorules.engine._nightly import run_nightly
    from ecorules.engine.cases import _assessed, _spill
    from test_assessed_once import make_world, write_cases
    from test_assessed_partitions import TINY, _days, _stored

    world = make_world(tmp_path, enterprises=80, cases=400)
    days = _days(world)
    days.insert(2, (days[1][0], days[1][1], {"force": True}))  # the second night again, forced

    def nights(db, parse_by_json: bool):
        found, entered = [], []
        with monkeypatch.context() as patch:
            patch.setattr(_spill, "PARTITION_ROWS", TINY)
            if parse_by_json:
                patch.setattr(_remembered, "assessment_columns", lambda *args: None)
            enter = _assessed.Assessments.enter

            def kept(self, buckets=None):
                enter(self, buckets)
                entered.append(sorted((key, tuple(m.case_ids.to_pylist()), tuple(m.runs.tolist()),
                                       tuple(m.decided.to_pylist()),
                                       None if m.fines is None else (tuple(m.fines.acts.to_pylist()), tuple(m.fines.fen.tolist())))
                                      for key, m in self.remembered.items()))

            patch.setattr(_assessed.Assessments, "enter", kept)
            for as_of, table, options in days:
                write_cases(table, world["cases"])
                summary = run_nightly(world["registry"], db, policies=world["policies"], as_of=as_of,
                                      cases=world["cases"], threads=1, **options)
                found.append((summary.status, summary.already_assessed, summary.total_yuan, summary.findings,
                              summary.replaced_run))
        return found, entered, _stored(db)

    read = nights(tmp_path / "read.sqlite", parse_by_json=False)
    parsed = nights(tmp_path / "parsed.sqlite", parse_by_json=True)
    assert read == parsed
    found, entered, _ = read
    already = [f[1] for f in found]
    assert already[0] == 0 and already[1] > 300 and already[2] == already[1] and 0 < already[3] < already[1]
    assert already[4] == 0 and found[2][4] is not None  # (the rerun replaced the second night)
    assert sum(len(e) for e in entered) > 40


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("repeats", [True, False])
def test_the_current_assessment_is_the_newest_runs_row(seed, repeats):
    """``_remembered._current`` (on the case_ids' codes; nothing sorted where no (key, case)
    repeats) keeps what a sort of the rows by key, case_id, run (newest first), source and
    read order keeps: per (key, case) its first row unless it withdrew, a null case_id each
    row its own; and the codes it gives are the kept rows' case_ids in its coder."""
    import numpy as np
    from ecorules.fastcalc._cases import TextCodes

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    ids = [None, *(f"C{i}" for i in range(60))]
    if repeats:
        keys, cases = rng.integers(0, 3, n), [ids[k] for k in rng.integers(0, len(ids), n)]
    else:  # (every (key, case) once, nulls aside)
        pairs = rng.permutation(3 * 60)[:min(n, 180)]
        n = pairs.size
        keys, cases = pairs // 60, [None if rng.random() < 0.03 else f"C{p % 60}" for p in pairs]
    rows = pa.table({
        "key": pa.array(keys, pa.int32()), "case_id": pa.array(cases, pa.string()),
        "run": pa.array(rng.integers(1, 4, n), pa.int64()), "source": pa.array(rng.integers(0, 2, n), pa.int8()),
        "seq": pa.array(np.arange(n), pa.int64()), "withdrawn": pa.array(rng.random(n) < 0.2),
    })
    ordered = rows.sort_by([("key", "ascending"), ("case_id", "ascending"), ("run", "descending"),
                            ("source", "ascending"), ("seq", "ascending")]).to_pylist()
    expected, last = [], None
    for row in ordered:
        pair = (row["key"], row["case_id"])
        if row["case_id"] is None or pair != last:
            if not row["withdrawn"]:
                expected.append(row["seq"])
        last = pair
    coder = TextCodes()
    current, codes = _remembered._current(rows, coder)
    assert sorted(current["seq"].to_pylist()) == sorted(expected)
    texts = current["case_id"].to_pylist()
    again = _remembered._coded(coder, current["case_id"])
    assert codes.tolist() == again.tolist() and all((c < 0) == (t is None) for c, t in zip(codes, texts, strict=True))
