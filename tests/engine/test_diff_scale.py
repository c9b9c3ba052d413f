"""The diff's figures on a generated registry: the kernel against the per-row reference.

The kernel path (vectorized aggregation over kernel outputs, several batches) must give
exactly what scoring each row with the Python reference evaluator gives, for drafts that
change amounts, add a rule and change a list; and the figures must not depend on where
the batches are cut.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from diff_standin import StandInProgram
from ecorules.engine._generate import generate_registry
from ecorules.engine.diff._impact import compute_impact
from ecorules.fastcalc import compile_program
from ecorules.rules import load_policies, shipped_policies_path

AS_OF = dt.date(2014, 1, 1)
MARKER = '        reference: 《郑州市生态水系截污工作奖惩措施》(2011):"每个排污口扣款100万元"\n'
RAISE = MARKER + "      - from: 2013-01-01\n        value: 1500000\n        reference: 草案\n"
SURCHARGE = """
  - id: high_pollution_outfall_surcharge
    title: 高污染企业排污口未治理到位,每个加扣50万元
    citation: {document: 草案, article: 三, text: 高污染企业每个排污口另行扣款50万元}
    when: high_pollution and untreated_outfalls > 0
    findings:
      - {kind: fiscal_deduction, amount: 500000 * untreated_outfalls, payer: district}

test_defaults:"""


@pytest.fixture(scope="module")
def registry():
    return generate_registry(6_000, seed=7)


@pytest.fixture(scope="module")
def base():
    return load_policies()


@pytest.fixture(scope="module")
def draft(tmp_path_factory):
    folder = tmp_path_factory.mktemp("draft") / "policies"
    shutil.copytree(shipped_policies_path(), folder)
    water = folder / "zhengzhou" / "eco_water_interception.yaml"
    text = water.read_text(encoding="utf-8").replace(MARKER, RAISE).replace("\ntest_defaults:", SURCHARGE, 1)
    water.write_text(text, encoding="utf-8")
    credit = folder / "zhengzhou" / "green_credit.yaml"
    credit.write_text(credit.read_text(encoding="utf-8").replace(
        "when: high_pollution or high_energy", "when: high_pollution"), encoding="utf-8")
    return load_policies(folder)


def figures(impact):
    """Everything an Impact says, as plain comparable values."""
    return {
        "rows": (impact.rows_in, impact.rows_compared, impact.rejected_base, impact.rejected_proposed),
        "totals": (impact.before_yuan, impact.after_yuan, impact.changed_count),
        "districts": sorted((d.district, d.before_yuan, d.after_yuan, d.enterprises_before, d.enterprises_after, d.changed) for d in impact.districts),
        "rules": [(r.policy, r.rule, r.before_yuan, r.after_yuan, r.fired_before, r.fired_after) for r in impact.rules],
        "lists": [(x.list, x.before, x.after, x.entered, x.left) for x in impact.lists],
        "changed": [(e.uscc, e.before_yuan, e.after_yuan, e.lists_entered, e.lists_left, e.rules) for e in impact.changed],
    }


def test_kernel_equals_the_reference(registry, base, draft):
    batches = registry.to_batches(max_chunksize=1_000)
    kernel = compute_impact(base, draft, batches, AS_OF, compile_program=compile_program)
    reference = compute_impact(base, draft, batches, AS_OF, compile_program=StandInProgram)
    assert figures(kernel) == figures(reference)
    # the draft moves money and lists, or this test would prove little
    assert kernel.after_yuan > kernel.before_yuan > 0
    assert kernel.changed_count > 50
    restricted = next(x for x in kernel.lists if x.list == "restricted_loans")
    assert restricted.left > 0 and restricted.entered == 0
    assert next(r for r in kernel.rules if r.rule == "high_pollution_outfall_surcharge").fired_after > 0


def test_batches_do_not_matter(registry, base, draft):
    one = compute_impact(base, draft, [registry], AS_OF, compile_program=compile_program)
    many = compute_impact(base, draft, registry.to_batches(max_chunksize=777), AS_OF, compile_program=compile_program)
    assert figures(one) == figures(many)


def test_limit_keeps_the_most_changed_and_counts_all(registry, base, draft):
    full = compute_impact(base, draft, [registry], AS_OF, compile_program=compile_program)
    assert full.changed_count == len(full.changed) > 30
    for batches in ([registry], registry.to_batches(max_chunksize=500)):  # one cut, and many
        limited = compute_impact(base, draft, batches, AS_OF, limit=10, compile_program=compile_program)
        assert limited.changed_count == full.changed_count
        assert limited.changed == full.changed[:10]
        assert figures(limited)["districts"] == figures(full)["districts"]
    none = compute_impact(base, draft, [registry], AS_OF, limit=0, compile_program=compile_program)
    assert (none.changed_count, none.changed) == (full.changed_count, ())
    magnitudes = [abs(e.difference_yuan) for e in full.changed]
    assert magnitudes == sorted(magnitudes, reverse=True)
