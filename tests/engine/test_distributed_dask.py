"""The nightly scoring on Dask equals the single-machine run, to every row and fen.

A LocalCluster of 2 worker processes bound to 127.0.0.1 (dashboard too), shared by the
module. Skipped, saying why, where Dask's distributed scheduler is not installed
(``pip install "ecorules[dask]"``; the test extra has it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason='Dask is not installed: pip install "ecorules[dask]"')

import dask.dataframe as dd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from distributed_data import (  # noqa: E402
    CASE_POLICIES,
    CASES_AS_OF,
    EXAMPLES,
    bad_registry,
    case_world,
    compound_key_policies,
    compound_key_registry,
    exact,
    example_registry,
    fen_policies,
    fen_registry,
    local_census,
    parquet_contents,
    store_as_parquet_holds_it,
    store_contents,
    summary_of_run,
)
from ecorules.engine._nightly import NightlyError, run_nightly  # noqa: E402
from ecorules.engine.distributed._run import run_distributed  # noqa: E402
from ecorules.engine.distributed.dask import read_registry, score  # noqa: E402
from ecorules.rules import load_policies  # noqa: E402

AS_OF = dt.date(2012, 4, 14)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    root = tmp_path_factory.mktemp("registries")
    return {"examples": example_registry(root / "examples"), "bad": bad_registry(root / "bad")}


def test_cluster_listens_on_loopback_only(cluster):
    info = cluster.scheduler_info()
    assert info["address"].startswith("tcp://127.0.0.1:")
    assert all(address.startswith("tcp://127.0.0.1:") for address in info["workers"])
    assert len(info["workers"]) == 2
    assert cluster.dashboard_link.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("name", ["examples", "bad"])
def test_run_on_dask_writes_the_store_a_local_run_writes(cluster, registries, name, tmp_path):
    local = run_nightly(registries[name], tmp_path / "local.sqlite", as_of=AS_OF)
    remote = run_distributed(registries[name], tmp_path / "dask.sqlite", as_of=AS_OF, engine="dask",
                             scheduler=cluster.scheduler.address)
    assert (remote.rows_in, remote.rows_scored, remote.rows_rejected, remote.total_yuan) == \
        (local.rows_in, local.rows_scored, local.rows_rejected, local.total_yuan)
    assert remote.districts == local.districts
    assert store_contents(tmp_path / "dask.sqlite") == store_contents(tmp_path / "local.sqlite")
    assert summary_of_run(tmp_path / "dask.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    if name == "bad":
        assert local.rows_rejected > 500 and local.total_yuan > 0  # the comparison has something to compare


def test_score_gives_frames_and_exact_totals_equal_to_the_local_run(cluster, registries, tmp_path):
    folder = registries["bad"]
    run_nightly(folder, tmp_path / "local.sqlite", as_of=AS_OF)
    expected = store_contents(tmp_path / "local.sqlite")
    frame = read_registry(folder)
    # each row's file as text, one column type in every partition (a piece names it by a dictionary code)
    assert str(frame.dtypes["_source"]) == str(frame.partitions[0].compute().dtypes["_source"]) == "string[pyarrow]"
    out = score(frame, as_of=AS_OF)
    findings = out.findings.compute()
    assert str(findings["amount_yuan"].dtype).startswith("int64")  # never float
    assert sorted(findings[["uscc", "policy", "rule", "kind", "amount_yuan", "payer"]].astype(object)
                  .itertuples(index=False, name=None), key=repr) == \
        sorted([row[:6] for row in expected["findings"]], key=repr)
    entries = out.entries.compute()
    assert sorted(((u, lst, r) for u, lst, r in entries[["uscc", "list", "rule"]].astype(object)
                   .itertuples(index=False, name=None)), key=repr) == \
        sorted(((u, lst, r) for u, lst, r, *_ in expected["sanctions"]), key=repr)
    rejects = out.rejects.compute()
    # a Dask frame has one set of columns: read_registry names them by fact, also for the
    # file headed in Chinese, so its rejects name the fact (the CLI's run names the label)
    fact_of = {fact.label: name for name, fact in load_policies().facts.items() if fact.label}
    assert sorted(rejects.astype(object).itertuples(index=False, name=None), key=repr) == \
        sorted(((s, r, fact_of.get(c, c), v, why) for s, r, c, v, why in expected["rejects"]), key=repr)
    assert any(c in fact_of for _, _, c, _, _ in expected["rejects"])  # the labelled file has rejects
    assert sorted((d, y, c) for d, (y, c) in out.totals.items()) == expected["district_totals"]
    assert all(type(y) is int and type(c) is int for y, c in out.totals.values())
    assert out.counts["rows_in"] == out.counts["rows_scored"] + out.counts["rows_rejected"] == 6000


def test_nulls_and_narrow_integers_from_any_frame_are_rejects_and_exact(cluster, tmp_path):
    """A frame not read by ecorules: numpy-backed pandas with an integer column that has gaps
    (float NaN in pandas), and an int32 column whose amounts overflow 32 bits."""
    table = pq.read_table(example_registry(tmp_path / "examples") / "registry.parquet")
    frame = table.to_pandas()
    frame["untreated_outfalls"] = frame["untreated_outfalls"].astype("int32")
    frame.loc[0, "untreated_outfalls"] = 3001  # 3,001 x 1,000,000 yuan: past int32
    frame["direct_discharge_cases"] = frame["direct_discharge_cases"].astype("float64")
    frame.loc[[1, 2], "direct_discharge_cases"] = float("nan")
    local_table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(local_table, tmp_path / "one.parquet")
    local = run_nightly(tmp_path / "one.parquet", tmp_path / "local.sqlite", as_of=AS_OF)
    out = score(dd.from_pandas(frame, npartitions=3), as_of=AS_OF)
    assert out.counts["total_yuan"] == local.total_yuan >= 3_001_000_000
    assert out.counts["rows_rejected"] == local.rows_rejected >= 2
    rejects = out.rejects.compute()
    missing = rejects[rejects["column"] == "direct_discharge_cases"]
    assert set(missing["reason"]) == {"is missing"} and len(missing) == 2
    assert set(rejects["source"].astype(str)) <= {"partition 0", "partition 1", "partition 2"}
    assert [[d["district"], d["deduction_yuan"], d["cases"]] for d in local.districts] == \
        [[d, *out.totals[d]] for d in [d["district"] for d in local.districts]]


def test_what_a_distributed_run_cannot_do_is_refused_clearly(cluster, registries, tmp_path):
    with pytest.raises(NightlyError, match="--duplicates sum merges rows across partitions"):
        run_distributed(registries["examples"], tmp_path / "x.sqlite", as_of=AS_OF, engine="dask",
                        scheduler=cluster.scheduler.address, duplicates="sum")
    with pytest.raises(NightlyError, match="registry.csv: a distributed run reads Parquet"):
        run_distributed(EXAMPLES / "registry.csv", tmp_path / "y.sqlite", as_of=AS_OF, engine="dask", scheduler=cluster.scheduler.address)


def test_cli_runs_on_dask(registries, tmp_path):
    from click.testing import CliRunner
    from ecorules.engine._cli import main

    result = CliRunner().invoke(main, ["run", "--registry", str(registries["examples"]), "--out",
                                       str(tmp_path / "r.sqlite"), "--as-of", "2012-04-14", "--engine", "dask",
                                       "--threads", "2", "--format", "json", "--out-format", "parquet"])
    assert result.exit_code in (0, 1), result.output
    local = run_nightly(registries["examples"], tmp_path / "l.sqlite", as_of=AS_OF)
    assert store_contents(tmp_path / "r.sqlite") == store_contents(tmp_path / "l.sqlite")
    assert local.rows_in == 50
    assert parquet_contents(tmp_path / "r.parquet", 1) == store_as_parquet_holds_it(tmp_path / "r.sqlite")


@pytest.mark.parametrize("option", [["--scheduler", "tcp://127.0.0.1:1"], ["--out-format", "parquet"],
                                    ["--out-format", "hive"], ["--out-database", "eco"]])
def test_cli_refuses_an_engine_option_without_an_engine(registries, tmp_path, option):
    from click.testing import CliRunner
    from ecorules.engine._cli import main

    result = CliRunner().invoke(main, ["run", "--registry", str(registries["examples"]), "--out",
                                       str(tmp_path / "r.sqlite"), *option])
    assert result.exit_code == 2
    assert ("--scheduler, --master, --out-format parquet|hive and --out-database are for --engine dask and "
            "--engine spark") in result.output
    assert not (tmp_path / "r.sqlite").exists()


def test_out_format_parquet_writes_the_tables_of_its_store_beside_it(cluster, registries, tmp_path):
    """Rejects of every kind and keys repeated across files: each part file written where it
    was scored holds what the store holds, run by run."""
    for run in (1, 2):
        summary = run_distributed(registries["bad"], tmp_path / "results.sqlite", as_of=AS_OF, engine="dask",
                                  scheduler=cluster.scheduler.address, out_format="parquet", force=True)
        assert summary.run_id == run
        tables = parquet_contents(tmp_path / "results.parquet", run)
        assert tables == store_as_parquet_holds_it(tmp_path / "results.sqlite")
        assert len(tables["rejects"]) > 500 and len(tables["findings"]) > 50 and tables["sanctions"]
        assert sum(cases for _district, _yuan, cases in tables["district_totals"]) > 0
    assert not (tmp_path / "results.parquet" / "findings" / "run_id=1").exists()  # replaced by run 2, as in the store


def test_records_of_other_kinds_are_scored_beside_a_distributed_registry(cluster, registries, tmp_path):
    """--records: the other kinds' tables (a few rows per river section or district) are
    scored by the driver as a local run scores them, the registry on the cluster; the store
    is the local run's, bad rows of those tables included."""
    as_of = dt.date(2019, 1, 31)
    tables = {"river_section": EXAMPLES / "river_sections.csv", "district": EXAMPLES / "districts.csv",
              "report": EXAMPLES / "reports.csv", "dust_site": EXAMPLES / "dust_sites.csv"}
    local = run_nightly(registries["examples"], tmp_path / "local.sqlite", as_of=as_of, tables=tables)
    remote = run_distributed(registries["examples"], tmp_path / "dask.sqlite", as_of=as_of, engine="dask",
                             scheduler=cluster.scheduler.address, tables=tables)
    assert remote.to_dict()["tables"] == local.to_dict()["tables"] and set(local.to_dict()["tables"]) > {"registry"}
    assert store_contents(tmp_path / "dask.sqlite") == store_contents(tmp_path / "local.sqlite")
    alone = run_nightly(registries["examples"], tmp_path / "alone.sqlite", as_of=as_of)
    assert alone.rows_in < remote.rows_in  # the other kinds' rows were read and counted too
    findings = store_contents(tmp_path / "dask.sqlite")["findings"]
    assert len(findings) > len(store_contents(tmp_path / "alone.sqlite")["findings"])  # and judged


