"""The policy language: YAML regulations, checked expressions, exact values.

Public names only; the implementation lives in the private modules beside this file.
"""

from ._ast import Node, render
from ._check import FUNCTIONS, Symbol, check
from ._checks import Check, CheckFailure, RecordCheckError
from ._errors import (
    ClosedError,
    EcorulesError,
    KernelError,
    ParameterNotSetError,
    PolicyError,
    PolicySchemaError,
    PolicySetError,
    PolicySyntaxError,
    PolicyTypeError,
    RecordError,
    Span,
    UsageError,
)
from ._evaluate import evaluate, finding_amount
from ._loader import read_policy
from ._money import ROUNDING_MODES, UNITS, Rounding
from ._parser import parse_expression
from ._policyset import PolicySet, check_policies, load_policies, shipped_policies_path
from ._record_keys import by_fact_name, normalize_header
from ._schema import (
    ENTERPRISE,
    Citation,
    DatedValue,
    ExpectedFinding,
    ExpectedRejection,
    ExpectedSanction,
    Fact,
    FindingKind,
    FindingSpec,
    Parameter,
    Policy,
    PolicyWarning,
    Rule,
    SanctionList,
    SanctionSpec,
    TestCase,
)
from ._types import DECIMAL_PLACES, Kind, Type
from ._workdays import CalendarError, WorkCalendar, read_calendar

__all__ = [
    "Check", "CheckFailure", "ClosedError", "DECIMAL_PLACES", "ENTERPRISE", "FUNCTIONS", "Citation", "DatedValue",
    "EcorulesError", "ExpectedFinding", "ExpectedRejection", "ExpectedSanction", "Fact", "FindingKind", "FindingSpec",
    "KernelError", "Kind", "Node", "Parameter", "ParameterNotSetError", "Policy", "PolicyError",
    "PolicySchemaError", "PolicySet", "PolicySetError", "PolicySyntaxError", "PolicyTypeError", "PolicyWarning",
    "ROUNDING_MODES", "RecordCheckError", "RecordError", "Rounding", "Rule", "SanctionList", "SanctionSpec", "Span",
    "Symbol", "TestCase", "Type", "UNITS", "UsageError", "check", "check_policies", "evaluate", "finding_amount",
    "load_policies", "parse_expression", "read_policy",
    "render", "shipped_policies_path",
    "CalendarError", "WorkCalendar", "read_calendar",  # working days (行政处罚法 art 85)
    "by_fact_name", "normalize_header",  # a record's keys as registries write them
]
