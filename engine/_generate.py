"""A synthetic but realistic registry of Zhengzhou enterprises, for tests, benchmarks and demos.

The real registries are confidential, and the policies must still be exercised at their real
scale (10 million rows) and on their real shape: most enterprises clean, a few percent with
cases, counts skewed towards 1, direct discharge mostly by industrial enterprises (but not
only: a policy must ignore the others), high pollution mostly industrial. Every column is
drawn with numpy from generators seeded by the seed, so a seed gives the same table byte for
byte (with the same numpy version), and 10 million rows take seconds.

The figures below are plausible guesses, not statistics: they shape test data, not decisions.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ecorules.rules._uscc import uscc_from_serials, uscc_keys

REGISTRY_SCHEMA = pa.schema(
    [
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
)
"""The registry contract: exact column names, order and types."""


@dataclass(frozen=True)
class District:
    """A unit that receives the deductions: a county-level government or a management committee.

    ``code`` is the division code used in USCCs (positions 3-8); the committees, which have no
    GB/T 2260 code, register mostly through the municipal office (410100). ``weight`` is the
    share of enterprises, ``industrial`` the share of them that are industrial, ``local`` the
    place name that local small businesses put in front of their names.
    """

    name: str
    code: int
    committee: bool
    weight: float
    industrial: float
    local: str


# The 12 county-level divisions and 5 management committees of the source report (2012).
# The committees named there are not listed; these five are the development zones of that time.
# UNVERIFIED: 郑州出口加工区 as the fifth (later merged into the economic-technological zone).
DISTRICTS = (
    District("中原区", 410102, False, 0.08, 0.35, "郑州市中原区"),
    District("二七区", 410103, False, 0.08, 0.30, "郑州市二七区"),
    District("管城回族区", 410104, False, 0.07, 0.35, "郑州市管城区"),
    District("金水区", 410105, False, 0.12, 0.15, "郑州市金水区"),
    District("上街区", 410106, False, 0.02, 0.60, "郑州市上街区"),
    District("惠济区", 410108, False, 0.04, 0.30, "郑州市惠济区"),
    District("中牟县", 410122, False, 0.05, 0.45, "中牟县"),
    District("巩义市", 410181, False, 0.07, 0.60, "巩义市"),
    District("荥阳市", 410182, False, 0.05, 0.55, "荥阳市"),
    District("新密市", 410183, False, 0.06, 0.60, "新密市"),
    District("新郑市", 410184, False, 0.06, 0.50, "新郑市"),
    District("登封市", 410185, False, 0.04, 0.55, "登封市"),
    District("郑东新区", 410100, True, 0.08, 0.10, "郑州"),
    District("郑州经济技术开发区", 410100, True, 0.07, 0.65, "郑州"),
    District("郑州高新技术产业开发区", 410100, True, 0.07, 0.45, "郑州"),
    District("郑州航空港区", 410173, True, 0.03, 0.50, "郑州"),  # 410173: the zone's code today
    District("郑州出口加工区", 410100, True, 0.01, 0.75, "郑州"),
)
DISTRICT_NAMES = tuple(d.name for d in DISTRICTS)

# (name word, industrial, weight, P(high pollution), P(high energy)); weights within a class.
INDUSTRIES = (
    ("化工", True, 5, 0.45, 0.35),
    ("精细化工", True, 2, 0.40, 0.25),
    ("铝业", True, 3, 0.45, 0.75),
    ("耐火材料", True, 4, 0.30, 0.55),
    ("水泥", True, 2, 0.40, 0.65),
    ("新型建材", True, 6, 0.15, 0.25),
    ("铸造", True, 3, 0.25, 0.45),
    ("机械制造", True, 10, 0.04, 0.08),
    ("重工", True, 2, 0.08, 0.20),
    ("汽车零部件", True, 5, 0.06, 0.08),
    ("电子科技", True, 5, 0.03, 0.04),
    ("食品", True, 8, 0.08, 0.06),
    ("速冻食品", True, 2, 0.10, 0.10),
    ("纺织", True, 4, 0.15, 0.10),
    ("服饰", True, 4, 0.02, 0.02),
    ("印染", True, 1, 0.55, 0.25),
    ("纸业", True, 2, 0.50, 0.35),
    ("制药", True, 3, 0.30, 0.12),
    ("电镀", True, 1, 0.65, 0.15),
    ("塑业", True, 4, 0.10, 0.10),
    ("包装材料", True, 4, 0.06, 0.05),
    ("印务", True, 3, 0.08, 0.03),
    ("家具", True, 3, 0.10, 0.03),
    ("热力", True, 1, 0.30, 0.60),
    ("玻璃制品", True, 2, 0.25, 0.50),
    ("磨料磨具", True, 2, 0.15, 0.35),
    ("煤业", True, 1, 0.35, 0.55),
    ("钢结构", True, 2, 0.06, 0.20),
    ("皮革", True, 1, 0.45, 0.10),
    ("酒业", True, 1, 0.25, 0.15),
    ("商贸", False, 18, 0.002, 0.001),
    ("科技", False, 10, 0.001, 0.001),
    ("物流", False, 7, 0.003, 0.01),
    ("房地产开发", False, 4, 0.0, 0.0),
    ("建筑工程", False, 7, 0.003, 0.0),
    ("餐饮管理", False, 7, 0.003, 0.002),
    ("酒店管理", False, 3, 0.004, 0.02),
    ("物业管理", False, 5, 0.0, 0.001),
    ("信息技术", False, 6, 0.0, 0.002),
    ("汽车销售服务", False, 4, 0.002, 0.0),
    ("医疗器械", False, 3, 0.002, 0.0),
    ("文化传媒", False, 5, 0.0, 0.0),
    ("教育咨询", False, 3, 0.0, 0.0),
    ("环保科技", False, 2, 0.003, 0.0),
    ("汽车维修", False, 2, 0.03, 0.0),
    ("洗涤服务", False, 1, 0.04, 0.01),
    ("养殖", False, 3, 0.10, 0.01),
    ("种植", False, 2, 0.0, 0.0),
    ("农业开发", False, 2, 0.01, 0.0),
    ("农机", False, 0, 0.0, 0.0),  # only farmers' cooperatives
)
_COOPERATIVE_INDUSTRIES = {"养殖": 4, "种植": 5, "农机": 1}
# Non-industrial trades with wastewater of their own: outfalls and discharge cases are likelier
# there than in offices and shops.
_WET_TRADES = {
    "房地产开发",
    "建筑工程",
    "餐饮管理",
    "酒店管理",
    "物业管理",
    "汽车维修",
    "洗涤服务",
    "养殖",
}

# What each place is known for: multipliers of the industry weights there.
_SPECIALTIES = {
    "中原区": {"纺织": 3, "机械制造": 1.5},
    "二七区": {"商贸": 1.5, "服饰": 2},
    "管城回族区": {"商贸": 1.5, "物流": 1.5},
    "金水区": {"信息技术": 2, "商贸": 1.3, "文化传媒": 1.5},
    "上街区": {"铝业": 6, "机械制造": 1.5},
    "惠济区": {"种植": 2, "物流": 2},
    "中牟县": {"汽车零部件": 3, "食品": 1.5, "养殖": 2, "种植": 2},
    "巩义市": {"铝业": 6, "耐火材料": 3},
    "荥阳市": {"机械制造": 2, "铸造": 2, "耐火材料": 1.5},
    "新密市": {"耐火材料": 6, "纸业": 4, "煤业": 3},
    "新郑市": {"食品": 2, "酒业": 2, "养殖": 1.5},
    "登封市": {"水泥": 5, "煤业": 6, "铝业": 2, "耐火材料": 2},
    "郑东新区": {"文化传媒": 2, "信息技术": 2, "房地产开发": 2},
    "郑州经济技术开发区": {"汽车零部件": 3, "机械制造": 1.5, "物流": 1.5},
    "郑州高新技术产业开发区": {"电子科技": 4, "磨料磨具": 3, "制药": 1.5, "信息技术": 2},
    "郑州航空港区": {"电子科技": 5, "物流": 3},
    "郑州出口加工区": {"电子科技": 4, "服饰": 2},
}

# Characters of trade names (字号).
_TRADE_CHARS = tuple(
    dict.fromkeys(
        "华鑫瑞宏丰达恒泰兴隆源盛祥德信通远昌宇新金龙天中正豫嵩博创升辉明佳聚鼎益康安腾飞宝"
        "诚和顺利发富强海洋云峰山林森元亨嘉美鸿运凯旋永全东方圣普威力成联合众晟昊晨阳光亚欧"
        "万科百汇银润泽禾田园春秋凤雅馨怡乐福星月长江河洛黄伟广旺茂荣振红绿蓝宁静廷冠"
        "锦绣夏九立邦国民利惠鹏翔景致卓越精工巨弘毅"
    )
)
_PLACES = ("郑州", "郑州市", "河南", "河南省") + tuple(d.local for d in DISTRICTS)
_SUFFIXES = ("有限公司", "有限责任公司", "股份有限公司")  # enterprises
_SUFFIXES += ("经营部", "商行", "服务部", "门市部", "加工厂", "厂", "专业合作社")  # small bodies
_KINDS = np.frombuffer(b"123", np.uint8)  # USCC position 2: enterprise, individual, co-op

# Violations: P(any) by industrial class, then counts 1 + Geometric; high pollution raises P.
_OUTFALLS = (0.004, 0.015, 0.65)  # (non-industrial, industrial, P(stop) of the count)
_DIRECT_DISCHARGE = (0.0015, 0.010, 0.75)
_ILLEGAL_DISCHARGE = (0.010, 0.035, 0.60)
_HIGH_POLLUTION_FACTOR = 2.5
_CHUNK = 1 << 20  # rows generated at a time: bounds temporary memory, one Arrow chunk each
_RESOLUTION = 1 << 16  # categorical draws: probabilities are rounded to multiples of 2**-16


def _category_table(weights) -> np.ndarray:
    """(G, 2**16) lookup tables: row g maps a uniform 16-bit draw to a category of weights[g].

    One table look-up per row replaces a search; the cost is probabilities rounded to
    multiples of 1/65536, which is far finer than these guesses.
    """
    weights = np.atleast_2d(np.asarray(weights, float))
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    middles = (np.arange(_RESOLUTION) + 0.5) / _RESOLUTION
    table = [np.searchsorted(row, middles, side="right") for row in cdf]
    return np.minimum(table, weights.shape[1] - 1).astype(np.int16)


def _industry_weights() -> np.ndarray:
    """(35, K) weights: groups 0-16 industrial per district, 17-33 non-industrial, 34 co-ops."""
    base = np.array([w for _, _, w, _, _ in INDUSTRIES], float)
    industrial = np.array([ind for _, ind, _, _, _ in INDUSTRIES])
    words = [word for word, *_ in INDUSTRIES]
    table = np.zeros((2 * len(DISTRICTS) + 1, len(INDUSTRIES)))
    for d, district in enumerate(DISTRICTS):
        local = base.copy()
        for word, factor in _SPECIALTIES.get(district.name, {}).items():
            local[words.index(word)] *= factor
        table[d] = np.where(industrial, local, 0)
        table[len(DISTRICTS) + d] = np.where(industrial, 0, local)
    for word, weight in _COOPERATIVE_INDUSTRIES.items():
        table[-1, words.index(word)] = weight
    return table


_DISTRICT_TABLE = _category_table([d.weight for d in DISTRICTS])[0]
# Kinds of body by place: farmers' co-operatives only outside the zones, mostly in counties.
_KIND_TABLE = _category_table([[0.90, 0.10, 0.0], [0.88, 0.10, 0.02], [0.86, 0.09, 0.05]])
_PLACE_CLASS = np.array([0 if d.committee else 1 if d.code < 410120 else 2 for d in DISTRICTS])
_PLACE_TABLE = _category_table([45, 8, 17, 5, 25])[0]  # 郑州 郑州市 河南 河南省 local
_INDUSTRY_TABLE = _category_table(_industry_weights())
_P_INDUSTRIAL = np.array([d.industrial for d in DISTRICTS])
_P_POLLUTION = np.array([p for *_, p, _ in INDUSTRIES])
_P_ENERGY = np.array([p for *_, p in INDUSTRIES])
_SERVICE = np.array([word.endswith("服务") for word, *_ in INDUSTRIES])  # no 服务服务部
# Violation rate factor per industry: 1 for industry, 2.5 for wet trades, 0.2 for the dry rest.
_WETNESS = np.array([1.0 if ind else 2.5 if w in _WET_TRADES else 0.2 for w, ind, *_ in INDUSTRIES])
_CODES = np.array([d.code for d in DISTRICTS])
_CITY_SHARE = np.array([0.75 if d.committee else 0.2 for d in DISTRICTS])


@functools.cache
def _vocabularies() -> tuple[pa.Array, pa.Array]:
    """Names are head + tail: head = place + two trade characters (every combination), tail =
    optional third trade character + industry + legal form. Two look-ups and one join per
    name instead of six look-ups and a six-way join."""
    chars = pa.array(_TRADE_CHARS)
    c = len(_TRADE_CHARS)
    pairs = pc.binary_join_element_wise(
        chars.take(np.repeat(np.arange(c), c)), chars.take(np.tile(np.arange(c), c)), ""
    )
    places = pa.array(_PLACES)
    heads = pc.binary_join_element_wise(
        places.take(np.repeat(np.arange(len(_PLACES)), c * c)),
        pairs.take(np.tile(np.arange(c * c), len(_PLACES))),
        "",
    )
    thirds = pa.array(_TRADE_CHARS + ("",))
    words = pa.array([word for word, *_ in INDUSTRIES])
    suffixes = pa.array(_SUFFIXES)
    k, s = len(words), len(suffixes)
    grid = np.indices((c + 1, k, s)).reshape(3, -1)
    tails = pc.binary_join_element_wise(
        thirds.take(grid[0]), words.take(grid[1]), suffixes.take(grid[2]), ""
    )
    return heads, tails


def _names(rng, district, kind, industrial, industry) -> pa.Array:
    """Chinese names: place + trade name (2-3 characters) + industry + legal form, e.g.
    郑州鑫源化工有限公司, 河南恒泰铝业股份有限公司, 巩义市宏达铝业加工厂."""
    n = district.shape[0]
    enterprise = kind == ord("1")
    # Place: enterprises use a city or province name or the local one; small bodies local.
    place = _PLACE_TABLE[rng.integers(0, _RESOLUTION, n)].astype(np.int64)
    place = np.where(enterprise & (place < 4), place, 4 + district)
    c = len(_TRADE_CHARS)
    head = (place * c + rng.integers(0, c, n)) * c + rng.integers(0, c, n)
    third = np.where(rng.random(n, dtype=np.float32) < 0.2, rng.integers(0, c, n), c)
    u = rng.random(n, dtype=np.float32)
    joint_stock = np.where((place == 2) | (place == 3), 0.25, 0.05)  # 河南…股份有限公司
    suffix = np.where(u < joint_stock, 2, np.where(u < joint_stock + 0.13, 1, 0))
    shop = 3 + np.minimum((u * 4).astype(np.int64), 3)  # 经营部 商行 服务部 门市部
    shop = np.where((shop == 5) & _SERVICE[industry], 3, shop)  # not 汽车销售服务服务部
    workshop = 7 + (u < 0.4)  # 加工厂 or 厂
    suffix = np.where(enterprise, suffix, np.where(industrial, workshop, shop))
    suffix = np.where(kind == ord("3"), 9, suffix)
    tail = (third * len(INDUSTRIES) + industry) * len(_SUFFIXES) + suffix
    heads, tails = _vocabularies()
    return pc.binary_join_element_wise(heads.take(head), tails.take(tail), "")


def _counts(rng, industrial, factor, spec) -> np.ndarray:
    """Counts of one kind of violation: P(any) by industrial class times ``factor``, then
    1 + Geometric: mostly 1, rarely 5 or more."""
    p_non, p_ind, p_stop = spec
    p = np.where(industrial, p_ind, p_non) * factor
    out = np.zeros(industrial.shape[0], np.int64)
    hit = np.flatnonzero(rng.random(industrial.shape[0], dtype=np.float32) < p)
    out[hit] = rng.geometric(p_stop, hit.shape[0])
    return out


def _chunk(rng: np.random.Generator, first: int, n: int, keys: np.ndarray) -> pa.RecordBatch:
    """Rows ``first`` to ``first + n`` of the registry (``first`` numbers the USCCs)."""
    district = _DISTRICT_TABLE[rng.integers(0, _RESOLUTION, n)].astype(np.int64)
    kind = _KINDS[_KIND_TABLE[_PLACE_CLASS[district], rng.integers(0, _RESOLUTION, n)]]
    factor = np.where(kind == ord("2"), 0.5, np.where(kind == ord("3"), 0.0, 1.0))
    industrial = rng.random(n, dtype=np.float32) < _P_INDUSTRIAL[district] * factor
    group = np.where(kind == ord("3"), 2 * len(DISTRICTS), district + len(DISTRICTS) * ~industrial)
    industry = _INDUSTRY_TABLE[group, rng.integers(0, _RESOLUTION, n)].astype(np.int64)
    scale = np.where(kind == ord("1"), 1.0, 0.3)  # individual businesses and co-ops are small
    high_pollution = rng.random(n, dtype=np.float32) < _P_POLLUTION[industry] * scale
    high_energy = rng.random(n, dtype=np.float32) < _P_ENERGY[industry] * scale
    risk = _WETNESS[industry] * np.where(high_pollution, _HIGH_POLLUTION_FACTOR, 1.0)
    outfalls = _counts(rng, industrial, risk, _OUTFALLS)
    direct = _counts(rng, industrial, risk, _DIRECT_DISCHARGE)
    illegal = _counts(rng, industrial, risk, _ILLEGAL_DISCHARGE)
    # Most register in their own district; some (most in the zones) with the city office.
    city = rng.random(n, dtype=np.float32) < _CITY_SHARE[district]
    regions = np.where(city, 410100, _CODES[district])
    # Pre-2015 enterprises kept their 8-digit organization codes; small bodies had none.
    old_style = (rng.random(n, dtype=np.float32) < 0.35) & (kind == ord("1"))
    codes = uscc_from_serials(np.arange(first, first + n), regions, kind, old_style, keys)
    offsets = pa.py_buffer(np.arange(0, 18 * n + 1, 18, dtype=np.int32))
    uscc = pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(codes)])
    names = _names(rng, district, kind, industrial, industry)
    districts = pa.array(DISTRICT_NAMES).take(district)
    columns = [uscc, names, districts, industrial, outfalls, direct, illegal]
    columns += [high_pollution, high_energy]
    return pa.RecordBatch.from_arrays([pa.array(c) for c in columns], schema=REGISTRY_SCHEMA)


def generate_registry(rows: int, seed: int) -> pa.Table:
    """A registry of ``rows`` enterprises with exactly the contract columns of REGISTRY_SCHEMA.

    Deterministic: the same ``rows`` and ``seed`` give an identical table (with the same numpy
    version). Rows are made a chunk of 2**20 at a time, each chunk from its own stream
    (seed, chunk number), so a full chunk does not depend on ``rows``: the first 2**20 rows
    of a large registry are those of a 2**20-row one. USCCs are valid and distinct across
    chunks (see uscc_from_serials).
    """
    for label, value in (("rows", rows), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{label} must be a non-negative int (got {value!r})")
    keys = uscc_keys(np.random.default_rng([seed, 1]))
    batches = [
        _chunk(np.random.default_rng([seed, 0, i]), first, min(_CHUNK, rows - first), keys)
        for i, first in enumerate(range(0, rows, _CHUNK))
    ]
    return pa.Table.from_batches(batches, schema=REGISTRY_SCHEMA)


def write_registry(table: pa.Table, path: str | os.PathLike) -> None:
    """Write ``table`` to ``path`` (.csv or .parquet by extension), atomically.

    The file is written under a temporary name in the same directory, flushed to disk, then
    renamed over ``path``: a reader sees the old file or the complete new one, never a part.
    CSV is UTF-8 with a header row and booleans as ``true``/``false``.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"cannot tell the format of {str(path)!r}: expected .csv or .parquet")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    # Create it ourselves (O_EXCL, mode 0o666 less the umask, like any new file), then write.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        if suffix == ".csv":
            pacsv.write_csv(table, tmp, pacsv.WriteOptions(include_header=True))
        else:
            pq.write_table(table, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
