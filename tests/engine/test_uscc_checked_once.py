"""Each USCC of the registry is checked once: by the duplicate check while reading, which tells
the scorer (``Batch.checked``) when every code of a batch passed, so that it does not check
them again; in a batch holding invalid codes the scorer checks those rows only
(``Batch.suspects``), with the rejects it gave when it checked them all, and every row again
if the column is no longer the one the check saw."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from ecorules.engine._duplicates import DuplicateFilter
from ecorules.engine._scored import make_scoring, score_batch
from ecorules.engine._seen_keys import SeenUsccs
from ecorules.engine.sources._types import Batch
from ecorules.fastcalc import compile_program
from ecorules.rules import _uscc as uscc_module
from ecorules.rules import load_policies
from nightly_data import make_registry

POLICIES = load_policies().for_domain("enterprise")
AS_OF = dt.date(2012, 4, 14)


def _batch(table: pa.Table) -> Batch:
    return Batch(table, "registry.csv", np.arange(2, table.num_rows + 2, dtype=np.int64),
                 {name: name for name in table.column_names}, [], table.num_rows)


def _read(table: pa.Table) -> Batch:
    """A batch as the run's reading hands it to the scorer: through the duplicate check."""
    keys = DuplicateFilter(POLICIES.facts["uscc"], None, "reject", POLICIES.facts, seen=SeenUsccs(table.num_rows))
    return keys.apply(_batch(table))


def _scored(batch: Batch):
    scoring = make_scoring(POLICIES, "enterprise", "uscc", compile_program, domain="enterprise")
    return score_batch(scoring, batch, as_of=AS_OF)


def _checks_in_scoring(monkeypatch, batch: Batch) -> tuple[object, int]:
    """The scored batch, and how many codes the scorer checked."""
    checked = []
    original = uscc_module.uscc_problems

    def counting(codes):
        checked.append(len(codes))
        return original(codes)

    monkeypatch.setattr(uscc_module, "uscc_problems", counting)
    scored = _scored(batch)
    monkeypatch.setattr(uscc_module, "uscc_problems", original)
    return scored, sum(checked)


def _ledger(scored) -> tuple:
    return (scored.rows_in, scored.rows_scored, scored.rows_rejected, scored.total_fen, scored.districts,
            [(p.slot, p.subjects.to_pylist(), p.amounts.to_pylist(), p.payers.to_pylist()) for p in scored.findings],
            [(p.slot, p.keys.to_pylist()) for p in scored.entries], scored.reject_rows())


def test_codes_all_valid_are_checked_while_reading_and_not_again_with_the_same_results(monkeypatch):
    table = make_registry(500, seed=3, case_share=0.3)
    batch = _read(table)
    assert batch.checked == {"uscc"}
    scored, checked_again = _checks_in_scoring(monkeypatch, batch)
    assert checked_again == 0
    assert scored.findings  # the trusted column still names the findings' enterprises
    assert _ledger(scored) == _ledger(_scored(_batch(table)))  # as when the scorer checks them itself


def test_a_batch_with_an_invalid_code_is_checked_by_the_scorer_and_its_row_rejected(monkeypatch):
    table = make_registry(500, seed=4, case_share=0.3)
    codes = table["uscc"].to_pylist()
    codes[7] = codes[7][:17] + ("1" if codes[7][17] != "1" else "2")  # a wrong check character
    table = table.set_column(table.column_names.index("uscc"), "uscc", pa.array(codes))
    batch = _read(table)
    assert batch.checked == frozenset()
    scored, checked_again = _checks_in_scoring(monkeypatch, batch)
    assert checked_again == 1  # the invalid one, not the 499 the reading found valid
    assert scored.rows_rejected == 1 and [r[1] for r in scored.reject_rows()] == [9]
    assert _ledger(scored) == _ledger(_scored(_batch(table)))


def test_invalid_codes_of_every_kind_are_rejected_as_when_the_scorer_checks_every_row(monkeypatch):
    table = make_registry(3_000, seed=5, case_share=0.3)
    codes = table["uscc"].to_pylist()
    spoiled = {3: None, 40: codes[40][:17], 41: codes[41][:17] + ("1" if codes[41][17] != "1" else "2"),
               500: " " + codes[500], 777: codes[777][:8] + "I" + codes[777][9:], 1200: "９" + codes[1200][1:],
               2999: codes[2999].lower(), 1500: codes[10]}  # 1500: a repeat of row 10, a duplicate
    for row, code in spoiled.items():
        codes[row] = code
    table = table.set_column(table.column_names.index("uscc"), "uscc", pa.array(codes, pa.string()))
    batch = _read(table)
    assert set(batch.suspects) == {"uscc"}
    scored, checked_again = _checks_in_scoring(monkeypatch, batch)
    assert 0 < checked_again < 20
    everything = _read(table)
    everything.suspects = {}  # as before Batch.suspects: the scorer checks every row
    assert _ledger(scored) == _ledger(_scored(everything))
    assert scored.rows_rejected >= 5


def test_a_column_changed_since_the_check_is_checked_whole_again(monkeypatch):
    table = make_registry(500, seed=4, case_share=0.3)
    codes = table["uscc"].to_pylist()
    codes[7] = codes[7][:17] + ("1" if codes[7][17] != "1" else "2")
    table = table.set_column(table.column_names.index("uscc"), "uscc", pa.array(codes))
    batch = _read(table)
    batch.table, batch.rows = batch.table.slice(1), batch.rows[1:]  # a row dropped after the check
    scored, checked_again = _checks_in_scoring(monkeypatch, batch)
    assert checked_again == 499
    assert [r[1] for r in scored.reject_rows()] == [9]
