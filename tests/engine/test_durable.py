"""Tests for ecorules.engine._durable: durable-rules embedded safely, one record at a time.

Rulesets are written here in durable's data form, as the policy compiler will emit them.
"""

from __future__ import annotations

import gc
import json
import operator
import random
import subprocess
import sys
import threading
import time
from typing import Any

import durable_rules_engine
import psutil
import pytest
from ecorules.engine._durable import DurableError, DurableHost

WATER = "eco_water@2011.1"
# Three rules that a record with many untreated outfalls matches all at once; declared in an
# order that is neither alphabetical nor the order durable fires them in.
THREE = {
    WATER: {
        "r_untreated": {"all": [{"m": {"$gt": {"f_untreated_outfalls": 0}}}]},
        "r_many": {"all": [{"m": {"$gte": {"f_untreated_outfalls": 3}}}]},
        "r_any_outfall": {"all": [{"m": {"$ex": {"f_untreated_outfalls": 1}}}]},
    }
}


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def expected_three(fact: dict[str, Any]) -> tuple[str, ...]:
    n = fact.get("f_untreated_outfalls")
    if n is None:
        return ()
    return tuple(
        name
        for name, hit in (("r_untreated", n > 0), ("r_many", n >= 3), ("r_any_outfall", True))
        if hit
    )


# --- 1. no background threads, synchronous actions -------------------------------------------


def test_no_background_threads_and_actions_run_before_return() -> None:
    calls: list[tuple[str, int]] = []

    class Recording(DurableHost):
        def _on_fire(self, rule_name: str) -> None:
            calls.append((rule_name, threading.get_ident()))
            super()._on_fire(rule_name)

    before = set(threading.enumerate())
    with Recording(THREE) as host:
        for n in range(20):
            calls.clear()
            result = host.fired(WATER, {"f_untreated_outfalls": n})
            assert sorted(result) == sorted(name for name, _ in calls)  # all ran before return
            assert {ident for _, ident in calls} <= {threading.get_ident()}
        time.sleep(0.3)  # the stock Host's timers would have started by now (0.1 s)
        assert set(threading.enumerate()) == before


# --- 2. and 3. no match, all matches ------------------------------------------------------------


def test_record_matching_nothing_returns_empty_tuple() -> None:
    with DurableHost(THREE) as host:
        assert host.fired(WATER, {"f_other": 1}) == ()
        assert host.fired(WATER, {}) == ()
        assert host.fired(WATER, {"f_untreated_outfalls": 0}) == ("r_any_outfall",)


def test_every_matching_rule_fires_in_declaration_order() -> None:
    with DurableHost(THREE) as host:
        assert host.fired(WATER, {"f_untreated_outfalls": 5}) == (
            "r_untreated",
            "r_many",
            "r_any_outfall",
        )
        assert host.fired(WATER, {"f_untreated_outfalls": 1}) == ("r_untreated", "r_any_outfall")


# --- 4. many calls: correct, flat memory, one session ------------------------------------------


def sequential_probe() -> dict:
    """120,000 calls after a warm-up, in a process of its own (see the test below): correct
    rule sets, RSS growth, and the one session durable keeps."""
    rules = {
        "big": {"all": [{"m": {"$gt": {"f_a": 50}}}]},
        "site": {"all": [{"m": {"f_site": "郑州-3"}}]},
        "both": {"all": [{"m": {"$and": [{"$lte": {"f_a": 10}}, {"$neq": {"f_site": "郑州-3"}}]}}]},
        "cmp": {"all": [{"m": {"$lt": {"f_a": {"$m": "f_b"}}}}]},
    }
    with DurableHost({"t": rules}) as host:

        def check(k: int) -> None:
            fact: dict[str, Any] = {"f_a": k % 97, "f_site": f"郑州-{k % 5}", "f_seq": k}
            if k % 3:
                fact["f_b"] = k % 89
            expected = tuple(
                name
                for name, hit in (
                    ("big", fact["f_a"] > 50),
                    ("site", fact["f_site"] == "郑州-3"),
                    ("both", fact["f_a"] <= 10 and fact["f_site"] != "郑州-3"),
                    ("cmp", "f_b" in fact and fact["f_a"] < fact["f_b"]),
                )
                if hit
            )
            assert host.fired("t", fact) == expected, fact

        for k in range(10_000):  # warm-up: allocator pools, durable's internal tables
            check(k)
        gc.collect()
        start = rss_mib()
        for k in range(10_000, 130_000):  # every fact distinct (f_seq)
            check(k)
        gc.collect()
        growth = rss_mib() - start
        # One fixed session: sid "0" exists, no other sid was ever created, no fact left behind.
        durable = host._host
        assert durable is not None
        facts_left = durable.get_facts("t", "0")
        try:
            durable.get_state("t", "1")
            other_session = "exists"
        except durable_rules_engine.error as error:
            other_session = str(error)
        return {"start": start, "growth": growth, "facts_left": facts_left, "other_session": other_session}