def test_the_census_on_the_workers_equals_the_single_machine_census(cluster, registries):
    """Keys repeated within and across files (and in the file headed in Chinese): the digests
    merged by Dask's shuffle and the rows of each repeated key equal the local first pass's."""
    from ecorules.engine.distributed._partition import make_plan, take_census
    from ecorules.engine.distributed._pieces import pieces
    from ecorules.engine.distributed.dask import _PieceParts

    expected = local_census(registries["bad"])
    plan = make_plan(None, AS_OF)
    found, _registry = pieces(plan, registries["bad"])
    parts = _PieceParts(found, plan, cluster)
    repeated, digests = parts.repeated()
    assert repeated.tolist() == expected.repeated.tolist() and repeated.size
    assert digests == expected.rows - 3 * 75  # every row but those without a valid USCC (bad[0], bad[1], bad[3])
    census = take_census(plan, parts).census
    assert census.rows_of == expected.rows_of
    rows = [at for where in census.rows_of.values() for at in where]
    assert len(rows) > 50 and {Path(source).name for source, _row in rows} == {"a.parquet", "b.parquet", "c.parquet"}


def test_a_key_of_two_facts_is_held_as_a_local_run_holds_it(cluster, tmp_path):
    """key: [uscc, district]: a USCC repeated in its district is a reject naming the first
    row (in another file too), the same USCC in another district is another enterprise."""
    policies = compound_key_policies(tmp_path / "policies")
    registry = compound_key_registry(tmp_path / "registry")
    local = run_nightly(registry, tmp_path / "local.sqlite", as_of=AS_OF, policies=policies)
    remote = run_distributed(registry, tmp_path / "dask.sqlite", as_of=AS_OF, engine="dask", policies=policies,
                             scheduler=cluster.scheduler.address)
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "dask.sqlite") == expected
    assert remote.rows_rejected == local.rows_rejected == 2
    assert all(reason.startswith("duplicate uscc, district (") for *_, reason in expected["rejects"])


