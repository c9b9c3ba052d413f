"""A registry with a share of bad rows, of every kind a run rejects, for bench/nightly.py.

Real registries have bad rows; a run must stay fast on them (issue 11, point 15). The clean
file of ``ecorules gen-registry`` is mutated here, deterministically, so that the bad file
has exactly the rows of the clean one, ``share`` of them spoiled, spread evenly over the
reject kinds the format can hold:

- both formats: a USCC with a wrong check character, one of the wrong length, a missing
  USCC, a negative count, a count above its maximum, a district no alias matches, a missing
  district, a USCC repeated from an earlier row (one enterprise, one row);
- CSV only (Parquet columns are typed): a count '1.5', a count '三', a boolean '也许',
  a malformed line (a field too many), undecodable bytes in a name, a malformed line with
  undecodable bytes (which pyarrow cannot hand to the invalid-row handler: a real export's
  GBK row pasted into a UTF-8 file, with a field too many).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BOTH = ("check_character", "length", "no_uscc", "negative", "too_many", "district", "no_district", "repeated")
CSV_ONLY = ("fraction", "hanzi_count", "boolean", "malformed", "undecodable", "undecodable_malformed")


def kinds_for(suffix: str) -> tuple[str, ...]:
    return BOTH + CSV_ONLY if suffix == ".csv" else BOTH


def _picked(n: int, share: float, kinds: tuple[str, ...], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    bad = np.sort(rng.choice(np.arange(1, n), size=int(n * share), replace=False))  # row 0 stays clean
    if not bad.size:
        return {}
    which = rng.integers(0, len(kinds), bad.size)
    return {kind: bad[which == k] for k, kind in enumerate(kinds)}


def _set(column: pa.Array, rows: np.ndarray, values) -> pa.Array:
    """``column`` with ``values`` at ``rows`` (as text or as the column's type)."""
    values = pa.array(values, column.type) if not isinstance(values, pa.Array) else values
    mask = np.zeros(len(column), bool)
    mask[rows] = True
    spread = np.zeros(len(column), np.int64)
    spread[rows] = np.arange(rows.size)
    return pc.if_else(pa.array(mask), values.take(pa.array(spread)), column)


def mutate(clean: Path, bad: Path, share: float, seed: int = 7) -> dict[str, int]:
    """Write ``bad`` from ``clean`` (same format) and return the rows spoiled per kind."""
    suffix = clean.suffix.lower()
    table = pq.read_table(clean) if suffix == ".parquet" else _read_csv_as_text(clean)
    n = table.num_rows
    picked = _picked(n, share, kinds_for(suffix), seed)
    columns = {name: table[name].combine_chunks() for name in table.column_names}
    uscc = columns["uscc"]
    count = columns["untreated_outfalls"]

    def texts(rows, make):
        return [make(v) for v in uscc.take(pa.array(rows)).to_pylist()]

    def other_check(code: str) -> str:
        return code[:17] + ("1" if code[17] != "1" else "2")

    updates = {
        "check_character": ("uscc", lambda rows: texts(rows, other_check)),
        "length": ("uscc", lambda rows: texts(rows, lambda c: c[:17])),
        "no_uscc": ("uscc", lambda rows: [None] * rows.size),
        "repeated": ("uscc", lambda rows: uscc.take(pa.array(rows - rows // 7 - 1)).to_pylist()),
        "negative": ("untreated_outfalls", lambda rows: ["-1" if suffix == ".csv" else -1] * rows.size),
        "too_many": ("untreated_outfalls", lambda rows: ["100000" if suffix == ".csv" else 100000] * rows.size),
        "district": ("district", lambda rows: ["郑州新区"] * rows.size),
        "no_district": ("district", lambda rows: [None] * rows.size),
        "fraction": ("direct_discharge_cases", lambda rows: ["1.5"] * rows.size),
        "hanzi_count": ("illegal_discharge_cases", lambda rows: ["三"] * rows.size),
        "boolean": ("industrial", lambda rows: ["也许"] * rows.size),
    }
    for kind, rows in picked.items():
        if kind in updates and rows.size:
            name, make = updates[kind]
            columns[name] = _set(columns[name], rows, make(rows))
    del count
    out = pa.table(columns)
    tmp = bad.with_name(bad.name + ".tmp")
    if suffix == ".parquet":
        pq.write_table(out, tmp)
    else:
        none = np.zeros(0, np.int64)
        _write_csv(out, tmp, picked.get("malformed", none), picked.get("undecodable", none),
                   picked.get("undecodable_malformed", none))
    tmp.replace(bad)
    return {kind: int(rows.size) for kind, rows in picked.items()}


def _read_csv_as_text(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    header = [h.strip('"') for h in path.open(encoding="utf-8").readline().rstrip("\n").split(",")]
    convert = pacsv.ConvertOptions(column_types={h: pa.string() for h in header}, strings_can_be_null=False)
    return pacsv.read_csv(path, convert_options=convert)


def _write_csv(table: pa.Table, path: Path, malformed: np.ndarray, undecodable: np.ndarray,
               both: np.ndarray) -> None:
    """CSV without quotes (the bench's clean twin is written the same way), then the line-level damage: a field too many on the
    ``malformed`` rows, a byte that is not UTF-8 in the name of the ``undecodable`` ones, both on ``both``."""
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=True, quoting_style="none"))
    if not malformed.size and not undecodable.size and not both.size:
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    for row in [*malformed.tolist(), *both.tolist()]:
        lines[row + 1] += b",extra"
    for row in [*undecodable.tolist(), *both.tolist()]:
        fields = lines[row + 1].split(b",")
        fields[1] = fields[1] + b"\xff"
        lines[row + 1] = b",".join(fields)
    path.write_bytes(b"\n".join(lines))