def test_120k_sequential_calls_are_correct_with_flat_memory_and_one_session() -> None:
    # A process of its own: inside the big pytest process the allocator's arenas, grown by
    # earlier tests, moved RSS by several MiB either way (a fresh-clone CI run measured 6.1).
    run = subprocess.run([sys.executable, __file__, "--sequential-probe"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]  # a wrong rule set fails the probe's asserts
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["growth"] < 3.0, f"RSS {result['start']:.1f} MiB -> +{result['growth']:.1f} MiB over 120,000 calls"
    assert result["facts_left"] == []
    assert "309" in result["other_session"]


# --- 5. threads ------------------------------------------------------------------------------------


def test_four_threads_on_one_host_agree_with_plain_python() -> None:
    errors: list[str] = []
    with DurableHost(THREE) as host:

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(2_500):
                fact = {"f_untreated_outfalls": rng.randint(-2, 6), "f_worker": seed}
                if rng.random() < 0.2:
                    fact = {"f_other": rng.randint(0, 9)}
                got = host.fired(WATER, fact)
                if got != expected_three(fact):
                    errors.append(f"{fact}: {got}")

        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


# --- 6. two versions side by side ----------------------------------------------------------------


def test_two_versions_with_same_rule_names_answer_independently() -> None:
    def version(threshold: int) -> dict[str, Any]:
        return {"r_limit": {"all": [{"m": {"$gt": {"f_cod": threshold}}}]}}

    old, new = DurableHost({"cod": version(100)}), DurableHost({"cod": version(60)})
    both = DurableHost({"cod@2011": version(100), "cod@2023": version(60)})
    with old, new, both:
        for value in (50, 80, 120, 80, 50, 120):
            high, low = value > 100, value > 60
            assert old.fired("cod", {"f_cod": value}) == (("r_limit",) if high else ())
            assert new.fired("cod", {"f_cod": value}) == (("r_limit",) if low else ())
            assert both.fired("cod@2011", {"f_cod": value}) == (("r_limit",) if high else ())
            assert both.fired("cod@2023", {"f_cod": value}) == (("r_limit",) if low else ())


# --- 7. the same content twice --------------------------------------------------------------------


def test_same_fact_twice_in_a_row() -> None:
    # Without the retract, durable raises MessageObservedException on the second assert.
    with DurableHost(THREE) as host:
        for fact in ({"f_untreated_outfalls": 4}, {"f_other": 1}):
            first = host.fired(WATER, fact)
            assert host.fired(WATER, dict(fact)) == first
            assert host.fired(WATER, fact) == first


# --- 8. rejected input ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sid", "id", "$s"])
def test_reserved_fact_keys_are_rejected(key: str) -> None:
    with DurableHost(THREE) as host:
        with pytest.raises(ValueError, match="reserved"):
            host.fired(WATER, {"f_untreated_outfalls": 1, key: 1})
        assert host.fired(WATER, {"f_untreated_outfalls": 1}) == ("r_untreated", "r_any_outfall")


@pytest.mark.parametrize(
    "condition",
    [
        {"$nex": {"f_x": 1}},
        {"$and": [{"$nex": {"f_x": 1}}, {"$nex": {"f_y": 1}}]},
        {"$or": [{"$nex": {"f_x": 1}}, {"f_y": 1}]},  # the $nex branch alone matches the state
        {"$ex": {"sid": 1}},
    ],
)
def test_rule_that_could_match_durables_state_is_rejected(condition: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"ruleset 'p', rule 'r_bad'.*re-fire forever"):
        DurableHost(
            {"p": {"r_ok": {"all": [{"m": {"f_y": 1}}]}, "r_bad": {"all": [{"m": condition}]}}}
        )


def test_nex_combined_with_a_positive_test_is_accepted() -> None:
    rules = {"r": {"all": [{"m": {"$and": [{"$nex": {"f_permit": 1}}, {"$gt": {"f_flow": 0}}]}}]}}
    with DurableHost({"p": rules}) as host:
        assert host.fired("p", {"f_flow": 3}) == ("r",)
        assert host.fired("p", {"f_flow": 3, "f_permit": "A1"}) == ()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"all": [{"m": {"f_a": 1, "f_b": 2}}]}, "exactly one key"),  # durable would ignore f_b
        ({"all": [{"m": {"$gt": {"f_a": 1, "f_b": 2}}}]}, "exactly one field"),
        ({"all": [{"m": {"$gtt": {"f_a": 1}}}]}, "unsupported operator"),
        ({"all": [{"m": {"f_a": 1}}], "run": print}, r"unsupported rule keys \['run'\]"),
        ({"all": [{"m": {"f_a": 1}}], "count": 2}, r"unsupported rule keys \['count'\]"),
        ({"all": [{"m": {"f_a": 1}}], "any": [{"m": {"f_b": 1}}]}, "exactly one non-empty list"),
        ({"all": []}, "non-empty list"),
        ({"all": [{"m": {"$or": []}}]}, "non-empty list"),
    ],
)
def test_malformed_rules_are_rejected_with_their_names(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"ruleset 'p', rule 'r1'.*{message}"):
        DurableHost({"p": {"r1": rule}})


