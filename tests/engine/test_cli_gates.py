"""Exit codes a CI gate can rely on: run refuses policies whose own cases fail; diff says
when the proposal's cases fail."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from ecorules.engine._cli import main
from ecorules.rules import shipped_policies_path

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "registry.csv"
WRONG = ("amount_yuan: 3000000, payer: 二七区, kind: fiscal_deduction}", "amount_yuan: 3000001, payer: 二七区, kind: fiscal_deduction}")


def broken_copy(tmp_path) -> Path:
    drafts = tmp_path / "drafts"
    shutil.copytree(shipped_policies_path(), drafts, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    water = drafts / "zhengzhou" / "eco_water_interception.yaml"
    text = water.read_text(encoding="utf-8")
    assert text.count(WRONG[0]) == 1
    water.write_text(text.replace(*WRONG), encoding="utf-8")
    return drafts


def test_run_refuses_policies_whose_own_cases_fail(tmp_path):
    drafts = broken_copy(tmp_path)
    args = ["run", "--registry", str(EXAMPLES), "--out", str(tmp_path / "r.sqlite"), "--policies", str(drafts),
            "--as-of", "2012-04-14", "--no-progress"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "1 of the policies' own test cases fail" in refused.output and "--allow-failing-tests" in refused.output
    assert not (tmp_path / "r.sqlite").exists()
    allowed = CliRunner().invoke(main, [*args, "--allow-failing-tests"])
    assert allowed.exit_code == 0, allowed.output


def test_diff_exits_1_when_the_proposal_cases_fail(tmp_path):
    drafts = broken_copy(tmp_path)
    args = ["diff", "--base", str(shipped_policies_path()), "--registry", str(EXAMPLES), "--as-of", "2012-04-14"]
    assert CliRunner().invoke(main, [*args, "--proposed", str(drafts)]).exit_code == 1
    assert CliRunner().invoke(main, [*args, "--proposed", str(shipped_policies_path())]).exit_code == 0
