"""Districts as registries write them: a management committee's staff type 郑州经开区管委会 or
经开区, others leave full-width spaces. The nightly run books every such row to the catalogue's
name, in the totals and in the findings; a name that matches nothing is a reject naming the
closest allowed value. The batch kernel and the single-case Evaluator read the rows alike."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from ecorules.engine import Evaluator, RecordError
from ecorules.engine._nightly import EXIT_REJECTS, run_nightly
from ecorules.rules import load_policies
from nightly_data import COLUMNS, usccs
from nightly_standin import scorer

AS_OF = dt.date(2012, 4, 14)
COMPILE = scorer()
UNKNOWN = "郑州经开管委"
SUGGESTION = f"'{UNKNOWN}' is not an allowed 所属区县: did you mean 郑州经济技术开发区?"

# district as written, industrial, untreated outfalls, direct discharge cases
ROWS = [
    ("郑州经开区管委会", False, 3, 0),  # 3 x 1,000,000 to 郑州经济技术开发区
    ("经开区", True, 0, 1),  # 10,000,000 to 郑州经济技术开发区
    ("\u3000金水区 ", False, 1, 0),  # 1,000,000 to 金水区
    ("郑州高新区（管委会）", False, 2, 0),  # 2,000,000 to 郑州高新技术产业开发区
    (UNKNOWN, False, 5, 0),  # a reject: no district to book it to
    ("郑 东 新 区", True, 0, 0),  # clean
    ("郑州经开区管委会", False, 1, 0),  # 1,000,000 more to 郑州经济技术开发区
]
TOTALS = {"郑州经济技术开发区": (14_000_000, 3), "金水区": (1_000_000, 1), "郑州高新技术产业开发区": (2_000_000, 1)}


def registry(dictionary: bool) -> pa.Table:
    codes = usccs(np.random.default_rng(7), len(ROWS))
    districts = pa.array([row[0] for row in ROWS])
    return pa.table({
        "uscc": codes,
        "name": [f"郑州测试{i}有限公司" for i in range(len(ROWS))],
        "district": districts.dictionary_encode() if dictionary else districts,
        "industrial": [row[1] for row in ROWS],
        "untreated_outfalls": [row[2] for row in ROWS],
        "direct_discharge_cases": [row[3] for row in ROWS],
        "illegal_discharge_cases": [0] * len(ROWS),
        "high_pollution": [False] * len(ROWS),
        "high_energy": [False] * len(ROWS),
    }).select(list(COLUMNS))


@pytest.fixture(params=["csv", "parquet"])
def source(request, tmp_path):
    if request.param == "csv":
        path = tmp_path / "r.csv"
        pacsv.write_csv(registry(dictionary=False), path)
    else:
        path = tmp_path / "r.parquet"
        table = registry(dictionary=True)
        assert pa.types.is_dictionary(table.schema.field("district").type)
        pq.write_table(table, path, row_group_size=3)  # batches with dictionaries of their own
    return path


def test_districts_as_written_are_booked_to_their_catalogue_names(source, tmp_path):
    db = tmp_path / "out.sqlite"
    summary = run_nightly(source, db, as_of=AS_OF, compile_program=COMPILE, progress=False, batch_rows=4)
    connection = sqlite3.connect(db)
    totals = {d: (y, c) for d, y, c in connection.execute(
        "SELECT district, deduction_yuan, cases FROM district_totals WHERE run_id = ?", (summary.run_id,))}
    assert totals == TOTALS
    assert summary.total_yuan == sum(y for y, _ in TOTALS.values())
    payers = connection.execute("SELECT payer, sum(amount_yuan) FROM findings GROUP BY payer").fetchall()
    assert dict(payers) == {d: y for d, (y, _) in TOTALS.items()}
    rejects = connection.execute('SELECT row, "column", value, reason FROM rejects').fetchall()
    assert rejects == [(6 if source.suffix == ".csv" else 5, "district", UNKNOWN, SUGGESTION)]
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (len(ROWS), len(ROWS) - 1, 1)
    assert summary.exit_code == EXIT_REJECTS
    assert f"district: {SUGGESTION}" in summary.render_text()  # as the reject says it, value and all


def test_the_kernel_and_the_evaluator_read_the_rows_alike():
    from ecorules.fastcalc import compile_program  # the kernel itself, never the stand-in

    table = registry(dictionary=True)
    result = compile_program(load_policies(), domain="enterprise").score(table, as_of=AS_OF)
    rejected = {int(row): reason for row, reason in zip(result.reject_rows, result.reject_reasons, strict=True)}
    payers = {}
    for part in result.payer_totals:
        for label, yuan in zip(part.labels, part.yuan.tolist(), strict=True):
            if yuan:
                payers[label] = payers.get(label, 0) + yuan
    expected_payers, expected_rejects, expected_yuan = {}, {}, [0] * len(ROWS)
    with Evaluator(load_policies(), backend="python") as evaluator:
        for row, record in enumerate(table.to_pylist()):
            try:
                decision = evaluator.evaluate(record, as_of=AS_OF)
            except RecordError as error:
                expected_rejects[row] = error.message
                continue
            expected_yuan[row] = decision.total_yuan
            for finding in decision.findings:
                expected_payers[finding.payer] = expected_payers.get(finding.payer, 0) + finding.amount_yuan
    assert rejected == expected_rejects == {4: SUGGESTION}
    assert payers == expected_payers == {d: y for d, (y, _) in TOTALS.items()}
    assert result.total_yuan.tolist() == expected_yuan