def test_ruleset_name_with_dollar_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'water\$state'"):  # durable would build a statechart
        DurableHost({"water$state": {"r": {"all": [{"m": {"f_a": 1}}]}}})


def test_unknown_ruleset_names_the_known_ones() -> None:
    with DurableHost({"b": {}, "a": {}}) as host:
        with pytest.raises(KeyError, match=r"'nope'.*\['a', 'b'\]"):
            host.fired("nope", {"f_a": 1})


def test_callers_dicts_are_not_mutated() -> None:
    import copy

    original = copy.deepcopy(THREE)
    fact = {"f_untreated_outfalls": 2}
    with DurableHost(THREE) as host:
        host.fired(WATER, fact)
    assert THREE == original
    assert fact == {"f_untreated_outfalls": 2}


# --- 9. big integers and Chinese strings -----------------------------------------------------------


def test_integers_near_2_pow_62_and_63_compare_exactly() -> None:
    t = 2**62
    rules = {
        "gt": {"all": [{"m": {"$gt": {"f_n": t}}}]},
        "eq": {"all": [{"m": {"f_n": t + 1}}]},
        "max": {"all": [{"m": {"f_n": 2**63 - 1}}]},
        "neg": {"all": [{"m": {"$lt": {"f_n": -t}}}]},
    }
    with DurableHost({"p": rules}) as host:
        assert host.fired("p", {"f_n": t}) == ()
        assert host.fired("p", {"f_n": t + 1}) == ("gt", "eq")
        assert host.fired("p", {"f_n": t + 2}) == ("gt",)
        assert host.fired("p", {"f_n": 2**63 - 1}) == ("gt", "max")
        assert host.fired("p", {"f_n": 2**63 - 2}) == ("gt",)
        assert host.fired("p", {"f_n": -t - 1}) == ("neg",)
        assert host.fired("p", {"f_n": -t}) == ()


