"""Evaluation: single cases on durable-rules, YAML test cases, the command line.

Host systems need only::

    from ecorules.engine import load_policies, Evaluator
    evaluator = Evaluator(load_policies())          # the shipped policies by default
    decision = evaluator.evaluate(record, as_of=date(2012, 4, 14))
"""

from ecorules.rules import PolicySet, RecordError, load_policies
from ecorules.rules._steps import Cap, NamedValue, Period, Step

from ._decision import Decision, Finding, Sanction, TraceEntry
from ._evaluator import BACKENDS, Evaluator
from ._group import GroupDecision

__all__ = [
    "BACKENDS", "Cap", "Decision", "NamedValue", "Period", "Step", "Evaluator", "Finding", "GroupDecision", "PolicySet", "RecordError", "Sanction",
    "TraceEntry", "load_policies",
]
