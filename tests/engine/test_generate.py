"""The synthetic registry: the contract's columns and types, determinism, valid distinct
USCCs, plausible rates, and atomic CSV / Parquet writing."""

import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from ecorules.engine import _generate
from ecorules.engine._generate import (
    DISTRICT_NAMES,
    DISTRICTS,
    REGISTRY_SCHEMA,
    generate_registry,
    write_registry,
)
from ecorules.rules._uscc import uscc_problems

CONTRACT = [
    ("uscc", pa.string()),
    ("name", pa.string()),
    ("district", pa.string()),
    ("industrial", pa.bool_()),
    ("untreated_outfalls", pa.int64()),
    ("direct_discharge_cases", pa.int64()),
    ("illegal_discharge_cases", pa.int64()),
    ("high_pollution", pa.bool_()),
    ("high_energy", pa.bool_()),
]
COUNTS = ["untreated_outfalls", "direct_discharge_cases", "illegal_discharge_cases"]


@pytest.fixture(scope="module")
def registry() -> pa.Table:
    return generate_registry(100_000, 20120414)


@pytest.fixture(scope="module")
def frame(registry) -> dict[str, np.ndarray]:
    return {name: registry[name].to_numpy() for name in registry.column_names}


def test_exactly_the_contract_columns_and_types(registry):
    assert [(f.name, f.type) for f in registry.schema] == CONTRACT
    assert registry.schema == REGISTRY_SCHEMA
    assert registry.num_rows == 100_000
    assert all(registry[name].null_count == 0 for name in registry.column_names)


def test_deterministic_for_a_seed(tmp_path):
    first, again = generate_registry(3000, 5), generate_registry(3000, 5)
    assert first.equals(again)
    write_registry(first, tmp_path / "a.parquet")
    write_registry(again, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert not first.equals(generate_registry(3000, 6))


def test_chunks_are_independent_of_the_row_count(monkeypatch):
    """With small chunks: USCCs stay distinct across chunks, and full chunks are a prefix."""
    monkeypatch.setattr(_generate, "_CHUNK", 1000)
    big, small = generate_registry(5500, 9), generate_registry(2000, 9)
    assert big.slice(0, 2000).equals(small)
    assert pc.count_distinct(big["uscc"]).as_py() == 5500
    assert big.num_rows == 5500


def test_uscc_valid_distinct_and_from_zhengzhou(frame):
    codes = frame["uscc"]
    assert not uscc_problems(codes.astype(str)).any()
    assert np.unique(codes).shape[0] == codes.shape[0]
    assert {c[0] for c in codes} == {"9"}  # industry and commerce
    kinds = np.array([c[1] for c in codes])
    assert 0.85 < (kinds == "1").mean() < 0.92  # enterprises; some individual businesses, co-ops
    assert set(kinds) == {"1", "2", "3"}
    regions = {c[2:8] for c in codes}
    assert regions <= {"410100"} | {str(d.code) for d in DISTRICTS}
    assert {str(d.code) for d in DISTRICTS if not d.committee} <= regions


def test_region_codes_match_the_district_where_they_can(frame):
    own = dict(zip(DISTRICT_NAMES, (str(d.code) for d in DISTRICTS), strict=True))
    matches = [
        c[2:8] in (own[d], "410100") for c, d in zip(frame["uscc"], frame["district"], strict=True)
    ]
    assert all(matches)


def test_districts_are_the_seventeen_and_weighted(frame):
    names, counts = np.unique(frame["district"], return_counts=True)
    share = dict(zip(names, counts / counts.sum(), strict=True))
    assert set(share) == set(DISTRICT_NAMES)
    assert len(DISTRICT_NAMES) == 17
    assert sum(not d.committee for d in DISTRICTS) == 12
    assert share["金水区"] > share["郑州高新技术产业开发区"] > share["上街区"]
    assert share["郑东新区"] > share["登封市"]


def test_rates_are_plausible(frame):
    industrial = frame["industrial"]
    assert 0.35 < industrial.mean() < 0.45
    cases = sum(frame[c] for c in COUNTS)
    assert 0.01 < (cases > 0).mean() < 0.08  # a few percent
    for column in COUNTS:
        values = frame[column]
        positive = values[values > 0]
        assert values.min() == 0
        assert (positive == 1).mean() > 0.5  # mostly 1
        assert (positive >= 5).mean() < 0.05  # rarely 5 or more
        assert positive.max() >= 3
    direct = frame["direct_discharge_cases"] > 0
    assert industrial[direct].mean() > 0.7  # mostly industrial ...
    assert (direct & ~industrial).sum() > 0  # ... but not only: a policy must ignore those
    high_pollution = frame["high_pollution"]
    assert 0.02 < high_pollution.mean() < 0.15
    assert industrial[high_pollution].mean() > 0.8
    assert 0.02 < frame["high_energy"].mean() < 0.15


def test_names_are_chinese_and_mostly_unique(frame):
    names = frame["name"]
    assert np.unique(names).shape[0] > 0.95 * names.shape[0]
    legal_form = re.compile(r"^[\u4e00-\u9fff]{6,}(公司|经营部|商行|服务部|门市部|厂|专业合作社)$")
    assert all(legal_form.match(name) for name in names[:5000])
    assert any(name.startswith("河南") and name.endswith("股份有限公司") for name in names)
    assert any(name.startswith("郑州") and name.endswith("有限公司") for name in names)


@pytest.mark.parametrize("rows", [0, 1, 17])
def test_small_registries(rows):
    table = generate_registry(rows, 1)
    assert table.num_rows == rows
    assert table.schema == REGISTRY_SCHEMA


@pytest.mark.parametrize(("rows", "seed"), [(-1, 0), (1.5, 0), (True, 0), ("10", 0), (10, -1)])
def test_bad_arguments_are_refused(rows, seed):
    with pytest.raises(ValueError, match="must be a non-negative int"):
        generate_registry(rows, seed)


# --- writing -------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path):
    table = generate_registry(2000, 3)
    path = tmp_path / "registry.csv"
    write_registry(table, path)
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0].replace('"', "") == ",".join(REGISTRY_SCHEMA.names)
    assert ",true," in text and ",false," in text
    convert = pacsv.ConvertOptions(column_types=REGISTRY_SCHEMA)
    back = pacsv.read_csv(path, convert_options=convert)
    assert back.equals(table.combine_chunks())