def test_chinese_string_equality() -> None:
    rules = {
        "is_plant": {"all": [{"m": {"f_name": "郑州市污水处理厂"}}]},
        "not_plant": {"all": [{"m": {"$neq": {"f_name": "郑州市污水处理厂"}}}]},
        "same_district": {"all": [{"m": {"f_district": {"$m": "f_permit_district"}}}]},
    }
    with DurableHost({"p": rules}) as host:
        assert host.fired("p", {"f_name": "郑州市污水处理厂"}) == ("is_plant",)
        assert host.fired("p", {"f_name": "郑州市污水处理"}) == ("not_plant",)  # a prefix
        assert host.fired("p", {"f_name": "郑州市污水处理厂𠀀"}) == ("not_plant",)  # 4-byte char
        assert host.fired("p", {"f_district": "金水区", "f_permit_district": "金水区"}) == (
            "same_district",
        )
        assert host.fired("p", {"f_district": "金水区", "f_permit_district": "二七区"}) == ()


# --- 10. the operators the compiler relies on ---------------------------------------------------------

CMP = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$neq": operator.ne,
}


def test_each_comparison_operator_with_constants_and_fields() -> None:
    rules: dict[str, Any] = {}
    for op in CMP:
        rules[f"const{op}"] = {"all": [{"m": {op: {"f_a": 0}}}]}
        rules[f"field{op}"] = {"all": [{"m": {op: {"f_a": {"$m": "f_b"}}}}]}
    rules["const$eq"] = {"all": [{"m": {"f_a": 0}}]}
    rules["field$eq"] = {"all": [{"m": {"f_a": {"$m": "f_b"}}}]}
    ops = {**CMP, "$eq": operator.eq}
    with DurableHost({"p": rules}) as host:
        for a in (-1, 0, 1, 0.5):
            for b in (-1, 0, 1, None):
                fact = {"f_a": a} if b is None else {"f_a": a, "f_b": b}
                expected = {f"const{op}" for op, f in ops.items() if f(a, 0)}
                expected |= {f"field{op}" for op, f in ops.items() if b is not None and f(a, b)}
                assert set(host.fired("p", fact)) == expected, fact


def test_field_comparison_with_absent_right_field_is_false() -> None:
    # durable 2.0.28 reads an uninitialised value when the "$m" field is absent (isAlphaMatch in
    # events.c) and fired this rule on the third record; DurableHost adds an $ex guard.
    ff = {"$gte": {"f_a": {"$m": "f_b"}}}
    rules = {
        "ff": {"all": [{"m": ff}]},
        "in_or": {"all": [{"m": {"$or": [{"f_z": 1}, ff]}}]},
        "in_and": {"all": [{"m": {"$and": [{"$lt": {"f_a": 9}}, ff]}}]},
    }
    with DurableHost({"p": rules}) as host:
        assert host.fired("p", {"f_a": 3, "f_b": 1}) == ("ff", "in_or", "in_and")
        assert host.fired("p", {"f_a": 0, "f_b": -3}) == ("ff", "in_or", "in_and")
        assert host.fired("p", {"f_a": -1, "f_c": 1}) == ()
        assert host.fired("p", {"f_a": 5, "f_z": 1}) == ("in_or",)


def test_and_or_nested_to_depth_four_agree_with_plain_python() -> None:
    rng = random.Random(7)
    fields = ("f_a", "f_b", "f_c", "f_d")

    def leaf(parent: str) -> dict[str, Any]:
        op, field = rng.choice([*CMP, "$eq"]), rng.choice(fields)
        value: Any = rng.randint(-2, 2)
        # Under $or, the $ex guard of a field comparison costs one more $and: stay within 15.
        if parent == "$and" and rng.random() < 0.3:
            value = {"$m": rng.choice([f for f in fields if f != field])}
        return {field: value} if op == "$eq" else {op: {field: value}}

    def tree(depth: int, key: str) -> dict[str, Any]:  # full binary: 15 $and/$or at depth 4
        child = "$and" if key == "$or" else "$or"
        if depth == 1:
            return {key: [leaf(key), leaf(key)]}
        return {key: [tree(depth - 1, child), tree(depth - 1, child)]}

    def holds(expr: dict[str, Any], fact: dict[str, Any]) -> bool:
        ((key, arg),) = expr.items()
        if key in ("$and", "$or"):
            return (all if key == "$and" else any)(holds(sub, fact) for sub in arg)
        if key in CMP:
            ((field, value),) = arg.items()
            compare = CMP[key]
        else:
            field, value, compare = key, arg, operator.eq
        if isinstance(value, dict):
            if value["$m"] not in fact:
                return False
            value = fact[value["$m"]]
        return field in fact and compare(fact[field], value)

    exprs = {f"r{i}": tree(4, "$or" if i % 2 else "$and") for i in range(10)}
    with DurableHost({"p": {name: {"all": [{"m": e}]} for name, e in exprs.items()}}) as host:
        fired = 0
        for _ in range(3_000):
            fact = {f: rng.randint(-2, 2) for f in fields if rng.random() < 0.8}
            expected = tuple(name for name, e in exprs.items() if holds(e, fact))
            assert host.fired("p", fact) == expected, fact
            fired += len(expected)
        assert fired > 1_000  # the trees are not trivially false


