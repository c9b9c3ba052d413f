"""What the fuzzers feed and what counts as a bug (issue 11, point 18).

Each target takes the fuzzer's bytes. Any exception outside :class:`EcorulesError` (our
errors, which name the file, line and column or the row and column) is a bug: the target
lets it through, so that atheris reports it and the replay test fails on it. The targets
are plain functions: the replay test (tests/fuzz/test_fuzz_replay.py) runs them on the seeds
and on every input a fuzzer ever found, without atheris.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import os
import shutil
import tempfile
from pathlib import Path

from ecorules.engine.sources._pg_url import PostgresUrl, is_postgres_url, redact
from ecorules.rules import EcorulesError, load_policies, parse_expression, read_policy
from ecorules.rules._check import check
from ecorules.rules._schema import scope_of

ROOT = Path(__file__).resolve().parents[2]
# where a target writes the file it reads: a fuzzer's child is given one by fuzz.py, which
# removes it (libFuzzer ends the child without running atexit); any other importer (a test
# run) makes its own, removed when it ends
_SCRATCH = Path(os.environ.get("ECORULES_FUZZ_SCRATCH") or tempfile.mkdtemp(prefix="ecorules-fuzz-"))
if "ECORULES_FUZZ_SCRATCH" not in os.environ:
    atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def _scratch(name: str, data: bytes) -> Path:
    path = _SCRATCH / name
    path.write_bytes(data)
    return path


def policy_file(data: bytes) -> None:
    """A policy file, through the loader and checker as `ecorules check` reads it."""
    try:
        read_policy(_scratch("policy.yaml", data))
    except EcorulesError:
        pass


@functools.cache
def _scope():
    policies = load_policies()
    parameters = {name: p for policy in policies for name, p in policy.parameters.items()}
    return scope_of(policies.facts, parameters)


def expression(data: bytes) -> None:
    """An expression, parsed by the whitelist parser and type-checked against the shipped facts."""
    text = data.decode("utf-8", errors="replace")
    try:
        check(parse_expression(text), _scope())
    except EcorulesError:
        pass


@functools.cache
def _program():
    from ecorules.fastcalc import compile_program

    policies = load_policies()
    return policies, compile_program(policies.for_domain("enterprise"), domain="enterprise")


def _registry(suffix: str, data: bytes) -> None:
    from ecorules.engine._sources import ColumnResolver, Registry
    from ecorules.engine._unset_rollups import unset_rollups, with_unset

    policies, program = _program()
    needed_by = policies.required_facts()
    needed = {column: needed_by.get(column, []) for column in program.columns}
    unset = unset_rollups(policies.facts, needed)
    needed = {c: by for c, by in needed.items() if c not in unset}
    path = _scratch(f"registry{suffix}", data)
    try:
        registry = Registry(path, ColumnResolver(policies.facts, needed), batch_rows=64)
        for batch in registry.batches():
            if batch.table.num_rows:
                result = program.score(with_unset(batch.table, unset), as_of=dt.date(2012, 4, 14))
                assert len(result.valid) == batch.table.num_rows
    except EcorulesError:
        pass


def registry_csv(data: bytes) -> None:
    """A registry CSV, read, typed and scored by the kernel as `ecorules run` does."""
    _registry(".csv", data)


def registry_parquet(data: bytes) -> None:
    """A registry Parquet file (mutated bytes): pyarrow's errors must become ours."""
    _registry(".parquet", data)


def postgres_url(data: bytes) -> None:
    """A ``postgresql://`` location (no connection is made): parsed or refused with our
    error; one that is accepted shows no password and hands libpq none."""
    text = data.decode("utf-8", errors="replace")
    if not is_postgres_url(text):
        text = "postgresql://" + text
    try:
        url = PostgresUrl.parse(text)
    except EcorulesError:
        return
    shown = str(url)
    assert redact(shown) == shown, shown
    assert "password" not in url.libpq_parameters(), shown


TARGETS = {
    "policy": policy_file,
    "expression": expression,
    "registry_csv": registry_csv,
    "registry_parquet": registry_parquet,
    "postgres_url": postgres_url,
}

# The corpus a fuzzer starts from: the shipped policies, the broken ones the tests keep, the
# example registries.
SEEDS = {
    "policy": [*sorted((ROOT / "policies").rglob("*.yaml")), *sorted((ROOT / "tests" / "rules" / "broken").rglob("*.yaml")),
               ROOT / "tests" / "data" / "base_policy.yaml"],
    "expression": [],  # written below, from the shipped policies' conditions and amounts
    "registry_csv": [*sorted((ROOT / "examples").glob("registry*.csv"))],
    "registry_parquet": [],  # made by the fuzz runner from the example registry
    "postgres_url": sorted((ROOT / "tests" / "data" / "postgres_urls").glob("*.txt")),
}

REGRESSIONS = Path(__file__).with_name("regressions")

