"""The fuzz targets replayed on their seeds and on every input a fuzzer found (no atheris
needed): each must end normally or with our error. With atheris installed, and always under
CI, each target is also fuzzed briefly (ECORULES_FUZZ_SECONDS, 15 s by default)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _targets  # noqa: E402

INPUTS = [(target, path) for target, seeds in _targets.SEEDS.items() for path in seeds] + [
    (path.parent.name, path) for path in sorted(_targets.REGRESSIONS.glob("*/*"))]


@pytest.mark.parametrize(("target", "path"), INPUTS, ids=[f"{t}:{p.name}" for t, p in INPUTS])
def test_replay(target, path):
    _targets.TARGETS[target](path.read_bytes())


def test_every_regression_names_a_target():
    assert {p.name for p in _targets.REGRESSIONS.iterdir()} <= set(_targets.TARGETS)
    assert any(_targets.REGRESSIONS.glob("*/*"))


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None and not os.environ.get("CI"),
                    reason="atheris is not installed (pip install atheris); CI always fuzzes")
@pytest.mark.parametrize("target", sorted(_targets.TARGETS))
def test_short_fuzz(target, tmp_path):
    seconds = os.environ.get("ECORULES_FUZZ_SECONDS", "15")
    # libFuzzer's artifacts (a crash, or a "slow unit" on a loaded machine) go to the test's own
    # folder, not into the source tree; a crash's input is named in the failure to copy into
    # regressions/<target>/
    crashes = tmp_path / "crashes"
    run = subprocess.run([sys.executable, str(HERE / "fuzz.py"), target, "--seconds", seconds,
                          "--crashes", str(crashes)],
                         capture_output=True, text=True, timeout=int(seconds) * 4 + 120)
    assert run.returncode == 0, (f"inputs in {crashes}: {sorted(p.name for p in crashes.glob('*'))}\n"
                                 + run.stdout[-3000:] + run.stderr[-3000:])
