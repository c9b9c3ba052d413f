"""Registries for the nightly run's tests, made here so the tests depend on nothing but numpy.

USCCs are computed from the two standards directly (GB 11714 for the organization code check
character, GB 32100 for the final one), independently of ``ecorules.rules._uscc``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from ecorules.rules import load_policies

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
COLUMNS = ("uscc", "name", "district", "industrial", "untreated_outfalls", "direct_discharge_cases",
           "illegal_discharge_cases", "high_pollution", "high_energy")


def districts() -> tuple[str, ...]:
    return load_policies().facts["district"].type.choices


def usccs(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct valid codes '9141xxxx' + 8-digit organization body + 2 check characters."""
    body = rng.choice(10**8, n, replace=False)
    region = rng.integers(410100, 410190, n)
    digits = np.zeros((n, 18), np.int64)
    digits[:, 0], digits[:, 1] = 9, 1
    for k in range(6):
        digits[:, 7 - k] = region // 10**k % 10
    for k in range(8):
        digits[:, 15 - k] = body // 10**k % 10
    org = 11 - (digits[:, 8:16] * np.array([3, 7, 9, 10, 5, 8, 4, 2])).sum(1) % 11  # GB 11714
    org_char = np.where(org == 10, CHARSET.index("X"), np.where(org == 11, 0, org))
    digits[:, 16] = org_char
    weights = np.array([pow(3, i, 31) for i in range(17)])
    digits[:, 17] = -(digits[:, :17] * weights).sum(1) % 31  # GB 32100
    chars = np.frombuffer(CHARSET.encode(), np.uint8)[digits].astype(np.uint8)
    return chars.view("S18").ravel().astype(str)


def make_registry(n: int, seed: int = 0, *, case_share: float = 0.05) -> pa.Table:
    """``n`` valid rows with the contract's columns; about ``case_share`` of them with cases."""
    rng = np.random.default_rng(seed)
    names = districts()

    def counts():
        hit = rng.random(n) < case_share
        return np.where(hit, rng.integers(1, 4, n), 0)

    return pa.table({
        "uscc": usccs(rng, n),
        "name": pa.array([f"郑州测试{i}有限公司" for i in range(n)]),
        "district": pa.array(np.array(names)[rng.integers(0, len(names), n)]),
        "industrial": rng.random(n) < 0.5,
        "untreated_outfalls": counts(),
        "direct_discharge_cases": counts(),
        "illegal_discharge_cases": counts(),
        "high_pollution": rng.random(n) < case_share,
        "high_energy": rng.random(n) < case_share,
    })