def test_parquet_round_trip(tmp_path):
    table = generate_registry(2000, 3)
    write_registry(table, tmp_path / "registry.parquet")
    assert pq.read_table(tmp_path / "registry.parquet").equals(table)


@pytest.mark.parametrize("name", ["r.csv", "r.parquet", "R.CSV"])
def test_atomic_write_leaves_only_the_file(tmp_path, name):
    write_registry(generate_registry(10, 1), tmp_path / name)
    write_registry(generate_registry(20, 1), tmp_path / name)  # replaces an existing file
    assert os.listdir(tmp_path) == [name]
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "registry.csv"
    path.write_text("old", encoding="utf-8")

    def broken(table, where, *args, **kwargs):
        with open(where, "w") as partial:
            partial.write("uscc,na")
        raise OSError("disk full")

    monkeypatch.setattr(pacsv, "write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        write_registry(generate_registry(10, 1), path)
    assert os.listdir(tmp_path) == ["registry.csv"]
    assert path.read_text(encoding="utf-8") == "old"


def test_unknown_extension_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(ValueError, match=r"expected \.csv or \.parquet"):
        write_registry(generate_registry(10, 1), tmp_path / "registry.xlsx")
    assert os.listdir(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- the shipped examples ------------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_examples_are_what_make_examples_writes(tmp_path):
    """The committed example files are reproducible: regenerating gives the same bytes.

    If a new numpy changes its random streams, rerun examples/make_examples.py and review.
    """
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written
    for relative in written:
        assert (tmp_path / relative).read_bytes() == (EXAMPLES / relative).read_bytes(), relative


def test_example_registry_is_valid_and_covers_every_case():
    convert = pacsv.ConvertOptions(column_types=REGISTRY_SCHEMA)
    table = pacsv.read_csv(EXAMPLES / "registry.csv", convert_options=convert)
    rows = table.to_pylist()
    assert 40 <= len(rows) <= 60
    assert not uscc_problems(table["uscc"]).any()
    assert len({r["uscc"] for r in rows}) == len(rows)
    assert {r["district"] for r in rows} == set(DISTRICT_NAMES)
    assert any(not any(r[c] for c in COUNTS) for r in rows)
    assert any(1 <= r["untreated_outfalls"] <= 3 for r in rows)
    assert any(r["industrial"] and r["direct_discharge_cases"] for r in rows)
    assert any(not r["industrial"] and r["direct_discharge_cases"] for r in rows)
    assert any(r["illegal_discharge_cases"] and not r["untreated_outfalls"] for r in rows)
    assert any(r["high_pollution"] for r in rows) and any(r["high_energy"] for r in rows)
    records = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in (EXAMPLES / "records").glob("*.json")
    }
    assert records["untreated_outfalls"]["untreated_outfalls"] == 3
    assert records["industrial_direct_discharge"]["direct_discharge_cases"] == 2
    assert not records["non_industrial_direct_discharge"]["industrial"]
    assert all(list(record) == REGISTRY_SCHEMA.names for record in records.values())


def test_generated_districts_are_the_catalogue_values():
    """The generator and the policies' registry contract name districts identically."""
    from ecorules.rules import load_policies

    assert tuple(DISTRICT_NAMES) == load_policies().facts["district"].type.choices