def test_more_boolean_nodes_than_durable_can_store_is_a_clear_error() -> None:
    def chain(n: int) -> dict[str, Any]:
        return {"f_a": n} if n == 0 else {"$or": [{"f_a": n}, chain(n - 1)]}

    with DurableHost({"p": {"r": {"all": [{"m": chain(15)}]}}}) as host:
        assert host.fired("p", {"f_a": 15}) == ("r",)
    with pytest.raises(ValueError, match=r"rule 'r'.*more than 15 \$and/\$or"):
        DurableHost({"p": {"r": {"all": [{"m": chain(16)}]}}})


def test_always_true_condition() -> None:
    # Every record lacks "$s" (reserved, rejected in facts); durable's state object has it.
    rules = {"always": {"all": [{"m": {"$nex": {"$s": 1}}}]}, "r_a": {"all": [{"m": {"f_a": 1}}]}}
    with DurableHost({"p": rules}) as host:
        assert host.fired("p", {}) == ("always",)
        assert host.fired("p", {"f_a": 1}) == ("always", "r_a")
        assert host.fired("p", {"f_z": "任意"}) == ("always",)


# --- errors inside durable, lifecycle ---------------------------------------------------------------


def test_exception_in_action_raises_once_then_host_works() -> None:
    class Failing(DurableHost):
        fail = True

        def _on_fire(self, rule_name: str) -> None:
            if rule_name == "r_many" and self.fail:
                raise ZeroDivisionError("boom in action")
            super()._on_fire(rule_name)

    with Failing(THREE) as host:
        fact = {"f_untreated_outfalls": 5}
        with pytest.raises(DurableError, match="boom in action"):
            host.fired(WATER, fact)
        host.fail = False
        assert host.fired(WATER, fact) == ("r_untreated", "r_many", "r_any_outfall")
        assert host._host is not None and "exception" not in host._host.get_state(WATER, "0")


def test_value_durable_cannot_parse_raises_durable_error_then_host_works() -> None:
    with DurableHost(THREE) as host:
        with pytest.raises(DurableError, match=WATER):
            host.fired(WATER, {"f_untreated_outfalls": 1e300})  # durable: error code 204
        assert host.fired(WATER, {"f_untreated_outfalls": 1}) == ("r_untreated", "r_any_outfall")


def test_close_frees_memory_and_blocks_further_use() -> None:
    rules = {f"r{i}": {"all": [{"m": {"$gt": {f"f_{i}": i}}}]} for i in range(10)}
    for _ in range(20):
        with DurableHost({"p": rules}) as host:
            host.fired("p", {"f_1": 5})
    gc.collect()
    start = rss_mib()
    for _ in range(300):  # about 300 KiB each without close: 90 MiB
        with DurableHost({"p": rules}) as host:
            assert host.fired("p", {"f_1": 5}) == ("r1",)
    gc.collect()
    assert rss_mib() - start < 5.0
    with pytest.raises(RuntimeError, match="closed"):
        host.fired("p", {"f_1": 5})
    host.close()  # idempotent


if __name__ == "__main__" and sys.argv[1:] == ["--sequential-probe"]:
    print(json.dumps(sequential_probe()))
