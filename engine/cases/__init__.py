"""The case table in the nightly run: cases joined to their enterprises, rolled up, scored
by the kernel, one act one fine (see ``_stage.py``; the reference is ``engine/_group.py``)."""

from ._assessed import ALREADY_ASSESSED, Assessments
from ._assessed import load as load_assessments
from ._enterprises import rollup_columns
from ._plan import CasePlan, CasePlanError, make_plan
from ._stage import CaseResults, CaseRun, CaseStage, CaseStageError
from ._write import CaseWriter, write_case_results

__all__ = ["ALREADY_ASSESSED", "Assessments", "CasePlan", "CasePlanError", "CaseWriter", "CaseResults", "CaseRun", "CaseStage", "CaseStageError", "load_assessments", "make_plan", "rollup_columns",
           "write_case_results"]