def test_amounts_in_fen_are_scored_and_summed_as_a_local_run_does(cluster, tmp_path):
    """A policy rounding to the fen (0.475 yuan is 0.48), beside rules in whole yuan: the
    store, the Parquet tables and score's frames hold every amount and total to the fen."""
    policies = fen_policies(tmp_path / "policies")
    registry = fen_registry(tmp_path / "registry")
    local = run_nightly(registry, tmp_path / "local.sqlite", as_of=AS_OF, policies=policies)
    remote = run_distributed(registry, tmp_path / "dask.sqlite", as_of=AS_OF, engine="dask", policies=policies,
                             scheduler=cluster.scheduler.address, out_format="parquet")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "dask.sqlite") == expected
    assert summary_of_run(tmp_path / "dask.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    same = ("rows_in", "rows_rejected", "total_yuan", "total_fen", "unit", "findings", "district_totals")
    assert {k: remote.to_dict()[k] for k in same} == {k: local.to_dict()[k] for k in same}
    assert local.unit == "fen" and any(isinstance(row[4], str) and not row[4].endswith(".00")
                                       for row in expected["findings"])
    assert parquet_contents(tmp_path / "dask.parquet", 1) == store_as_parquet_holds_it(tmp_path / "dask.sqlite")
    out = score(read_registry(registry, load_policies(policies)), load_policies(policies), as_of=AS_OF)
    findings = out.findings.compute()
    assert str(findings["amount_yuan"].dtype).startswith("decimal128(22, 2)")
    assert sorted(((u, p, r, k, exact(y), payer) for u, p, r, k, y, payer in
                   findings.astype(object).itertuples(index=False, name=None)), key=repr) == \
        sorted(((*row[:4], exact(row[4]), row[5]) for row in expected["findings"]), key=repr)
    assert {d: (exact(y), c) for d, (y, c) in out.totals.items()} == \
        {d["district"]: (exact(d["deduction_yuan"]), d["cases"]) for d in local.districts}
    assert out.counts["total_yuan"] == local.total_yuan and out.counts["total_fen"] == local.total_fen


def test_a_case_table_is_joined_to_its_enterprises_on_the_cluster(cluster, tmp_path):
    """--cases: the registry's rows the case table names are picked by the workers, the cases
    judged and rolled up as a local run does, the roll-ups handed to every partition: every
    finding (cases' and enterprises'), list entry, reject and total equals the local run's."""
    registry, cases = case_world(tmp_path)
    local = run_nightly(registry, tmp_path / "local.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF, cases=cases)
    remote = run_distributed(registry, tmp_path / "remote.sqlite", policies=CASE_POLICIES, as_of=CASES_AS_OF,
                             cases=cases, engine="dask", scheduler=cluster.scheduler.address, out_format="parquet")
    expected = store_contents(tmp_path / "local.sqlite")
    assert store_contents(tmp_path / "remote.sqlite") == expected
    # the Parquet tables hold the case table's rows too, which the driver scored (part-driver.parquet)
    assert parquet_contents(tmp_path / "remote.parquet", 1) == store_as_parquet_holds_it(tmp_path / "remote.sqlite")
    assert summary_of_run(tmp_path / "remote.sqlite") == summary_of_run(tmp_path / "local.sqlite")
    assert remote.to_dict()["tables"] == local.to_dict()["tables"]
    assert (remote.already_assessed, remote.lighter_law) == (local.already_assessed, local.lighter_law)
    assert local.tables["cases"]["rows_rejected"] > 10 and local.tables["registry"]["rows_rejected"] == 8
    assert sum(1 for row in expected["findings"] if row[1].startswith("test.fines")) > 100  # the cases judged
    # the enterprises' policies read the roll-ups: findings and list entries only case counts give
    assert any(row[2] == "eco" for row in expected["findings"])
    assert {row[1] for row in expected["sanctions"]} == {"watch", "recent"}
