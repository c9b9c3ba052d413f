"""What every command shares (issue 11, "The store and the command line"): --format json,
-v before or after the command, no files left beside the results database, and a refusal to
write into another system's SQLite database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from ecorules.engine._cli import main
from test_store import foreign_database

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "examples" / "registry.csv"
CASES = ROOT / "examples" / "cases.csv"


def ecorules(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "ecorules.engine", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)


def test_every_command_offers_json_and_verbosity():
    leaves = {f"{name} {sub}": command for name, group in main.commands.items()
              for sub, command in getattr(group, "commands", {}).items()}
    for name, command in {**{n: c for n, c in main.commands.items() if n not in {k.split()[0] for k in leaves}},
                          **leaves}.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        assert "--format" in options, f"ecorules {name} has no --format"
        assert "-v" in options, f"ecorules {name} takes no -v"


def test_verbose_after_the_command_as_before_it(tmp_path):
    after = ecorules("run", "--registry", str(REGISTRY), "--out", "r.sqlite", "--as-of", "2012-04-14", "-v",
                     cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert "INFO ecorules.nightly: run 1 done" in after.stderr
    quiet = ecorules("run", "--registry", str(REGISTRY), "--out", "q.sqlite", "--as-of", "2012-04-14", cwd=tmp_path)
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr


def test_no_lock_wal_or_shm_file_is_left_beside_the_database(tmp_path):
    steps = [
        ("run", "--registry", str(REGISTRY), "--out", "r.sqlite", "--as-of", "2012-04-14"),
        ("run", "--registry", str(REGISTRY), "--cases", str(CASES), "--out", "r.sqlite", "--as-of", "2025-06-30",
         "--allow-unset-parameters"),  # the red restriction's term is for legal staff to set
        ("export", "--db", "r.sqlite", "--run", "latest", "--table", "findings", "--out", "f.csv"),
        ("changes", "--db", "r.sqlite", "--since", "1"),
        ("lists", "--db", "r.sqlite", "--as-of", "2025-06-30", "--format", "json"),
    ]
    for step in steps:
        result = ecorules(*step, cwd=tmp_path)
        assert result.returncode in (0, 1), (step, result.stderr)
        written = {"r.sqlite"} | ({"f.csv"} if (tmp_path / "f.csv").exists() else set())
        assert {p.name for p in tmp_path.iterdir()} == written, step


def test_run_refuses_to_write_into_another_systems_database(tmp_path):
    other = foreign_database(tmp_path / "bureau.sqlite")
    result = CliRunner().invoke(main, ["run", "--registry", str(REGISTRY), "--out", str(other), "--as-of", "2012-04-14",
                                       "--format", "json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert "not an ecorules results database (it has enterprises)" in document["error"]
    assert sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall() == [("enterprises",)]


def test_export_and_gen_registry_answer_in_json(tmp_path):
    runner = CliRunner()
    made = runner.invoke(main, ["gen-registry", "--rows", "20", "--out", str(tmp_path / "g.csv"), "--format", "json"])
    assert made.exit_code == 0 and json.loads(made.output)["rows"] == 20
    assert len((tmp_path / "g.csv").read_text(encoding="utf-8").splitlines()) == 21
    scored = runner.invoke(main, ["run", "--registry", str(REGISTRY), "--out", str(tmp_path / "r.sqlite"),
                                  "--as-of", "2012-04-14"])
    assert scored.exit_code == 0, scored.output
    exported = runner.invoke(main, ["export", "--db", str(tmp_path / "r.sqlite"), "--run", "latest", "--table",
                                    "district_totals", "--out", str(tmp_path / "d.csv"), "--format", "json"])
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.output)
    assert (document["run"], document["table"], document["rows"]) == (1, "district_totals", 6)


def test_changes_warns_when_the_runs_read_different_sources(tmp_path):
    copy = tmp_path / "registry-copy.csv"
    copy.write_bytes(REGISTRY.read_bytes())
    db = str(tmp_path / "r.sqlite")
    runner = CliRunner()
    for source, day in ((REGISTRY, "2012-04-14"), (REGISTRY, "2012-04-15"), (copy, "2012-04-16")):
        assert runner.invoke(main, ["run", "--registry", str(source), "--out", db, "--as-of", day]).exit_code == 0

    def warnings(since: str, run: str) -> list[str]:
        result = runner.invoke(main, ["changes", "--db", db, "--since", since, "--run", run, "--format", "json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["warnings"]

    assert warnings("1", "2") == []
    [warning] = warnings("2", "3")
    assert "different sources" in warning and "registry-copy.csv" in warning
    text = runner.invoke(main, ["changes", "--db", db, "--since", "2", "--run", "3"]).output
    assert "warning: the runs read different sources" in text
