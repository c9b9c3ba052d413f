"""The one place where durable-rules 2.0.28 is embedded: a host that is safe to call per record.

Policies are compiled elsewhere into durable-rules rulesets in the *data form*; this module only
answers "which rules fire for this record?".  The stock ``durable.engine.Host`` is unsuitable as
is: it starts timer threads that may run actions after a call returns, swallows exceptions
raised in actions, crashes past 1024 sessions and has a few silent mis-evaluations.  Each sharp
edge is defended against below, with a pointer to /work/shared/notes/durable-rules.md ("notes")
or to the probe that found it.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping
from typing import Any

import durable_rules_engine
from durable import engine as _engine
from ecorules.rules import ClosedError

log = logging.getLogger(__name__)

#: Field names durable uses for itself; a record carrying them would corrupt the session (notes).
RESERVED_KEYS = frozenset({"sid", "id", "$s"})
# One fixed session per ruleset: more than 1024 live sids crash the C core (notes, "Limits").
# "0" is durable's default sid, so nothing can ever create a second one by omission.
_SID = "0"
# Keys of durable's own session-state object (measured: {"sid": "0", "id": "sid-0", "$s": 1}).
# The engine matches rules against that object too, and re-fires forever on every state update.
_STATE_KEYS = frozenset({"sid", "id", "$s"})
_COMPARISONS = frozenset(
    {"$lt", "$lte", "$gt", "$gte", "$neq", "$eq", "$mt", "$imt", "$iall", "$iany"}
)
# The C core stores two entries per $and/$or in a 32-slot array per condition
# (MAX_SEQUENCE_EXPRESSIONS, rete.c); the 16th boolean node fails with a bare "error code: 113".
_MAX_BOOLEAN_NODES = 15


class DurableError(RuntimeError):
    """durable-rules failed while evaluating one record; the host stays usable for the next."""


class _QuietHost(_engine.Host):
    """A Host without the background dispatch/timer threads that ``Host.__init__`` starts.

    Those threads run forever, may execute actions after ``assert_fact`` returned (notes: 12 of
    150,000) and turn a bad session into a SIGSEGV.  Every action we need runs synchronously
    inside ``assert_fact`` (``Host._handle_function`` -> ``Ruleset.do_actions``), so nothing is lost.
    """

    def _run(self) -> None:
        pass


def _condition(expr: Any, where: str) -> tuple[dict[str, Any], bool, frozenset[str]]:
    """Check and rewrite one condition expression.

    Returns the expression for durable, whether durable's own state object could satisfy it,
    and the fields read through ``{"$m": field}`` that the caller must guard with ``$ex``.
    """
    if not isinstance(expr, Mapping) or len(expr) != 1:
        # {"a": 1, "b": 2} is not an implicit AND: durable silently uses only the first key (probe).
        raise ValueError(
            f"{where}: a condition must be a mapping with exactly one key, got {expr!r}"
        )
    ((key, arg),) = expr.items()
    if key in ("$and", "$or"):
        if not isinstance(arg, list) or not arg:
            raise ValueError(f"{where}: {key} needs a non-empty list, got {arg!r}")
        parts = [_condition(sub, where) for sub in arg]
        if key == "$and":
            guards = sorted(set().union(*(p[2] for p in parts)))
            subs = [p[0] for p in parts] + [{"$ex": {name: 1}} for name in guards]
            return {"$and": subs}, all(p[1] for p in parts), frozenset()
        return {"$or": [_guarded(p[0], p[2]) for p in parts]}, any(p[1] for p in parts), frozenset()
    if key.startswith("$"):
        if key not in _COMPARISONS and key not in ("$ex", "$nex"):
            raise ValueError(f"{where}: unsupported operator {key!r}")
        if not isinstance(arg, Mapping) or len(arg) != 1:
            raise ValueError(f"{where}: {key} needs a mapping with exactly one field, got {arg!r}")
        ((field, value),) = arg.items()
    else:
        field, value = key, arg  # plain equality
    if key == "$nex":
        return dict(expr), field not in _STATE_KEYS, frozenset()
    # A field-to-field comparison whose right field is absent reads an uninitialised value in the
    # C core (isAlphaMatch, events.c) and fires at random; an $ex guard on that field fixes it.
    rhs = value.get("$m") if isinstance(value, Mapping) and len(value) == 1 else None
    return dict(expr), field in _STATE_KEYS, frozenset([rhs] if isinstance(rhs, str) else [])


def _guarded(expr: dict[str, Any], guards: frozenset[str]) -> dict[str, Any]:
    return {"$and": [expr, *({"$ex": {name: 1}} for name in sorted(guards))]} if guards else expr


def _describe(exc: Exception) -> str:
    # durable's own exceptions keep their text in .message; str() would show the bare record.
    return f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"


def _boolean_nodes(expr: Mapping[str, Any]) -> int:
    ((key, arg),) = expr.items()
    return 1 + sum(map(_boolean_nodes, arg)) if key in ("$and", "$or") else 0


def _rule(rule: Any, where: str) -> dict[str, Any]:
    """Validate one rule definition and return the rewritten copy given to durable."""
    if not isinstance(rule, Mapping):
        raise ValueError(f"{where}: a rule must be a mapping, got {rule!r}")
    if extra := sorted(set(rule) - {"all", "any", "pri"}):
        # 'run' is ours to attach; count/cap/dist make firing depend on several facts.
        raise ValueError(
            f"{where}: unsupported rule keys {extra}, expected 'all' or 'any' (+'pri')"
        )
    kinds = [k for k in ("all", "any") if k in rule]
    if len(kinds) != 1 or not isinstance(rule[kinds[0]], list) or not rule[kinds[0]]:
        raise ValueError(f"{where}: a rule needs exactly one non-empty list 'all' or 'any'")
    kind = kinds[0]
    out: dict[str, Any] = {k: v for k, v in rule.items() if k != kind}
    out[kind] = []
    for item in rule[kind]:
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ValueError(
                f"{where}: each entry of {kind!r} is {{alias: condition}}, got {item!r}"
            )
        ((alias, expr),) = item.items()
        cond, matches_state, guards = _condition(expr, where)
        if matches_state:
            # notes: a rule made only of $nex matches the engine's own state object and
            # re-fires forever, so assert_fact never returns. Same for $or with a $nex branch.
            raise ValueError(
                f"{where}: condition {expr!r} can match durable's own session state "
                "(e.g. made only of $nex, or testing sid/id) and would re-fire forever"
            )
        cond = _guarded(cond, guards)
        if _boolean_nodes(cond) > _MAX_BOOLEAN_NODES:
            raise ValueError(
                f"{where}: more than {_MAX_BOOLEAN_NODES} $and/$or nodes in one condition"
            )
        out[kind].append({alias: cond})
    return out


class DurableHost:
    """Owns one durable-rules Host with no background threads, one fixed sid per ruleset.

    ``fired`` asserts a record as a fact (so every matching rule fires, unlike ``post``), collects
    the rules whose actions ran, then retracts it, so the session is back to its prior state and
    the same record can be evaluated again.  Calls are serialised by a lock: one session shared
    by threads without it gave wrong rule sets (notes).  Call ``close`` (or use ``with``) to free
    the C rulesets, otherwise about 300 KiB per host stay allocated until the process exits.
    """

    def __init__(self, rulesets: Mapping[str, Mapping[str, Mapping]]) -> None:
        definitions: dict[str, dict[str, Any]] = {}
        self._order: dict[str, tuple[str, ...]] = {}
        for name, rules in copy.deepcopy(dict(rulesets)).items():  # durable mutates what it gets
            if not isinstance(name, str) or "$" in name:
                # durable turns names containing "$state"/"$flow" into state/flow charts.
                raise ValueError(f"ruleset {name!r}: the name must be a string without '$'")
            definitions[name] = {
                rule_name: {
                    **_rule(rule, f"ruleset {name!r}, rule {rule_name!r}"),
                    "run": self._action(rule_name),
                }
                for rule_name, rule in rules.items()
            }
            self._order[name] = tuple(rules)
        self._lock = threading.Lock()
        self._hits: set[str] = set()
        self._live: set[str] = set()  # rulesets whose session exists, to delete on close
        try:
            self._host: _QuietHost | None = _QuietHost(definitions)
        except durable_rules_engine.error as exc:
            raise ValueError(f"durable rejected the rulesets {sorted(definitions)}: {exc}") from exc

    def _action(self, rule_name: str) -> Any:
        # Exactly one parameter: durable treats a two-parameter callable (even with a default)
        # as asynchronous and locks the session for 30 s (notes), hence no lambda c, n=name.
        def action(c: Any) -> None:
            self._on_fire(rule_name)

        return action

    def _on_fire(self, rule_name: str) -> None:
        self._hits.add(rule_name)

    def fired(self, ruleset: str, fact: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of all rules of ``ruleset`` that match ``fact``, in declaration order."""
        order = self._order.get(ruleset)
        if order is None:
            raise KeyError(f"unknown ruleset {ruleset!r}; known: {sorted(self._order)}")
        reserved = RESERVED_KEYS.intersection(fact)
        if reserved:
            raise ValueError(f"fact uses keys reserved by durable-rules: {sorted(reserved)}")
        message = {**fact, "sid": _SID}
        with self._lock:
            host = self._host
            if host is None:
                raise ClosedError("the evaluator is closed (its durable-rules host was freed by close())")
            self._hits = set()
            try:
                state = host.assert_fact(ruleset, message)
            except _engine.MessageNotHandledException:
                state = None  # notes: a record matching no rule raises; it is simply no hit
            except Exception as exc:
                self._recover(host, ruleset, message)
                raise DurableError(
                    f"durable failed on ruleset {ruleset!r}: {_describe(exc)}"
                ) from exc
            # Retract now: a fact left behind makes the next identical record raise
            # MessageObservedException (notes) and would join with later records.
            try:
                host.retract_fact(ruleset, message)
            except _engine.MessageNotHandledException:
                pass
            except Exception as exc:
                self._recover(host, ruleset, message)
                raise DurableError(
                    f"durable could not retract on {ruleset!r}: {_describe(exc)}"
                ) from exc
            if state and "exception" in state:
                # notes: durable catches exceptions raised in actions and only records them in
                # the session state, where the key stays for every later call: clear it.
                self._recover(host, ruleset, None)
                raise DurableError(f"an action failed on ruleset {ruleset!r}: {state['exception']}")
            hits = self._hits
            if hits:
                # delete_state on a session in which no action ever ran crashes the C core
                # (SIGSEGV or "free(): invalid pointer", probe: close after one non-matching
                # record), so only sessions where something fired are deleted on close.
                self._live.add(ruleset)
        return tuple(name for name in order if name in hits)

    def _recover(self, host: _QuietHost, ruleset: str, message: dict[str, Any] | None) -> None:
        """After a failure: retract the record and drop an "exception" key from the state."""
        try:
            if message is not None:
                host.retract_fact(ruleset, message)
        except Exception:  # the original error is the one worth raising
            log.debug("retract after failure on %r failed", ruleset, exc_info=True)
        try:
            state = host.get_state(ruleset, _SID)
            if "exception" in state:
                del state["exception"]
                host.update_state(ruleset, state)  # replaces the stored state (probe)
        except Exception:  # e.g. error 309: the failing call never created the session
            log.debug("state reset on %r failed", ruleset, exc_info=True)

    def close(self) -> None:
        """Free the sessions and the C rulesets; the object cannot evaluate afterwards.

        ``delete_state`` is safe here only because no timer thread can touch the session
        (notes: it segfaults through the stock Host's timer); probe: 2,000 hosts created and
        closed kept RSS flat, against +300 KiB per host without this.
        """
        with self._lock:
            host, self._host = self._host, None
            if host is None:
                return
            for name in self._order:
                try:
                    if name in self._live:
                        host.delete_state(name, _SID)
                except durable_rules_engine.error:  # e.g. 309: the session was never created
                    log.debug("no session to delete on %r", name, exc_info=True)
                durable_rules_engine.delete_ruleset(host.get_ruleset(name)._handle)

    def __enter__(self) -> DurableHost:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
