"""The environmental credit policies shipped in policies/zhengzhou (environmental_credit.yaml,
green_credit_red_restriction.yaml) through `ecorules run --cases` and `ecorules lists`:
the rating year's lists from the prior calendar year's cases, and the red grade's loan
restriction, which lasts as long as the grade (the sources give it no term of its own)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecorules.engine import Evaluator, load_policies
from ecorules.engine._cli import main

SHIPPED = Path(__file__).parent.parent.parent / "policies" / "zhengzhou"
REGISTRY = Path(__file__).parent.parent.parent / "examples" / "registry.csv"

COLUMNS = ("case_id", "act_id", "uscc", "clause", "act_date", "act_end", "discovered", "decided", "fine_yuan",
           "into_eco_water", "order_served", "reinspected", "still_violating", "halted", "due", "paid",
           "pollutant_fee_yuan", "direct_loss_yuan", "accident_grade", "harms_life_health_or_finance",
           "exceedance_level", "water_level", "volume_level", "exceedance_multiple", "daily_volume_tonnes",
           "art32_mitigating", "minor_corrected_no_harm")


def _usccs() -> list[str]:
    lines = REGISTRY.read_text(encoding="utf-8").splitlines()[1:5]
    return [line.split(",")[0].strip('"') for line in lines]


def _cases(usccs: list[str]) -> str:
    a, b, c, d = usccs
    rows = [
        # A: a larger accident decided in the prior year: red, rating required, restricted
        dict(case_id="ZZ-2024-301", uscc=a, clause="wppcl2017_art94", act_date="2024-05-01", discovered="2024-05-02",
             decided="2024-08-01", fine_yuan="200000", accident_grade="较大", direct_loss_yuan="1000000"),
        # B: a fine of 50,000 decided on the last day of the prior year: rating required only
        dict(case_id="ZZ-2024-302", uscc=b, clause="wppcl2017_art84_2", act_date="2024-11-01", discovered="2024-11-02",
             decided="2024-12-31", fine_yuan="50000"),
        # C: a major accident decided on the first day of this year: not in the prior year, so
        # neither rated nor red nor restricted this year; all three the next
        dict(case_id="ZZ-2025-303", uscc=c, clause="wppcl2017_art94", act_date="2024-12-01", discovered="2024-12-02",
             decided="2025-01-01", fine_yuan="300000", accident_grade="重大", direct_loss_yuan="1000000"),
        # D: an ordinary accident, 20,000 yuan: nothing
        dict(case_id="ZZ-2024-304", uscc=d, clause="wppcl2017_art94", act_date="2024-03-01", discovered="2024-03-02",
             decided="2024-04-01", fine_yuan="20000", accident_grade="一般", direct_loss_yuan="100000"),
    ]
    return ",".join(COLUMNS) + "\n" + "".join(",".join(row.get(c, "") for c in COLUMNS) + "\n" for row in rows)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("credit")
    usccs = _usccs()
    (folder / "cases.csv").write_text(_cases(usccs), encoding="utf-8")
    return {"folder": folder, "policies": SHIPPED, "usccs": usccs}


def _run(world, db: Path, as_of: str, policies: Path | None = None, *more: str):
    return CliRunner().invoke(main, [
        "run", "--registry", str(REGISTRY), "--cases", str(world["folder"] / "cases.csv"),
        "--policies", str(policies or world["policies"]), "--out", str(db), "--as-of", as_of, "--format", "json", *more])


def _on_lists(db: Path, as_of: str) -> dict:
    result = CliRunner().invoke(main, ["lists", "--db", str(db), "--as-of", as_of, "--format", "json"])
    assert result.exit_code == 0, result.output
    wanted = ("environmental_credit_rating_required", "environmental_credit_red", "green_credit_red_restricted")
    return {(e["list"], e["uscc"]): (e["started"], e["planned_end"]) for e in json.loads(result.output)["on_list"]
            if e["list"] in wanted}


def _ended(db: Path, as_of: str) -> dict:
    result = CliRunner().invoke(main, ["lists", "--db", str(db), "--as-of", as_of, "--format", "json"])
    assert result.exit_code == 0, result.output
    return {(e["list"], e["uscc"]): (e["started"], e["ended"], e["exit"]) for e in json.loads(result.output)["ended"]}


def test_run_and_lists_give_the_rating_year_and_the_red_restriction_without_unset_parameters(world, tmp_path):
    a, b, c, _ = world["usccs"]
    db = tmp_path / "results.sqlite"
    result = _run(world, db, "2025-03-01")  # the shipped policies, no --allow-unset-parameters
    assert result.exit_code in (0, 1), result.output
    assert _on_lists(db, "2025-03-01") == {
        ("environmental_credit_rating_required", a): ("2025-03-01", None),
        ("environmental_credit_red", a): ("2025-03-01", None),
        ("green_credit_red_restricted", a): ("2025-03-01", None),
        ("environmental_credit_rating_required", b): ("2025-03-01", None),
    }
    text = CliRunner().invoke(main, ["lists", "--db", str(db), "--as-of", "2025-03-01", "--uscc", a])
    assert "since 2025-03-01" in text.output and "评价年度内不得新增贷款" in text.output
    # the library (both backends) gives the same entries and dates for A and C
    registry = {row["uscc"]: row for row in csv.DictReader(REGISTRY.open(encoding="utf-8"))}
    cases = list(csv.DictReader((world["folder"] / "cases.csv").open(encoding="utf-8")))
    for backend in ("python", "durable"):
        with Evaluator(load_policies(world["policies"]), backend=backend) as evaluator:
            for uscc in (a, c):
                mine = [{k: v for k, v in row.items() if v} for row in cases if row["uscc"] == uscc]
                decision = evaluator.evaluate_group(registry[uscc], mine, as_of=dt.date(2025, 3, 1)).merged()
                got = {(s.list, (s.start or dt.date(2025, 3, 1)).isoformat(), s.end.isoformat() if s.end else None)
                       for s in decision.sanctions if "credit" in s.list}
                want = {(lst, *dates) for (lst, u), dates in _on_lists(db, "2025-03-01").items() if u == uscc}
                assert got == want, (backend, uscc)


def test_the_restriction_lasts_as_long_as_the_red_grade(world, tmp_path):
    a, b, c, _ = world["usccs"]
    db = tmp_path / "results.sqlite"
    assert _run(world, db, "2025-03-01").exit_code in (0, 1)
    assert _run(world, db, "2026-03-01").exit_code in (0, 1)
    # 2026 rates 2025's cases: C is rated, red and restricted now; A is no longer red, so no
    # longer restricted, from this rating year's first run
    assert _on_lists(db, "2026-03-01") == {
        ("environmental_credit_rating_required", c): ("2026-03-01", None),
        ("environmental_credit_red", c): ("2026-03-01", None),
        ("green_credit_red_restricted", c): ("2026-03-01", None),
    }
    ended = _ended(db, "2026-03-01")
    assert ended[("green_credit_red_restricted", a)] == ended[("environmental_credit_red", a)] == (
        "2025-03-01", "2026-02-28", "no_longer_justified")
    assert ("green_credit_red_restricted", a) in _on_lists(db, "2026-02-28")
